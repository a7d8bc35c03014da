"""``azureml.telemetry``: nothing leaves this machine, so these do nothing."""
from __future__ import annotations

import logging


def set_diagnostics_collection(send_diagnostics: bool = True, path=None, reset: bool = False) -> None:
    """Azure sent usage data to Microsoft; here nothing is collected or sent."""


def get_diagnostics_collection_info(path=None) -> dict:
    return {"send_diagnostics": False}


def get_telemetry_log_handler(*_args, **_kwargs) -> logging.Handler:
    return logging.NullHandler()


__all__ = ["set_diagnostics_collection", "get_diagnostics_collection_info", "get_telemetry_log_handler"]
