"""The seed's ``CondaDependencies``: conda and pip packages of an environment, as a conda YAML file.

What a run does with them: pip packages are installed into the run's virtual environment,
``azureml-*`` pip packages are recognised and skipped (their names are served by the compat
layer), ``python``/``pip`` are what the interpreter already has, and any other conda package is
refused with a message naming it (see :func:`conda_problem`; it says whether conda or mamba
is on this machine). Nothing conda-only is ever installed with pip.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import yaml

from .errors import UserErrorException

DEFAULT_FILE = "conda_dependencies.yml"
_BASICS = {"python", "pip"}


def package_name(spec: str) -> str:
    """'numpy==1.26' / 'numpy>=1' / 'conda-forge::numpy=1.2' -> 'numpy'."""
    spec = spec.split("::")[-1]
    return re.split(r"[=<>!~\[; ]", spec.strip(), maxsplit=1)[0].lower()


def is_azureml_package(spec: str) -> bool:
    return package_name(spec).startswith("azureml")


def _check_package(spec, what: str) -> str:
    if not isinstance(spec, str) or not spec.strip():
        raise UserErrorException(f"{what} {spec!r} must be a non-empty string such as 'numpy==1.26'")
    return spec.strip()


class CondaDependencies:
    """``CondaDependencies(path)`` reads a conda YAML file; ``CondaDependencies.create(...)`` builds one."""

    def __init__(self, conda_dependencies_file_path: str | os.PathLike | None = None, _underlying_structure=None):
        self.name = "project_environment"
        self.channels: list[str] = []
        self._conda: list[str] = []
        self._pip: list[str] = []
        if conda_dependencies_file_path is not None:
            path = Path(conda_dependencies_file_path)
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except OSError as exc:
                raise UserErrorException(f"cannot read the conda file {path}: {exc.strerror or exc}") from exc
            except yaml.YAMLError as exc:
                raise UserErrorException(f"{path} is not a conda environment file (YAML): {exc}") from exc
            self._load(data or {}, str(path))
        elif _underlying_structure is not None:
            self._load(_underlying_structure, "the given structure")

    def _load(self, data, where: str) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("dependencies", []), list):
            raise UserErrorException(f"{where} needs a mapping with a 'dependencies:' list, as conda writes it")
        self.name = str(data.get("name") or self.name)
        self.channels = [str(c) for c in data.get("channels") or []]
        for dep in data.get("dependencies") or []:
            if isinstance(dep, dict) and "pip" in dep:
                for p in dep["pip"] or []:
                    self.add_pip_package(p)
            else:
                self.add_conda_package(dep)

    @staticmethod
    def create(pip_indexurl=None, pip_packages=None, conda_packages=None, python_version: str | None = None,
               pin_sdk_version: bool = True) -> "CondaDependencies":
        cd = CondaDependencies()
        if python_version:
            cd.set_python_version(python_version)
        for p in conda_packages or []:
            cd.add_conda_package(p)
        for p in pip_packages or []:
            cd.add_pip_package(p)
        return cd

    # -- editing ---------------------------------------------------------------------------------
    def add_conda_package(self, conda_package: str) -> None:
        spec = _check_package(conda_package, "conda package")
        self._conda = [c for c in self._conda if package_name(c) != package_name(spec)] + [spec]

    def add_pip_package(self, pip_package: str) -> None:
        spec = _check_package(pip_package, "pip package")
        self._pip = [p for p in self._pip if package_name(p) != package_name(spec)] + [spec]

    def remove_conda_package(self, conda_package: str) -> None:
        self._conda = [c for c in self._conda if package_name(c) != package_name(conda_package)]

    def remove_pip_package(self, pip_package: str) -> None:
        self._pip = [p for p in self._pip if package_name(p) != package_name(pip_package)]

    def add_channel(self, channel: str) -> None:
        if channel not in self.channels:
            self.channels.append(channel)

    def set_python_version(self, version: str) -> None:
        self.add_conda_package(f"python={version}")

    @property
    def conda_packages(self) -> list[str]:
        return list(self._conda)

    @property
    def pip_packages(self) -> list[str]:
        return list(self._pip)

    # -- what a run installs ------------------------------------------------------------------------
    def installable_pip_packages(self) -> list[str]:
        """The pip packages a run installs: all but the ``azureml-*`` ones."""
        return [p for p in self._pip if not is_azureml_package(p)]

    def skipped_pip_packages(self) -> list[str]:
        return [p for p in self._pip if is_azureml_package(p)]

    def conda_only_packages(self) -> list[str]:
        """Conda packages beyond python and pip: those need conda or mamba."""
        return [c for c in self._conda if package_name(c) not in _BASICS]

    # -- files ------------------------------------------------------------------------------------
    def as_dict(self) -> dict:
        deps: list = list(self._conda)
        if self._pip:
            if not any(package_name(c) == "pip" for c in self._conda):
                deps.append("pip")
            deps.append({"pip": list(self._pip)})
        out = {"name": self.name, "dependencies": deps}
        if self.channels:
            out["channels"] = list(self.channels)
        return out

    def serialize_to_string(self) -> str:
        return yaml.safe_dump(self.as_dict(), sort_keys=False, default_flow_style=False)

    def save_to_file(self, base_directory: str | os.PathLike, conda_file_path: str | None = None) -> str:
        path = Path(base_directory) / (conda_file_path or DEFAULT_FILE)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.serialize_to_string(), encoding="utf-8")
        return str(path)

    save = save_to_file

    def __repr__(self) -> str:
        return f"CondaDependencies(conda={self._conda!r}, pip={self._pip!r})"


def conda_executable() -> str | None:
    """conda, mamba or micromamba on PATH (or named by CONDA_EXE / MAMBA_EXE), else None."""
    for env in ("MAMBA_EXE", "CONDA_EXE"):
        exe = os.environ.get(env)
        if exe and os.access(exe, os.X_OK):
            return exe
    for name in ("mamba", "micromamba", "conda"):
        found = shutil.which(name)
        if found:
            return found
    return None


def conda_problem(packages: list[str]) -> str | None:
    """Why a run cannot have these conda packages, or None when it can (none asked, or conda is here)."""
    if not packages:
        return None
    if conda_executable() is None:
        return (f"conda package(s) {', '.join(packages)} need conda or mamba, and neither is on this machine; "
                "they are not installed with pip. Install mamba/conda, or move the packages that exist on PyPI "
                "to pip_packages (CondaDependencies.add_pip_package).")
    # The run engine builds pip virtual environments only; refusing beats dropping the packages.
    return (f"conda package(s) {', '.join(packages)}: installing conda packages into a run is not supported yet "
            f"(found {conda_executable()}, but runs use pip environments); move the packages that exist on PyPI "
            "to pip_packages, or build an interpreter with them and pass it as Environment.python.interpreter_path.")
