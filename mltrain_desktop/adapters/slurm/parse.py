"""Parsing what Slurm's commands print: sinfo, scontrol show config/partition, squeue, sacct, sbatch.

The commands are run with fixed ``-o`` formats (below) and ``|`` separators, so that the parsers
read fields by position; every parser takes the text and returns plain dicts. Pure functions.
"""
from __future__ import annotations

import re

SEP = "|"
# sinfo -h -N -o NODE_FORMAT: one line per (node, partition)
NODE_FORMAT = "%N|%P|%T|%c|%G|%m"
# squeue -h -j ID -o SQUEUE_FORMAT
SQUEUE_FORMAT = "%i|%T|%r|%N"
# sacct -n -P -X -j ID -o SACCT_FIELDS (sacct -P separates with |)
SACCT_FIELDS = "JobID,State,ExitCode,Reason,NodeList"

_TIME_LIMIT = re.compile(r"^(UNLIMITED|INFINITE|\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}"
                         r"|\d+-\d+:\d{1,2}:\d{1,2})$", re.IGNORECASE)


def valid_time_limit(text: str) -> bool:
    """Slurm's forms: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, UNLIMITED."""
    return bool(_TIME_LIMIT.match(text or ""))


def gpu_count(gres: str) -> int:
    """GPUs in a gres string: ``gpu:2`` -> 2, ``gpu:a100:4(S:0-1),shard:8`` -> 4, ``(null)`` -> 0."""
    total = 0
    for item in re.split(r",(?![^(]*\))", gres or ""):
        item = re.sub(r"\(.*?\)", "", item).strip()
        parts = item.split(":")
        if parts[0] != "gpu":
            continue
        count = parts[-1] if len(parts) > 1 else "1"
        total += int(count) if count.isdigit() else 1
    return total


def nodes(text: str) -> list[dict]:
    """``sinfo -h -N -o NODE_FORMAT`` -> one dict per node: name, state, cpus, gpus, memory_mb, partitions."""
    out: dict[str, dict] = {}
    for line in text.splitlines():
        f = line.strip().split(SEP)
        if len(f) < 6:
            continue
        name, part, state, cpus, gres, mem = f[:6]
        node = out.setdefault(name, {"name": name, "state": state, "cpus": _int(cpus), "gres": gres,
                                     "gpus": gpu_count(gres), "memory_mb": _int(mem), "partitions": []})
        node["partitions"].append(part.rstrip("*"))
    return list(out.values())


def key_values(text: str) -> dict[str, str]:
    """``scontrol show partition -o`` line (``A=1 B=x y=2``) -> {A: 1, B: x, y: 2}."""
    out: dict[str, str] = {}
    key = None
    for tok in text.strip().split(" "):
        if "=" in tok and re.match(r"^[A-Za-z][A-Za-z0-9_/:\[\]]*=", tok):
            key, _, value = tok.partition("=")
            out[key] = value
        elif key is not None and tok:
            out[key] += " " + tok  # a value with spaces
    return out


def partitions(text: str) -> list[dict]:
    """``scontrol show partition -o`` -> name, default, state, nodes, total nodes and CPUs, limits."""
    out = []
    for line in text.splitlines():
        if not line.startswith("PartitionName="):
            continue
        kv = key_values(line)
        max_nodes = kv.get("MaxNodes", "UNLIMITED")
        out.append({
            "name": kv["PartitionName"], "default": kv.get("Default") == "YES", "state": kv.get("State", ""),
            "nodes": kv.get("Nodes", ""), "total_nodes": _int(kv.get("TotalNodes")),
            "total_cpus": _int(kv.get("TotalCPUs")),
            "max_nodes": None if not max_nodes.isdigit() else int(max_nodes),
            "max_time": kv.get("MaxTime", "UNLIMITED"),
        })
    return out


def config(text: str) -> dict[str, str]:
    """``scontrol show config`` (``Key   = value`` lines) -> {Key: value}."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            out[key.strip()] = value.strip()
    return out


def sbatch_job_id(text: str) -> str:
    """``sbatch --parsable`` prints ``ID`` or ``ID;cluster``; ``Submitted batch job ID`` without it."""
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"^(\d+)(;\S+)?$", line) or re.match(r"^Submitted batch job (\d+)", line)
        if m:
            return m.group(1)
    raise ValueError(f"sbatch printed no job id: {text.strip()[:300]!r}")


def squeue_job(text: str, job_id: str) -> dict | None:
    """``squeue -h -j ID -o SQUEUE_FORMAT`` -> {state, reason, nodes}, or None when squeue no longer has it."""
    for line in text.splitlines():
        f = line.strip().split(SEP)
        if len(f) >= 4 and f[0] == str(job_id):
            return {"state": f[1], "reason": f[2], "nodes": f[3]}
    return None


def sacct_job(text: str, job_id: str) -> dict | None:
    """``sacct -n -P -X -j ID -o SACCT_FIELDS`` -> {state, exit_code, reason, nodes}, or None."""
    for line in text.splitlines():
        f = line.strip().split(SEP)
        if len(f) >= 5 and f[0] == str(job_id):
            return {"state": f[1], "exit_code": f[2], "reason": f[3], "nodes": f[4]}
    return None


def scontrol_job(text: str, job_id: str) -> dict | None:
    """``scontrol show job -o ID`` -> {state, exit_code, reason, nodes} (clusters without sacct), or None."""
    for line in text.splitlines():
        kv = key_values(line)
        if kv.get("JobId") == str(job_id):
            return {"state": kv.get("JobState", ""), "exit_code": kv.get("ExitCode", ""),
                    "reason": kv.get("Reason", ""), "nodes": kv.get("NodeList", "")}
    return None


def _int(text) -> int | None:
    text = (text or "").strip().rstrip("+")
    return int(text) if text.isdigit() else None


# sinfo -h -R -o DOWN_FORMAT: nodes that are down or drained, with Slurm's reason
DOWN_FORMAT = "%N|%E"


def down_nodes(text: str) -> list[tuple[str, str]]:
    """``sinfo -h -R -o DOWN_FORMAT`` -> [(nodes, reason)], e.g. [("node2", "Not responding")]."""
    out = []
    for line in text.splitlines():
        nodes_, sep, reason = line.strip().partition(SEP)
        if sep and nodes_:
            out.append((nodes_, reason.strip()))
    return out
