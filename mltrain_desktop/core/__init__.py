"""The SDK's core names, as in the seed's ``azureml.core`` (resolved lazily).

Lazy resolution keeps ``from mltrain_desktop.core import Run`` inside a job down to the
standard library: nothing else is imported until a name is used.
"""
from __future__ import annotations

import importlib

_NAMES = {
    "Workspace": ".workspace",
    "Experiment": ".experiment",
    "Run": ".runs",
    "Dataset": ".dataset",
    "FileDataset": ".dataset",
    "Model": ".model",
    "ScriptRunConfig": ".script_run_config",
    "Environment": ".script_run_config",
    "ComputeTarget": ".compute",
    "ResourceConfiguration": ".resource_configuration",
    "Webservice": ".webservice",
    "LocalWebservice": ".webservice",
    "InferenceConfig": ".webservice",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module 'mltrain_desktop.core' has no attribute {name!r}")
    ref = _NAMES[name]
    module = importlib.import_module(ref, __name__) if ref.startswith(".") else importlib.import_module(ref)
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
