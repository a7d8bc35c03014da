"""Exceptions the SDK raises; each message says what was wrong and what to do."""
from __future__ import annotations

from ..store.db import StoreError


class MLTrainError(Exception):
    """Base of every error the SDK raises on purpose."""


class WorkspaceError(MLTrainError):
    pass


class UserErrorException(MLTrainError, ValueError):
    """Bad input from the caller (the seed's azureml.exceptions.UserErrorException)."""


class DatasetError(UserErrorException):
    pass


class RunError(MLTrainError):
    pass


class ModelError(UserErrorException):
    pass


__all__ = ["MLTrainError", "WorkspaceError", "UserErrorException", "DatasetError", "RunError",
           "ModelError", "StoreError"]
