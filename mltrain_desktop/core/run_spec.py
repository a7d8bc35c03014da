"""Turns what a user submits (ScriptRunConfig or estimator) into a plain, validated run spec."""
from __future__ import annotations

import numbers
import re
import unicodedata
from pathlib import Path

from ..domain.distribution import validate_distribution, with_counts
from .errors import UserErrorException
from .runconfig import MpiConfiguration, TensorflowConfiguration

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
FRAMEWORK_VERSION = re.compile(r"[0-9]+(\.[0-9]+){0,2}")


def _line_breaking(text: str) -> str | None:
    """The first control or line-separator character of ``text`` (one would split a Dockerfile line)."""
    return next((c for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp")), None)


def _argument_item(value, where: str):
    from .dataset import DatasetConsumptionConfig, FileDataset
    if isinstance(value, DatasetConsumptionConfig):
        return value.to_spec()
    if isinstance(value, FileDataset):
        return value.as_mount().to_spec()
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Number) and not isinstance(value, complex):
        return str(value)
    raise UserErrorException(
        f"{where}: {value!r} is a {type(value).__name__}; a script argument must be a string, a number "
        "or a dataset input (dataset.as_named_input('name').as_mount())")


def normalize_arguments(script_params=None, arguments=None) -> list:
    """script_params (dict, the estimator's form) and arguments (list) -> list of str | input specs."""
    out: list = []
    if script_params:
        if not isinstance(script_params, dict):
            raise UserErrorException("script_params must be a dict such as {'--batch-size': 50}")
        for key, value in script_params.items():
            if not isinstance(key, str) or not key.strip():
                raise UserErrorException(f"script parameter name {key!r} must be a non-empty string")
            out.append(key)
            if value is None or value == "":
                continue
            out.append(_argument_item(value, f"script parameter {key}"))
    for i, value in enumerate(arguments or []):
        out.append(_argument_item(value, f"argument {i}"))
    names = [a["input"] for a in out if isinstance(a, dict)]
    dup = {n for n in names if names.count(n) > 1}
    if dup and len({(a["input"], a["version_id"]) for a in out if isinstance(a, dict)}) != len(set(names)):
        raise UserErrorException(f"two different datasets use the input name {sorted(dup)[0]!r}; give each its own")
    return out


def distribution_spec(distributed_training, node_count: int = 1, process_count_per_node: int = 1) -> dict | None:
    """The run spec's distribution: ``distributed_training`` with the estimator's own counts applied."""
    if distributed_training is None:
        dist = None
    elif isinstance(distributed_training, (MpiConfiguration, TensorflowConfiguration)):
        dist = distributed_training.checked()
    elif isinstance(distributed_training, dict):
        dist = validate_distribution(distributed_training)
    else:
        raise UserErrorException("distributed_training must be MpiConfiguration() or TensorflowConfiguration()")
    dist = with_counts(dist, node_count, process_count_per_node)
    return None if dist is None else dist.to_dict()


def checked_framework_version(value):
    """None, or a version such as '2.21' or '2.21.0' (it goes into the image's build commands)."""
    if value is None:
        return None
    text = str(value).strip()
    if not FRAMEWORK_VERSION.fullmatch(text):
        raise UserErrorException(f"framework_version {value!r} is not a version: use digits and dots such as "
                                 "'2.21' or '2.21.0', or leave it out to use the interpreter's TensorFlow")
    return text


def build_spec(*, source_directory, entry_script, arguments: list, compute_target, use_gpu=False,
               pip_packages=None, framework_version=None, environment_variables=None, distribution=None,
               python=None, docker: dict | None = None, max_run_duration_seconds=None) -> dict:
    if source_directory is None:
        raise UserErrorException("source_directory is required: the folder holding your training script")
    src = Path(source_directory).expanduser()
    if not src.is_dir():
        raise UserErrorException(f"source_directory {src} does not exist or is not a folder")
    if not entry_script or not isinstance(entry_script, str):
        raise UserErrorException("entry_script is required: the script to run, relative to source_directory")
    script_path = (src / entry_script)
    if not script_path.is_file():
        raise UserErrorException(f"entry script {entry_script} was not found in {src.resolve()}")
    try:
        script_path.resolve().relative_to(src.resolve())
    except ValueError:
        raise UserErrorException(f"entry script {entry_script} must be inside source_directory {src}") from None
    _check_arguments(arguments)
    env_vars = _checked_environment(environment_variables)
    pip = [_checked_pip_package(p) for p in pip_packages or []]
    framework_version = checked_framework_version(framework_version)
    docker = dict(docker or {})
    if docker.get("base_image") is not None:
        docker["base_image"] = _checked_image(docker["base_image"])
    from .compute import ComputeTarget
    if isinstance(compute_target, ComputeTarget):
        target_name = compute_target.name
    elif compute_target is None or isinstance(compute_target, str):
        target_name = compute_target or "local"
    else:
        raise UserErrorException("compute_target must be a ComputeTarget or its name")
    return {
        "source_directory": str(src.resolve()),
        "entry_script": Path(entry_script).as_posix(),
        "arguments": arguments,
        "compute_target": target_name,
        "use_gpu": bool(use_gpu),
        "environment": {"pip_packages": pip, "framework_version": framework_version, "python": python,
                        "docker": docker},
        "environment_variables": env_vars,
        "distribution": distribution,
        "max_run_duration_seconds": max_run_duration_seconds,
    }


def _check_arguments(arguments: list) -> None:
    """Every script argument must be one a process can receive: text without NUL, or a dataset input."""
    from .dataset import check_input_name
    for i, a in enumerate(arguments or []):
        if isinstance(a, dict):
            check_input_name(a.get("input"))
        elif isinstance(a, str) and "\x00" in a:
            raise UserErrorException(f"script argument {i} ({a!r}) holds a NUL character, which no process can "
                                     "receive in its command line; remove it")


def _checked_environment(environment_variables) -> dict[str, str]:
    if environment_variables is not None and not isinstance(environment_variables, dict):
        raise UserErrorException("environment_variables must be a dict such as {'MY_FLAG': '1'}")
    out = {}
    for k, v in (environment_variables or {}).items():
        if not isinstance(k, str) or not ENV_NAME.fullmatch(k):
            raise UserErrorException(f"environment variable name {k!r} is not valid: use letters, digits and "
                                     "'_', not starting with a digit (for example 'MY_FLAG')")
        value = str(v)
        if "\x00" in value:
            raise UserErrorException(f"environment variable {k}'s value holds a NUL character, which no process "
                                     "can receive in its environment; remove it")
        out[k] = value
    return out


def _checked_pip_package(p) -> str:
    if not isinstance(p, str) or not p.strip():
        raise UserErrorException(f"pip package {p!r} must be a non-empty string such as 'pandas==2.2'")
    p = p.strip()
    bad = _line_breaking(p)
    if bad is not None:
        raise UserErrorException(f"pip package {p!r} holds the control character {bad!r}; give one requirement "
                                 "per string, such as 'pandas==2.2'")
    if p.startswith("-"):
        raise UserErrorException(f"pip package {p!r} starts with '-', so pip would read it as an option; give a "
                                 "requirement such as 'pandas==2.2' (pip options cannot be passed here)")
    return p


def _checked_image(image) -> str:
    """A custom Docker base image reference: one word, such as 'python:3.11-slim' or 'registry:5000/img:tag'."""
    text = str(image).strip()
    if not text or text.startswith("-") or _line_breaking(text) is not None or any(c.isspace() for c in text):
        raise UserErrorException(f"custom Docker image {image!r} is not a valid image reference: give one name "
                                 "without spaces or control characters, such as 'python:3.11-slim'")
    return text
