"""Environments: an interpreter (or a Docker base image), its packages and variables (the seed's Environment).

A run gets the environment's pip packages in a virtual environment over the interpreter (see
``engine/local_env.py``); conda-only packages are refused with a message naming them
(:mod:`.conda_dependencies`). Registered environments are JSON files under the workspace's
``envs/registered/<name>/<version>.json``; the curated ``AzureML-TensorFlow-*`` names map to the
local TensorFlow interpreter.
"""
from __future__ import annotations

import json
import os
import re
from importlib import metadata
from pathlib import Path

from .conda_dependencies import CondaDependencies, conda_problem
from .errors import UserErrorException

_CURATED = re.compile(r"^AzureML-TensorFlow-(\d+\.\d+)(?:\.\d+)?(?:-(CPU|GPU))?$", re.IGNORECASE)
CURATED_EXAMPLES = ("AzureML-TensorFlow-2.3-CPU", "AzureML-TensorFlow-2.3-GPU", "AzureML-TensorFlow-2.0-GPU")


class PythonSection:
    """``env.python``: the interpreter and its conda/pip dependencies."""

    def __init__(self, interpreter_path: str | None = None):
        self.interpreter_path = interpreter_path
        self.user_managed_dependencies = False
        self.conda_dependencies = CondaDependencies()
        self.conda_dependencies_file = None


class DockerSection:
    """``env.docker``: the base image for runs on a docker target (None: the target's image)."""

    def __init__(self, base_image: str | None = None):
        self.base_image = base_image
        self.enabled = base_image is not None
        self.shm_size = None
        self.arguments: list[str] = []


def local_tensorflow_version() -> str | None:
    for dist in ("tensorflow", "tensorflow-cpu"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


class Environment:
    """``Environment(name)``; ``Environment.get(ws, name)``, ``from_conda_specification``, ``from_pip_requirements``."""

    def __init__(self, name: str = "default", pip_packages=None, python: str | None = None,
                 docker_image: str | None = None, framework_version: str | None = None):
        if not isinstance(name, str) or not name.strip():
            raise UserErrorException("an environment needs a name, e.g. Environment('my-env')")
        self.name = name
        self.version: str | None = None
        self.pip_packages = list(pip_packages or [])
        self.python = PythonSection(python)
        self.docker = DockerSection(docker_image)
        self.framework_version = framework_version
        self.environment_variables: dict[str, str] = {}
        self.notes: list[str] = []

    @property
    def docker_image(self) -> str | None:
        return self.docker.base_image

    @docker_image.setter
    def docker_image(self, value: str | None) -> None:
        self.docker.base_image = value

    # -- construction ------------------------------------------------------------------------------
    @staticmethod
    def from_conda_specification(name: str, file_path: str) -> "Environment":
        env = Environment(name)
        env.python.conda_dependencies = CondaDependencies(file_path)
        env.python.conda_dependencies_file = str(file_path)
        return env

    @staticmethod
    def from_pip_requirements(name: str, file_path: str) -> "Environment":
        path = Path(file_path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UserErrorException(f"cannot read the requirements file {path}: {exc.strerror or exc}") from exc
        env = Environment(name)
        for n, line in enumerate(lines, 1):
            line = line.split(" #")[0].strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("-"):
                raise UserErrorException(f"{path} line {n}: pip options such as {line.split()[0]!r} are not "
                                         "supported here; list one package per line")
            env.python.conda_dependencies.add_pip_package(line)
        return env

    @staticmethod
    def get(workspace, name: str, version: str | None = None) -> "Environment":
        registered = _registered_file(workspace, name, version)
        if registered is not None:
            return Environment._from_dict(json.loads(registered.read_text(encoding="utf-8")))
        curated = curated_environment(name)
        if curated is not None:
            return curated
        known = sorted(Environment.list(workspace))
        raise UserErrorException(f"no environment named {name!r}" + (f" version {version}" if version else "")
                                 + f"; registered: {', '.join(k for k in known if not _CURATED.match(k)) or 'none'};"
                                 f" curated names look like {CURATED_EXAMPLES[0]}")

    @staticmethod
    def list(workspace) -> dict[str, "Environment"]:
        out = {n: curated_environment(n) for n in CURATED_EXAMPLES}
        root = _registry(workspace)
        if root.is_dir():
            for folder in sorted(root.iterdir()):
                latest = _registered_file(workspace, folder.name)
                if latest is not None:
                    out[folder.name] = Environment._from_dict(json.loads(latest.read_text(encoding="utf-8")))
        return out

    def register(self, workspace) -> "Environment":
        """Stores this definition as the next version of its name; returns it with ``version`` set."""
        folder = _registry(workspace) / _safe_name(self.name)
        folder.mkdir(parents=True, exist_ok=True)
        versions = [int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit()]
        self.version = str(max(versions, default=0) + 1)
        tmp = folder / f".{self.version}.tmp"
        tmp.write_text(json.dumps(self.as_dict(), indent=2), encoding="utf-8")
        tmp.replace(folder / f"{self.version}.json")
        return self

    # -- what a run gets --------------------------------------------------------------------------------
    def run_environment(self) -> dict:
        """pip packages, interpreter, image, framework version and notes for the run spec; refuses conda-only
        packages (naming them) rather than installing them with pip."""
        deps = self.python.conda_dependencies
        problem = conda_problem(deps.conda_only_packages())
        if problem:
            raise UserErrorException(f"environment {self.name!r}: {problem}")
        notes = list(self.notes)
        skipped = deps.skipped_pip_packages()
        if skipped:
            notes.append(f"skipped {', '.join(skipped)}: the azureml names are served by mltrain_desktop.compat")
        pip = [p for p in self.pip_packages if p not in deps.pip_packages] + deps.installable_pip_packages()
        return {"pip_packages": pip, "python": self.python.interpreter_path, "docker_image": self.docker.base_image,
                "framework_version": self.framework_version, "notes": notes}

    def as_dict(self) -> dict:
        deps = self.python.conda_dependencies
        return {"name": self.name, "version": self.version, "pip_packages": self.pip_packages,
                "interpreter_path": self.python.interpreter_path, "docker_image": self.docker.base_image,
                "framework_version": self.framework_version, "environment_variables": self.environment_variables,
                "conda": deps.as_dict(), "notes": self.notes}

    @staticmethod
    def _from_dict(d: dict) -> "Environment":
        env = Environment(d["name"], pip_packages=d.get("pip_packages"), python=d.get("interpreter_path"),
                          docker_image=d.get("docker_image"), framework_version=d.get("framework_version"))
        env.version = d.get("version")
        env.environment_variables = dict(d.get("environment_variables") or {})
        env.python.conda_dependencies = CondaDependencies(_underlying_structure=d.get("conda") or {})
        env.notes = list(d.get("notes") or [])
        return env

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, version={self.version!r})"


def compat_requested() -> bool:
    """Whether this process serves the azureml names (``mltrain_desktop.compat.enable()`` sets MLTRAIN_COMPAT=1):
    runs it submits are then marked ``"compat": True`` so their job can serve ``azureml.core.Run`` too."""
    return os.environ.get("MLTRAIN_COMPAT") == "1"


def curated_environment(name: str) -> Environment | None:
    """``AzureML-TensorFlow-<v>[-CPU|-GPU]`` -> the local TensorFlow interpreter, with a note saying so."""
    m = _CURATED.match(name or "")
    if not m:
        return None
    env = Environment(name)
    env.version = "1"
    have = local_tensorflow_version()
    env.notes.append(f"curated environment {name} (TensorFlow {m.group(1)}) runs on the local TensorFlow "
                     f"{have or '(not installed in this interpreter)'}, the nearest supported version")
    return env


def _registry(workspace) -> Path:
    return Path(workspace.path) / "envs" / "registered"


def _safe_name(name: str) -> str:
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", name):
        raise UserErrorException(f"environment name {name!r} may hold letters, digits, '.', '_' and '-' only "
                                 "(128 at most, starting with a letter or digit)")
    return name


def _registered_file(workspace, name: str, version: str | None = None) -> Path | None:
    folder = _registry(workspace) / _safe_name(name)
    if version is not None:
        f = folder / f"{version}.json"
        return f if f.is_file() else None
    versions = sorted((int(p.stem), p) for p in folder.glob("*.json") if p.stem.isdigit()) if folder.is_dir() else []
    return versions[-1][1] if versions else None


__all__ = ["Environment", "PythonSection", "DockerSection", "CondaDependencies", "curated_environment",
           "compat_requested"]
