"""The seed's ``azureml.train.dnn``: the TensorFlow estimator."""
from __future__ import annotations

from .estimator import Estimator


class TensorFlow(Estimator):
    """Runs a TensorFlow training script; framework_version is recorded and checked in containers."""

    framework_name = "TensorFlow"


__all__ = ["TensorFlow"]
