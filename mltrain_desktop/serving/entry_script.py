"""Azure ML style scoring: an entry script's ``init()`` once, ``run(raw_body)`` per request."""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, Callable

from .errors import EXIT_ENTRY_SCRIPT_FAILED, StartupError, model_error, short_exc
from .model_loading import Servable
from .protocol import ProtocolError

log = logging.getLogger("mltrain.serving")


class ScriptServable(Servable):
    """Azure ML style scoring: the entry script's init() once, run(raw_body) per request."""
    kind = "entry_script"

    def __init__(self, entry_script: str | os.PathLike, model_path: Path):
        def fail(msg: str) -> StartupError:
            return StartupError("entry_script", msg, EXIT_ENTRY_SCRIPT_FAILED)

        if not model_path.exists():
            raise model_error(f"model path does not exist: {model_path}")
        script = Path(entry_script).expanduser().resolve()
        if not script.is_file():
            raise fail(f"entry script not found: {script}")
        self.script = script
        os.environ["AZUREML_MODEL_DIR"] = str(model_path)
        os.environ["MLTRAIN_MODEL_DIR"] = str(model_path)
        if str(script.parent) not in sys.path:
            sys.path.insert(0, str(script.parent))
        mod_name = script.stem if script.stem.isidentifier() and script.stem not in sys.modules \
            else "_mltrain_entry_script"
        try:
            spec = importlib.util.spec_from_file_location(mod_name, script)
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
        except BaseException as e:
            log.error("importing entry script %s failed:\n%s", script, traceback.format_exc())
            raise fail(f"importing entry script {script} failed: {short_exc(e)}") from None
        run = getattr(module, "run", None)
        if not callable(run):
            raise fail(f"entry script {script} has no run(raw_data) function")
        self._run: Callable[[str], Any] = run
        self._lock = threading.Lock()
        init = getattr(module, "init", None)
        if callable(init):
            log.info("calling init() of %s (AZUREML_MODEL_DIR=%s)", script, model_path)
            try:
                init()
            except BaseException as e:
                log.error("init() of %s failed:\n%s", script, traceback.format_exc())
                raise fail(f"init() of entry script {script} failed: {short_exc(e)}") from None
        else:
            log.warning("entry script %s has no init(); calling run() only", script)

    def warm_up(self) -> None:
        pass

    def score(self, body: bytes) -> tuple[int, bytes]:
        try:
            raw = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtocolError(f"request body is not UTF-8 text ({e})") from None
        with self._lock:
            try:
                result = self._run(raw)
            except Exception as e:
                log.error("run() raised:\n%s", traceback.format_exc())
                raise ProtocolError(f"run() of the entry script failed: {short_exc(e)}",
                                    500) from None
        if isinstance(result, (bytes, bytearray)):
            result = bytes(result).decode("utf-8", errors="replace")
        if isinstance(result, str):
            try:
                json.loads(result)
                return 200, result.encode("utf-8")
            except ValueError:
                return 200, json.dumps(result).encode("utf-8")
        try:
            return 200, json.dumps(result, default=_json_default).encode("utf-8")
        except (TypeError, ValueError) as e:
            raise ProtocolError(f"run() returned a value that is not JSON serialisable "
                                f"({type(result).__name__}): {e}", 500) from None


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):      # numpy arrays and scalars, tf EagerTensors via numpy()
        return o.tolist()
    if hasattr(o, "numpy"):
        return o.numpy().tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")

