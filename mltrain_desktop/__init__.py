"""MLTrain Desktop: Azure ML's "train TensorFlow at scale" workflow on your own machine.

The SDK's public names resolve lazily, so importing the in-job API pulls in nothing else.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_NAMES = {
    "Workspace": "mltrain_desktop.core.workspace",
    "Experiment": "mltrain_desktop.core.experiment",
    "Run": "mltrain_desktop.core.runs",
    "Dataset": "mltrain_desktop.core.dataset",
    "Model": "mltrain_desktop.core.model",
    "ScriptRunConfig": "mltrain_desktop.core.script_run_config",
    "Environment": "mltrain_desktop.core.script_run_config",
    "ComputeTarget": "mltrain_desktop.core.compute",
    "AmlCompute": "mltrain_desktop.core.compute",
    "LocalCompute": "mltrain_desktop.core.compute",
    "DockerCompute": "mltrain_desktop.core.compute_docker",
    "ComputeTargetException": "mltrain_desktop.core.compute_target",
    "ResourceConfiguration": "mltrain_desktop.core.resource_configuration",
    "MpiConfiguration": "mltrain_desktop.core.runconfig",
    "TensorflowConfiguration": "mltrain_desktop.core.runconfig",
    "TensorFlow": "mltrain_desktop.train.dnn",
    "Estimator": "mltrain_desktop.train.estimator",
}

__all__ = sorted(_NAMES) + ["__version__"]


def load_ipython_extension(ipython) -> None:
    """``%load_ext mltrain_desktop``: serves the azureml names in this kernel (see mltrain_desktop.compat)."""
    importlib.import_module("mltrain_desktop.compat").enable(quiet=False)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module 'mltrain_desktop' has no attribute {name!r}")
    value = getattr(importlib.import_module(_NAMES[name]), name)
    globals()[name] = value
    return value
