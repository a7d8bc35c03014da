"""The azureml compatibility layer: Azure ML SDK v1 names mapped onto this package, only when asked.

``enable()`` installs a meta-path finder that serves ``azureml.core``, ``azureml.train.dnn``,
``azureml.train.hyperdrive`` and the other modules of :mod:`.tree`. It never shadows a real Azure ML
SDK: when ``azureml-core`` is installed, or an ``azureml.core`` package is importable, enable()
refuses and says why. Ways in: ``enable()``, ``python -m mltrain_desktop.compat script.py``,
``mltrain exec script.py`` and ``%load_ext mltrain_desktop``.
"""
from __future__ import annotations

import importlib.machinery
import importlib.metadata
import os
import sys

from ..domain.errors import MLTrainError  # the standard library only: jobs import this package too
from .finder import MARK, AzuremlFinder, served_modules

JOB_FLAG = "MLTRAIN_COMPAT"

_FINDER: AzuremlFinder | None = None


class CompatRefused(MLTrainError):
    """A real Azure ML SDK is importable here; the compatibility layer will not shadow it."""


def real_sdk_problem() -> str | None:
    """Why the layer must stay off (a real azureml-core is importable), or None."""
    advice = ("mltrain_desktop.compat will not shadow it. Run the script in a Python without azureml-core "
              "(e.g. a fresh virtual environment), or uninstall it with `pip uninstall azureml-core`.")
    try:
        dist = importlib.metadata.distribution("azureml-core")
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        where = getattr(dist, "_path", None)
        return f"the Azure ML SDK azureml-core {dist.version} is installed{f' ({where})' if where else ''}; {advice}"
    loaded = sys.modules.get("azureml")
    if loaded is not None and not getattr(loaded, MARK, False):
        return f"a real 'azureml' package is already imported from {getattr(loaded, '__path__', '?')}; {advice}"
    spec = importlib.machinery.PathFinder.find_spec("azureml")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if os.path.isdir(os.path.join(folder, "core")) or os.path.isfile(os.path.join(folder, "core.py")):
            return f"an azureml.core package is importable from {folder}; {advice}"
    return None


def is_enabled() -> bool:
    return _FINDER is not None and _FINDER in sys.meta_path


def enable(quiet: bool = True) -> None:
    """Serves the ``azureml`` names from now on in this process; raises CompatRefused next to a real SDK."""
    global _FINDER
    if is_enabled():
        return
    problem = real_sdk_problem()
    if problem:
        raise CompatRefused(f"cannot enable the azureml compatibility layer: {problem}")
    _FINDER = AzuremlFinder()
    sys.meta_path.insert(0, _FINDER)
    os.environ[JOB_FLAG] = "1"  # processes started from here (supervisors, their local jobs) may serve it too
    if not quiet:
        print("azureml names served by MLTrain Desktop (mltrain_desktop.compat)", flush=True)


def disable() -> None:
    """Removes the finder and forgets the azureml modules it served."""
    global _FINDER
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    _FINDER = None
    os.environ.pop(JOB_FLAG, None)
    for name in served_modules():
        del sys.modules[name]


def run_script(script: str, args: list[str], job: bool = False) -> None:
    """Runs ``script`` as ``__main__`` with ``sys.argv = [script, *args]`` and the layer enabled
    (``job``: the in-job tree, and no refusal: next to a real SDK the script simply gets that)."""
    import runpy
    path = os.path.abspath(script)
    if not os.path.isfile(path):
        raise MLTrainError(f"script {script} does not exist")
    if job:
        os.environ[JOB_FLAG] = "1"
        enable_in_job()
    else:
        enable()
    old_argv, old_path0 = sys.argv, sys.path[0] if sys.path else None
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(path))
    try:
        runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv = old_argv
        if sys.path and sys.path[0] == os.path.dirname(path) and old_path0 != sys.path[0]:
            del sys.path[0]


def enable_in_job() -> bool:
    """Inside a job: serves ``azureml.core.Run`` (the in-job run of ``mltrain_desktop.run``) when the job was
    started with MLTRAIN_COMPAT=1 and no real SDK is importable. Standard library only; True when served."""
    global _FINDER
    if os.environ.get(JOB_FLAG) != "1" or is_enabled() or real_sdk_problem():
        return is_enabled()
    from .tree import JOB_TREE
    _FINDER = AzuremlFinder(JOB_TREE)
    sys.meta_path.insert(0, _FINDER)
    return True


__all__ = ["enable_in_job", "enable", "disable", "is_enabled", "real_sdk_problem", "run_script", "CompatRefused"]
