"""The inference server: one process serving one registered model over TF Serving's REST API.

    python -m mltrain_desktop.serving.server --model-name NAME --model-version N \
        --model-path PATH (--key-file FILE | --no-auth) [--port 0] [--host 127.0.0.1] \
        [--entry-script score.py] [--max-body-bytes 10485760] [--ready-file FILE]

Start-up: read the key file, find and load the model (TensorFlow is imported here, in this
process only, and only when a model is loaded), warm it up, listen, then write the ready file
atomically: ``{"port", "pid", "signature", "url", ...}``; on failure write ``{"error", "stage",
"pid"}`` there instead and exit non-zero (see ``EXIT_*``). SIGTERM or SIGINT stop it
gracefully: stop accepting, let requests in flight finish (up to 10 s), remove the ready file,
exit 0.

Endpoints (all but ``/healthz`` need ``Authorization: Bearer <key>``, the key being the key
file's content, re-read whenever the file changes; with ``--no-auth`` none needs a header):

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

This module is the entry point only; the parts live beside it: ``model_discovery`` (finding
the model, standard library only), ``model_loading`` (Keras / SavedModel servables),
``entry_script`` (init/run scoring), ``auth`` (the key file), ``http_handler`` (routing and
answering requests), ``errors`` (start-up failures and exit codes).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from .auth import KeyFile, NoAuth
from .entry_script import ScriptServable
from .errors import EXIT_LISTEN_FAILED, StartupError
from .http_handler import DEFAULT_MAX_BODY, ServingApp, ServingHTTPServer
from .model_loading import Servable, load_servable

log = logging.getLogger("mltrain.serving")

SHUTDOWN_GRACE_S = 10.0


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
    auth = p.add_mutually_exclusive_group(required=True)
    auth.add_argument("--key-file", help="file whose content is the API key (re-read when it changes)")
    auth.add_argument("--no-auth", action="store_true",
                      help="serve without a key: no Authorization header needed (auth_enabled=False)")
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


def _start(args: argparse.Namespace,
           model_path: Path) -> tuple[ServingApp, ServingHTTPServer, float]:
    """Key, model (or entry script), warm-up and the listening socket; StartupError on failure."""
    t0 = time.monotonic()
    keys = NoAuth() if args.no_auth else KeyFile(args.key_file)
    if args.entry_script:
        servable: Servable = ScriptServable(args.entry_script, model_path)
    else:
        servable = load_servable(model_path)
    servable.warm_up()
    load_s = time.monotonic() - t0
    app = ServingApp(args.model_name, args.model_version, servable, keys, args.max_body_bytes)
    try:
        httpd = ServingHTTPServer((args.host, args.port), app)
    except OSError as e:
        raise StartupError("listen", f"cannot listen on {args.host}:{args.port}: "
                           f"{e.strerror or e}", EXIT_LISTEN_FAILED) from None
    return app, httpd, load_s


def _remove_own_ready_file(ready: Path | None) -> None:
    if ready is None:
        return
    try:
        if json.loads(ready.read_text()).get("pid") == os.getpid():
            ready.unlink()
    except (OSError, ValueError):
        pass


def _stop_on_signals() -> threading.Event:
    """An event that SIGTERM or SIGINT sets (installed before the ready file says we serve)."""
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def _serve_until(stop: threading.Event, app: ServingApp, httpd: ServingHTTPServer) -> None:
    """Waits for ``stop``, then lets requests in flight finish (a grace period) and closes."""
    while not stop.wait(0.5):
        pass
    log.info("stop requested; finishing requests in flight")
    httpd.shutdown()
    deadline = time.monotonic() + SHUTDOWN_GRACE_S
    while app.stats.in_flight > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    httpd.server_close()


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
    try:
        app, httpd, load_s = _start(args, model_path)
    except StartupError as e:
        log.error("start-up failed (%s): %s", e.stage, e.message)
        write_ready_file(ready, {"error": e.message, "stage": e.stage, "pid": os.getpid()})
        return e.exit_code

    host, port = httpd.server_address[:2]
    servable = app.servable
    stop = _stop_on_signals()
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
    _serve_until(stop, app, httpd)
    _remove_own_ready_file(ready)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
