"""Start-up failures of the inference server, with the exit code each one ends the process with."""
from __future__ import annotations

EXIT_KEY_FAILED = 3          # key file missing, unreadable or empty
EXIT_MODEL_FAILED = 4        # model path missing or not a loadable model
EXIT_ENTRY_SCRIPT_FAILED = 5  # entry script missing, not importable, or init() raised
EXIT_LISTEN_FAILED = 6       # could not bind host:port


class StartupError(Exception):
    """The server cannot start: ``stage`` (key, model, entry_script, listen) names the step."""

    def __init__(self, stage: str, message: str, exit_code: int):
        super().__init__(message)
        self.stage = stage
        self.message = message
        self.exit_code = exit_code


def model_error(message: str) -> StartupError:
    return StartupError("model", message, EXIT_MODEL_FAILED)


def short_exc(e: BaseException, limit: int = 600) -> str:
    """``Type: message``, cut to ``limit`` characters."""
    s = f"{type(e).__name__}: {e}"
    return s if len(s) <= limit else s[: limit - 3] + "..."
