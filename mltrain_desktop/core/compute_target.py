"""The seed's ``azureml.core.compute_target`` module: ComputeTargetException."""
from __future__ import annotations

from .errors import MLTrainError


class ComputeTargetException(MLTrainError):
    """A compute target is missing, invalid or unreachable."""
