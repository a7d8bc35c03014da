"""The inference server: one process serving one registered model over TF Serving's REST API.

    python -m mltrain_desktop.serving.server --model-name NAME --model-version N \
        --model-path PATH --key-file FILE [--port 0] [--host 127.0.0.1] \
        [--entry-script score.py] [--max-body-bytes 10485760] [--ready-file FILE]

Start-up: read the key file, find and load the model (TensorFlow is imported here, in this
process only, and only when a model is loaded), warm it up, listen, then write the ready file
atomically: ``{"port", "pid", "signature", "url", ...}``; on failure write ``{"error", "stage",
"pid"}`` there instead and exit non-zero (see ``EXIT_*``). SIGTERM or SIGINT stop it
gracefully: stop accepting, let requests in flight finish (up to 10 s), remove the ready file,
exit 0.

Endpoints (all but ``/healthz`` need ``Authorization: Bearer <key>``, the key being the key
file's content, re-read whenever the file changes):

    GET  /healthz                                   {"status": "ok"}
    GET  /v1/stats                                  counters, requests/s, p50/p99 latency
    GET  /v1/models/{name}[/versions/{n}]           model status (TF Serving format)
    GET  /v1/models/{name}[/versions/{n}]/metadata  signature_def (TF Serving format)
    POST /v1/models/{name}[/versions/{n}]:predict   {"instances"} or {"inputs"} -> predictions
    POST /score                                     entry script's run(), else like :predict
                                                    (also accepting Azure-style {"data": rows})

With ``--entry-script`` the script's ``init()`` is called once at start (``AZUREML_MODEL_DIR``
and ``MLTRAIN_MODEL_DIR`` set to the model path) and both ``/score`` and ``:predict`` answer
``run(raw_body)``; the server does not load the model itself then, so metadata has no
signature. ``run()`` calls are serialised (one at a time), like a single Azure ML worker.
"""
from __future__ import annotations

import argparse
import dataclasses
import hmac
import http.server
import importlib.util
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
import zipfile
from pathlib import Path
from typing import Any, Callable

from . import protocol
from .protocol import ProtocolError, TensorSpec
from .stats import RequestStats

log = logging.getLogger("mltrain.serving")

EXIT_KEY_FAILED = 3          # key file missing, unreadable or empty
EXIT_MODEL_FAILED = 4        # model path missing or not a loadable model
EXIT_ENTRY_SCRIPT_FAILED = 5  # entry script missing, not importable, or init() raised
EXIT_LISTEN_FAILED = 6       # could not bind host:port

DEFAULT_MAX_BODY = 10 * 1024 * 1024
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
SHUTDOWN_GRACE_S = 10.0
LINGER_S = 2.0               # how long to drain an unread request body before closing


class StartupError(Exception):
    def __init__(self, stage: str, message: str, exit_code: int):
        super().__init__(message)
        self.stage = stage
        self.message = message
        self.exit_code = exit_code


def _model_error(message: str) -> StartupError:
    return StartupError("model", message, EXIT_MODEL_FAILED)


def _short_exc(e: BaseException, limit: int = 600) -> str:
    s = f"{type(e).__name__}: {e}"
    return s if len(s) <= limit else s[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------
# Finding the model (standard library only, so a wrong path fails fast, before TF is imported)
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ResolvedModel:
    kind: str     # "keras" (a .keras/.h5 file) or "saved_model" (a folder)
    path: Path


def resolve_model_path(path: str | os.PathLike) -> ResolvedModel:
    """Where the model is and what it is.

    A ``.keras``/``.h5`` file; or a folder holding ``model.keras`` (preferred), a SavedModel
    (``saved_model.pb``), a single ``*.keras`` / ``*.h5`` file, or one of those in a
    ``saved_model/`` or other subfolder (two levels at most, e.g. a registered copy of the
    sample's ``outputs/`` folder).
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise _model_error(f"model path does not exist: {p}")
    if p.is_file():
        if p.suffix.lower() in KERAS_SUFFIXES:
            return ResolvedModel("keras", p)
        if p.name == "saved_model.pb":
            return ResolvedModel("saved_model", p.parent)
        raise _model_error(
            f"not a loadable model: {p} is neither a Keras file (.keras, .h5) nor a SavedModel "
            "(a folder with saved_model.pb)")
    found = _find_in_dir(p, depth=2)
    if found is None:
        raise _model_error(
            f"not a loadable model: no model found in folder {p}; expected model.keras, a "
            "*.keras or *.h5 file, or a SavedModel (saved_model.pb), directly or in a subfolder")
    return found


def _find_in_dir(d: Path, depth: int) -> ResolvedModel | None:
    if (d / "model.keras").is_file():
        return ResolvedModel("keras", d / "model.keras")
    if (d / "saved_model.pb").is_file():
        return ResolvedModel("saved_model", d)
    try:
        entries = sorted(d.iterdir())
    except OSError as e:
        raise _model_error(f"cannot list model folder {d}: {e}") from None
    for suffixes in ((".keras",), (".h5", ".hdf5")):
        files = [e for e in entries if e.is_file() and e.suffix.lower() in suffixes]
        if len(files) == 1:
            return ResolvedModel("keras", files[0])
        if len(files) > 1:
            raise _model_error(f"several models in {d} ({', '.join(f.name for f in files)}); "
                               "give the path of the one to serve")
    if depth <= 0:
        return None
    subdirs = [e for e in entries if e.is_dir() and not e.name.startswith(".")]
    if (d / "saved_model").is_dir():
        subdirs = [d / "saved_model"] + [s for s in subdirs if s.name != "saved_model"]
    hits = []
    for s in subdirs:
        r = _find_in_dir(s, depth - 1)
        if r is not None:
            if s.name == "saved_model" and not hits:
                return r
            hits.append(r)
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise _model_error(f"several models under {d} ({', '.join(str(h.path) for h in hits)}); "
                           "give the path of the one to serve")
    return None


# --------------------------------------------------------------------------------------------
# Servables: what answers a predict
# --------------------------------------------------------------------------------------------

class Servable:
    kind = "?"
    inputs: list[TensorSpec] | None = None
    outputs: list[TensorSpec] | None = None

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self.outputs or []]

    def signature_json(self) -> dict | None:
        if self.inputs is None:
            return None
        return {"inputs": [s.to_json() for s in self.inputs],
                "outputs": [s.to_json() for s in self.outputs or []]}

    def predict(self, feeds: dict) -> dict:
        raise NotImplementedError

    def warm_up(self) -> None:
        """One prediction on zeros so the first request does not pay for tracing."""
        import numpy as np
        if not self.inputs or any(s.shape is None or s.is_string for s in self.inputs):
            return
        feeds = {}
        for s in self.inputs:
            shape = [1 if (d is None and i == 0) else d for i, d in enumerate(s.shape)]
            if any(d is None for d in shape):
                return
            feeds[s.name] = np.zeros(shape, dtype=s.dtype)
        try:
            self.predict(feeds)
        except Exception as e:  # a model that cannot eat zeros still gets served
            log.warning("warm-up prediction failed (serving anyway): %s", _short_exc(e))


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    return tf


def _input_error_types(tf) -> tuple:
    return (tf.errors.InvalidArgumentError, ValueError, TypeError)


class KerasServable(Servable):
    kind = "keras"

    def __init__(self, path: Path):
        tf = _tf()
        import keras
        self._tf = tf
        try:
            model = keras.models.load_model(str(path), compile=False)
        except Exception as e:
            raise _model_error(f"not a loadable model: {path} could not be loaded as a Keras "
                               f"model: {_short_exc(e)}") from None
        self.model = model
        struct = _structure(model, "input")
        if struct is None:
            # A subclassed model without a known input: accept any float32 batch.
            self._input_kind = "single"
            self.inputs = [TensorSpec("input", "float32", None)]
            self.outputs = None
            self._output_names: list[str] = []
            self._fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
            return
        if isinstance(struct, dict):
            self._input_kind, names, tensors = "dict", list(struct), list(struct.values())
        elif isinstance(struct, (list, tuple)):
            tensors = list(struct)
            self._input_kind, names = "list", [t.name for t in tensors]
            if len(set(names)) != len(names):
                names = [f"input_{i}" for i in range(len(tensors))]
        else:
            self._input_kind, names, tensors = "single", [struct.name], [struct]
        self.inputs = [TensorSpec(n, _dtype_name(t.dtype), tuple(t.shape))
                       for n, t in zip(names, tensors)]
        out = _structure(model, "output")
        if isinstance(out, dict):
            onames, otensors = list(out), list(out.values())
        else:
            otensors = list(out) if isinstance(out, (list, tuple)) else [out]
            onames = list(getattr(model, "output_names", None) or [])
            if len(onames) != len(otensors) or len(set(onames)) != len(onames) or \
                    not all(isinstance(n, str) for n in onames):
                onames = [f"output_{i}" for i in range(len(otensors))]
        self._output_names = onames
        self.outputs = [TensorSpec(n, _dtype_name(t.dtype), tuple(t.shape))
                        for n, t in zip(onames, otensors)]
        kind = self._input_kind
        in_names = names

        def call(*args):
            if kind == "dict":
                x = dict(zip(in_names, args))
            elif kind == "list":
                x = list(args)
            else:
                x = args[0]
            return model(x, training=False)

        sig = [tf.TensorSpec(s.shape, s.dtype if s.dtype != "string" else tf.string)
               for s in self.inputs]
        self._fn = tf.function(call, input_signature=sig, autograph=False)

    def predict(self, feeds: dict) -> dict:
        args = [feeds[s.name] for s in self.inputs]
        try:
            y = self._fn(*args)
        except _input_error_types(self._tf) as e:
            raise ProtocolError(f"the model rejected the input: {_input_error_message(e)}") \
                from None
        return _outputs_to_numpy(y, self._output_names)


class SavedModelServable(Servable):
    kind = "saved_model"

    def __init__(self, path: Path):
        tf = _tf()
        self._tf = tf
        try:
            self._obj = tf.saved_model.load(str(path))
        except Exception as e:
            raise _model_error(f"not a loadable model: {path} could not be loaded as a "
                               f"SavedModel: {_short_exc(e)}") from None
        sigs = getattr(self._obj, "signatures", {}) or {}
        if "serving_default" in sigs:
            fn = sigs["serving_default"]
        elif len(sigs) == 1:
            name = next(iter(sigs))
            log.warning("SavedModel has no 'serving_default' signature; serving %r", name)
            fn = sigs[name]
        else:
            raise _model_error(f"not a loadable model: SavedModel {path} has no "
                               f"'serving_default' signature (signatures: {sorted(sigs)})")
        self._fn = fn
        _, kwargs = fn.structured_input_signature
        self.inputs = [TensorSpec(n, s.dtype.name, _tf_shape(s.shape)) for n, s in kwargs.items()]
        self._tf_dtypes = {n: s.dtype for n, s in kwargs.items()}
        outs = fn.structured_outputs
        if isinstance(outs, dict):
            self.outputs = [TensorSpec(n, s.dtype.name, _tf_shape(s.shape))
                            for n, s in outs.items()]
        else:
            self.outputs = [TensorSpec("output_0", outs.dtype.name, _tf_shape(outs.shape))]

    def predict(self, feeds: dict) -> dict:
        tf = self._tf
        try:
            kw = {n: tf.constant(v, dtype=self._tf_dtypes[n]) for n, v in feeds.items()}
            y = self._fn(**kw)
        except _input_error_types(tf) as e:
            raise ProtocolError(f"the model rejected the input: {_input_error_message(e)}") \
                from None
        return _outputs_to_numpy(y, self.output_names)


def _structure(model: Any, which: str) -> Any:
    """``model.input``/``model.output`` (a tensor, list or dict); for a Sequential model,
    which never gets those, the single tensor of ``model.inputs``/``model.outputs``."""
    try:
        return getattr(model, which)
    except (AttributeError, ValueError):
        pass
    try:
        flat = getattr(model, which + "s")
    except (AttributeError, ValueError):
        return None
    if not flat:
        return None
    return flat[0] if len(flat) == 1 else list(flat)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXC_LINE = re.compile(r"^\s*[A-Za-z_.]*(Error|Exception): ")


def _input_error_message(e: BaseException) -> str:
    """A TF/Keras error without the traced user-code frames and terminal colours."""
    text = _ANSI.sub("", str(e))
    lines = text.splitlines()
    starts = [i for i, ln in enumerate(lines) if _EXC_LINE.match(ln)]
    if starts:
        lines = lines[starts[-1]:]
        lines[0] = _EXC_LINE.sub("", lines[0])
    msg = " ".join(ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("File "))
    msg = f"{type(e).__name__}: {msg}"
    return msg if len(msg) <= 600 else msg[:597] + "..."


def _dtype_name(dtype: Any) -> str:
    name = getattr(dtype, "name", None) or str(dtype)
    return "string" if name in ("string", "object") else name


def _tf_shape(shape) -> tuple | None:
    if shape.rank is None:
        return None
    return tuple(shape.as_list())


def _outputs_to_numpy(y: Any, names: list[str]) -> dict:
    if isinstance(y, dict):
        return {k: v.numpy() for k, v in y.items()}
    if isinstance(y, (list, tuple)):
        return {(names[i] if i < len(names) else f"output_{i}"): v.numpy()
                for i, v in enumerate(y)}
    return {(names[0] if names else "output_0"): y.numpy()}


_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def check_model_file(resolved: ResolvedModel) -> None:
    """Cheap sanity check of a Keras file's format, before TensorFlow is imported (Keras's own
    error for a .keras file that is not a zip says "File not found", which misleads)."""
    if resolved.kind != "keras":
        return
    p = resolved.path
    try:
        if p.suffix.lower() == ".keras":
            if not zipfile.is_zipfile(p):
                raise _model_error(f"not a loadable model: {p} is not a Keras archive (a "
                                   ".keras file is a zip written by model.save())")
        else:
            with open(p, "rb") as f:
                head = f.read(2048 + 8)
            if not any(head[o:o + 8] == _HDF5_MAGIC for o in (0, 512, 1024, 2048)):
                raise _model_error(f"not a loadable model: {p} is not an HDF5 file")
    except OSError as e:
        raise _model_error(f"cannot read model file {p}: {e.strerror or e}") from None


def load_servable(model_path: str | os.PathLike) -> Servable:
    resolved = resolve_model_path(model_path)
    check_model_file(resolved)
    log.info("loading %s model from %s", resolved.kind, resolved.path)
    if resolved.kind == "keras":
        return KerasServable(resolved.path)
    return SavedModelServable(resolved.path)


class ScriptServable(Servable):
    """Azure ML style scoring: the entry script's init() once, run(raw_body) per request."""
    kind = "entry_script"

    def __init__(self, entry_script: str | os.PathLike, model_path: Path):
        def fail(msg: str) -> StartupError:
            return StartupError("entry_script", msg, EXIT_ENTRY_SCRIPT_FAILED)

        if not model_path.exists():
            raise _model_error(f"model path does not exist: {model_path}")
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
            raise fail(f"importing entry script {script} failed: {_short_exc(e)}") from None
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
                raise fail(f"init() of entry script {script} failed: {_short_exc(e)}") from None
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
                raise ProtocolError(f"run() of the entry script failed: {_short_exc(e)}",
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


# --------------------------------------------------------------------------------------------
# The API key
# --------------------------------------------------------------------------------------------

class KeyFile:
    """The key is the file's content (whitespace stripped), re-read when the file changes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._sig: tuple | None = None
        self._key: bytes | None = None
        try:
            self._refresh(os.stat(self.path))
        except OSError as e:
            raise StartupError("key", f"cannot read key file {self.path}: {e.strerror or e}",
                               EXIT_KEY_FAILED) from None
        if not self._key:
            raise StartupError("key", f"key file {self.path} is empty", EXIT_KEY_FAILED)

    def _refresh(self, st: os.stat_result) -> None:
        sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        if sig == self._sig:
            return
        data = self.path.read_bytes().strip()
        if self._sig is not None:
            log.info("key file %s changed; new key in use", self.path)
        self._sig, self._key = sig, data or None

    def current(self) -> bytes | None:
        with self._lock:
            try:
                self._refresh(os.stat(self.path))
            except OSError as e:
                if self._key is not None:
                    log.warning("key file %s unreadable (%s); refusing requests", self.path, e)
                self._sig, self._key = None, None
            return self._key

    def check(self, authorization: str | None) -> bool:
        key = self.current()
        if not key or not authorization:
            return False
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(token.strip().encode("utf-8", errors="replace"), key)


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------

class ServingApp:
    def __init__(self, name: str, version: str, servable: Servable, keys: KeyFile,
                 max_body: int = DEFAULT_MAX_BODY):
        self.name = name
        self.version = str(version)
        self.servable = servable
        self.keys = keys
        self.max_body = max_body
        self.stats = RequestStats()

    def endpoints_hint(self) -> str:
        m = f"/v1/models/{self.name}"
        return (f"endpoints: GET /healthz, GET /v1/stats, GET {m}, GET {m}/metadata, "
                f"POST {m}:predict, POST {m}/versions/{self.version}:predict, POST /score")

    def predict(self, body: bytes, via_score: bool) -> tuple[int, bytes, int]:
        s = self.servable
        if isinstance(s, ScriptServable):
            status, out = s.score(body)
            return status, out, 0
        req = protocol.parse_predict_request(body, s.inputs or [], data_alias=via_score)
        outputs = s.predict(req.feeds)
        resp = protocol.format_predict_response(outputs, s.output_names, req.row_format)
        return 200, json.dumps(resp).encode("utf-8"), req.batch_size


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MLTrainServing/0.1"
    sys_version = ""
    timeout = 120            # seconds a connection may sit idle or a body may trickle in
    # TCP_NODELAY: the status line + headers and the body go out as separate writes; with
    # Nagle's algorithm the body would wait for the client's delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True

    server: "_Server"

    def log_request(self, code="-", size="-"):
        pass

    def log_message(self, format, *args):
        log.warning("%s: %s", self.address_string(), format % args)

    def send_error(self, code, message=None, explain=None):
        """Errors the base class finds before a do_* method runs (a malformed request line,
        headers too long, ...), as JSON like every other answer; the connection is closed."""
        short = self.responses.get(code, ("Error",))[0]
        msg = message or short
        log.warning("%s %s: %s", code, getattr(self, "requestline", "") or "-", msg)
        body = json.dumps({"error": msg}).encode("utf-8")
        self.close_connection = True
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def handle_expect_100(self):
        if self._declared_length() > self.server.app.max_body:
            self._method = self.command
            self._unread = -1
            self._t0 = time.perf_counter()
            self._reply(413, {"error": self._too_large_message(self._declared_length())})
            self._log_line(413)
            return False
        return super().handle_expect_100()

    def do_GET(self): self._serve("GET")
    def do_POST(self): self._serve("POST")
    def do_PUT(self): self._serve("PUT")
    def do_DELETE(self): self._serve("DELETE")
    def do_PATCH(self): self._serve("PATCH")
    def do_HEAD(self): self._serve("HEAD")
    def do_OPTIONS(self): self._serve("OPTIONS")

    # -- plumbing ----------------------------------------------------------------------------
    def _declared_length(self) -> int:
        try:
            return int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return 0

    def _too_large_message(self, n: int) -> str:
        return (f"request body is {n} bytes; the limit is {self.server.app.max_body} bytes "
                "(--max-body-bytes); send fewer rows per request")

    def _serve(self, method: str) -> None:
        app = self.server.app
        self._t0 = time.perf_counter()
        self._method = method
        te = self.headers.get("Transfer-Encoding")
        if te and te.strip().lower() != "identity":
            self._unread = -1                     # unknown length: must close afterwards
        else:
            cl = self.headers.get("Content-Length")
            try:
                self._unread = int(cl) if cl is not None else 0
            except ValueError:
                self._unread = -1
        route = protocol.match_route(self.path)
        monitored = route is None or route.kind not in ("healthz", "stats")
        status, rows = 500, 0
        app.stats.started()
        try:
            status, body, headers, rows = self._route(app, method, route)
            self._reply(status, body, headers)
        except ProtocolError as e:
            status = e.status
            self._reply(status, protocol.error_body(e.message))
        except (ConnectionError, socket.timeout) as e:
            status = 499
            self.close_connection = True
            log.warning("%s %s: client connection lost: %s", method, self.path, e)
        except Exception as e:
            status = 500
            log.error("%s %s failed:\n%s", method, self.path, traceback.format_exc())
            try:
                self._reply(500, protocol.error_body(f"internal error: {_short_exc(e)}"))
            except OSError:
                self.close_connection = True
        finally:
            app.stats.finished()
            if monitored:
                app.stats.record(status, time.perf_counter() - self._t0, rows)
            self._log_line(status)
            if self._unread:
                self._linger()

    def _log_line(self, status: int) -> None:
        ms = (time.perf_counter() - self._t0) * 1000.0
        log.info("%s %s %d %.1fms", self._method, self.path, status, ms)

    def _route(self, app: ServingApp, method: str, route: protocol.Route | None):
        if route is not None and route.kind == "healthz":
            if method != "GET":
                return self._not_allowed(route)
            return 200, {"status": "ok"}, None, 0
        if not app.keys.check(self.headers.get("Authorization")):
            return (401, {"error": "missing or wrong API key: send the header "
                                   "'Authorization: Bearer <key>'"},
                    {"WWW-Authenticate": 'Bearer realm="mltrain"'}, 0)
        if route is None:
            return 404, {"error": f"no such path: {self.path} ({app.endpoints_hint()})"}, None, 0
        if method not in route.methods:
            return self._not_allowed(route)
        if route.kind == "stats":
            snap = app.stats.snapshot()
            snap.update(model_name=app.name, model_version=app.version,
                        kind=app.servable.kind)
            return 200, snap, None, 0
        if route.model is not None and route.model != app.name:
            return 404, {"error": f"model {route.model!r} not found: this server serves model "
                                  f"{app.name!r} (version {app.version})"}, None, 0
        if route.version is not None and route.version != app.version:
            return 404, {"error": f"version {route.version!r} of model {app.name!r} not found: "
                                  f"this server serves version {app.version}"}, None, 0
        if route.kind == "status":
            return 200, protocol.model_status(app.version), None, 0
        if route.kind == "metadata":
            s = app.servable
            return 200, protocol.model_metadata(app.name, app.version, s.inputs, s.outputs), \
                None, 0
        if route.kind == "unsupported":
            return 400, {"error": f":{route.verb} is not supported by this server; use "
                                  ":predict"}, None, 0
        body = self._read_body(app.max_body)
        status, out, rows = app.predict(body, via_score=route.kind == "score")
        return status, out, None, rows

    def _not_allowed(self, route: protocol.Route):
        allowed = ", ".join(route.methods)
        return (405, {"error": f"method {self.command} not allowed on {self.path}; use "
                               f"{allowed}"}, {"Allow": allowed}, 0)

    def _read_body(self, limit: int) -> bytes:
        if self._unread == -1 and self.headers.get("Transfer-Encoding"):
            raise ProtocolError("chunked transfer encoding is not supported: send the body "
                                "with a Content-Length header", 411)
        cl = self.headers.get("Content-Length")
        if cl is None:
            self._unread = -1                     # an HTTP/1.0-style body may follow
            raise ProtocolError("a Content-Length header is required", 411)
        if self._unread < 0:
            raise ProtocolError(f"bad Content-Length header: {cl!r}", 400)
        n = self._unread
        if n > limit:
            raise ProtocolError(self._too_large_message(n), 413)
        body = self.rfile.read(n) if n else b""
        self._unread = 0
        if len(body) < n:
            raise ConnectionError(f"body ended after {len(body)} of {n} bytes")
        return body

    def _reply(self, status: int, payload: Any, headers: dict | None = None) -> None:
        if isinstance(payload, (bytes, bytearray)):
            body = bytes(payload)
        else:
            body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self._unread:
            # The request body was not read: this connection cannot carry another request.
            self.send_header("Connection", "close")
            self.close_connection = True
        if self._method == "HEAD" or not body:
            self.end_headers()
        elif hasattr(self, "_headers_buffer"):
            self._headers_buffer.append(b"\r\n" + body)   # headers and body in one write
            self.flush_headers()
        else:
            self.end_headers()
            self.wfile.write(body)
        self.wfile.flush()

    def _linger(self) -> None:
        """After refusing an unread body: stop sending, and swallow (not keep) what the client
        still sends for a moment, so that it reads our answer instead of a connection reset."""
        self.close_connection = True
        remaining = self._unread if self._unread > 0 else None
        try:
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_S
            while remaining is None or remaining > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.connection.settimeout(left)
                chunk = self.rfile.read1(65536 if remaining is None else min(65536, remaining))
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
        except OSError:
            pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, app: ServingApp):
        self.app = app
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address):
        log.warning("connection from %s failed: %s", client_address,
                    _short_exc(sys.exc_info()[1] or Exception("?")))


# --------------------------------------------------------------------------------------------
# Process
# --------------------------------------------------------------------------------------------

def write_ready_file(path: Path | None, payload: dict) -> None:
    """Atomically (temporary file + rename) writes the ready file."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m mltrain_desktop.serving.server",
        description="Serve one model over a TensorFlow-Serving-compatible REST API.")
    p.add_argument("--model-name", required=True, help="name in /v1/models/{name}")
    p.add_argument("--model-version", required=True, help="version number served")
    p.add_argument("--model-path", required=True,
                   help=".keras/.h5 file, a folder with model.keras, or a SavedModel folder")
    p.add_argument("--key-file", required=True,
                   help="file whose content is the API key (re-read when it changes)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    p.add_argument("--entry-script", default=None,
                   help="scoring script with init() and run(raw_data), Azure ML style")
    p.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY,
                   help=f"largest request body accepted (default {DEFAULT_MAX_BODY})")
    p.add_argument("--ready-file", default=None,
                   help="JSON file written when serving ({port, pid, signature, ...}) or on "
                        "a start-up failure ({error, stage, pid})")
    args = p.parse_args(argv)
    if not str(args.model_version).isdigit():
        p.error(f"--model-version must be a whole number, not {args.model_version!r}")
    args.model_version = str(int(args.model_version))
    if args.max_body_bytes <= 0:
        p.error("--max-body-bytes must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    ready = Path(args.ready_file).expanduser().absolute() if args.ready_file else None
    if ready is not None:
        try:
            ready.unlink()
        except FileNotFoundError:
            pass
    model_path = Path(args.model_path).expanduser().absolute()
    t0 = time.monotonic()
    try:
        keys = KeyFile(args.key_file)
        if args.entry_script:
            servable: Servable = ScriptServable(args.entry_script, model_path)
        else:
            servable = load_servable(model_path)
        servable.warm_up()
        load_s = time.monotonic() - t0
        app = ServingApp(args.model_name, args.model_version, servable, keys,
                         args.max_body_bytes)
        try:
            httpd = _Server((args.host, args.port), app)
        except OSError as e:
            raise StartupError("listen", f"cannot listen on {args.host}:{args.port}: "
                               f"{e.strerror or e}", EXIT_LISTEN_FAILED) from None
    except StartupError as e:
        log.error("start-up failed (%s): %s", e.stage, e.message)
        write_ready_file(ready, {"error": e.message, "stage": e.stage, "pid": os.getpid()})
        return e.exit_code

    host, port = httpd.server_address[:2]
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.25},
                              name="http", daemon=True)
    thread.start()
    url = f"http://{host}:{port}"
    write_ready_file(ready, {
        "port": port, "pid": os.getpid(), "host": host, "url": url,
        "model_name": args.model_name, "model_version": args.model_version,
        "model_path": str(model_path), "kind": servable.kind,
        "signature": servable.signature_json(), "load_seconds": round(load_s, 3),
        "started_at": time.time()})
    log.info("serving model %r version %s (%s) at %s/v1/models/%s (pid %d, ready in %.1fs)",
             args.model_name, args.model_version, servable.kind, url, args.model_name,
             os.getpid(), load_s)
    while not stop.wait(0.5):
        pass
    log.info("stop requested; finishing requests in flight")
    httpd.shutdown()
    deadline = time.monotonic() + SHUTDOWN_GRACE_S
    while app.stats.in_flight > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    httpd.server_close()
    if ready is not None:
        try:
            if json.loads(ready.read_text()).get("pid") == os.getpid():
                ready.unlink()
        except (OSError, ValueError):
            pass
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
