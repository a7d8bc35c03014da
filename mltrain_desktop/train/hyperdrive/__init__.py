"""Hyperparameter sweeps with Azure ML SDK v1's names (``azureml.train.hyperdrive``), sampled by Optuna.

Importing this package does not import Optuna; it loads when a sweep samples (``SweepSampler``).
"""
from __future__ import annotations

from .config import HyperDriveConfig, SweepSettings
from .distributions import (choice, loguniform, lognormal, normal, qloguniform, qlognormal, qnormal, quniform,
                            randint, uniform)
from .goal import PrimaryMetricGoal
from .parameter_sampling import (BayesianParameterSampling, GridParameterSampling, HyperParameterSampling,
                                 RandomParameterSampling)
from .policies import (BanditPolicy, Decision, EarlyTerminationPolicy, MedianStoppingPolicy, NoTerminationPolicy,
                       TruncationSelectionPolicy)

_LAZY = ("SweepSampler", "SweepExhausted", "SeedReport", "TrialRecord", "HyperDriveRun")


def __getattr__(name: str):
    if name == "HyperDriveRun":
        from .run import HyperDriveRun
        return HyperDriveRun
    if name in _LAZY:
        from . import sampling
        return getattr(sampling, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["RandomParameterSampling", "GridParameterSampling", "BayesianParameterSampling", "HyperParameterSampling",
           "BanditPolicy", "MedianStoppingPolicy", "TruncationSelectionPolicy", "NoTerminationPolicy",
           "EarlyTerminationPolicy", "Decision", "HyperDriveConfig", "SweepSettings", "PrimaryMetricGoal",
           "choice", "randint", "uniform", "quniform", "loguniform", "qloguniform", "normal", "qnormal",
           "lognormal", "qlognormal", *_LAZY]
