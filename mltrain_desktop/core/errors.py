"""Exceptions the SDK raises (defined in the domain layer, so every layer can raise them)."""
from __future__ import annotations

from ..domain.errors import DatasetError, MLTrainError, ModelError, RunError, UserErrorException, WorkspaceError
from ..store.db import StoreError

__all__ = ["MLTrainError", "WorkspaceError", "UserErrorException", "DatasetError", "RunError",
           "ModelError", "StoreError"]
