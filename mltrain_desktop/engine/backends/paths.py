"""A run's paths as another machine sees them: the run folder, the job kit and each dataset input.

A Docker container sees them at /mltrain/run, /mltrain/jobkit and /mltrain/inputs/<name>; a
staged Slurm run at <scratch>/<run>, <scratch>/<run>/.jobkit and <scratch>/<run>/inputs/<name>.
``path_pairs`` gives the (here, there) pairs, ``map_path`` rewrites one value (a path, a value
starting with one, or ``--flag=/path``), ``mapped_arguments`` the script's arguments. Pure.
"""
from __future__ import annotations

import os

from .base import JobContext


def path_pairs(ctx: JobContext, run_dir: str, jobkit_dir: str, inputs_dir: str) -> list[tuple[str, str]]:
    """(path here, path there) pairs, most specific first."""
    pairs = [(str(ctx.run_dir), run_dir), (str(ctx.jobkit_dir), jobkit_dir)]
    for name, info in sorted(ctx.inputs.items()):
        pairs.append((str(info["path"]), f"{inputs_dir}/{name}"))
    for p in list(pairs):  # symlinked workspaces: map the resolved spelling too
        real = os.path.realpath(p[0])
        if real != p[0]:
            pairs.append((real, p[1]))
    return sorted(pairs, key=lambda p: len(p[0]), reverse=True)


def map_path(value: str, mapping: list[tuple[str, str]]) -> str:
    """Rewrites a path here (or a value starting with one) into the other side's view."""
    for host, inside in mapping:
        host = host.rstrip("/")
        if value == host:
            return inside
        if value.startswith(host + "/"):
            return inside + value[len(host):]
        if "=" in value:  # --flag=/host/path
            key, _, rest = value.partition("=")
            if rest == host or rest.startswith(host + "/"):
                return f"{key}={inside}{rest[len(host):]}"
    return value


def mapped_arguments(ctx: JobContext, mapping: list[tuple[str, str]], inputs_dir: str) -> list[str]:
    """The script's arguments with paths mapped; a dataset input becomes ``<inputs_dir>/<name>``."""
    raw = ctx.raw_arguments if len(ctx.raw_arguments) == len(ctx.arguments) else None
    out = []
    for i, arg in enumerate(ctx.arguments):
        item = raw[i] if raw is not None else None
        if isinstance(item, dict) and item.get("input") in ctx.inputs:
            out.append(f"{inputs_dir}/{item['input']}")
        else:
            out.append(map_path(str(arg), mapping))
    return out


__all__ = ["map_path", "mapped_arguments", "path_pairs"]
