"""The errors every layer may raise; each message says what was wrong and what to do."""
from __future__ import annotations


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


class PrepareError(RuntimeError):
    """A job cannot start: the message says what was wrong and what to do."""


__all__ = ["MLTrainError", "WorkspaceError", "UserErrorException", "DatasetError", "RunError",
           "ModelError", "PrepareError"]
