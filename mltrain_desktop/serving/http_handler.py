"""The HTTP side of the inference server: routing a request to the model, answering in JSON,
and the threaded server that runs the handler.

``ServingApp`` holds what every request needs (model, key, limits, counters); ``Handler``
parses and answers one request on the server's thread for that connection; ``ServingHTTPServer``
binds the address and hands each connection to a ``Handler``.
"""
from __future__ import annotations

import http.server
import json
import logging
import socket
import sys
import time
import traceback
from typing import Any

from . import protocol
from .auth import KeyFile, NoAuth
from .entry_script import ScriptServable
from .errors import short_exc
from .model_loading import Servable
from .protocol import ProtocolError
from .stats import RequestStats

log = logging.getLogger("mltrain.serving")

DEFAULT_MAX_BODY = 10 * 1024 * 1024
LINGER_S = 2.0               # how long to drain an unread request body before closing


class ServingApp:
    def __init__(self, name: str, version: str, servable: Servable, keys: KeyFile | NoAuth,
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


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MLTrainServing/0.1"
    sys_version = ""
    timeout = 120            # seconds a connection may sit idle or a body may trickle in
    # TCP_NODELAY: the status line + headers and the body go out as separate writes; with
    # Nagle's algorithm the body would wait for the client's delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True

    server: "ServingHTTPServer"

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
            self._monitored, self._accounted = False, False
            self._reply(413, {"error": self._too_large_message(self._declared_length())})
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
        self._monitored = route is None or route.kind not in ("healthz", "stats")
        self._accounted = False
        status, rows = 500, 0
        app.stats.started()
        try:
            status, body, headers, rows = self._route(app, method, route)
            self._reply(status, body, headers, rows)
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
                self._reply(500, protocol.error_body(f"internal error: {short_exc(e)}"))
            except OSError:
                self.close_connection = True
        finally:
            app.stats.finished()
            self._account(status, rows)
            if self._unread:
                self._linger()

    def _account(self, status: int, rows: int = 0) -> None:
        """Counts the request (unless a monitoring one) and logs it, once. Called before the
        answer is written, so a client that has its answer finds it in /v1/stats and the log."""
        if self._accounted:
            return
        self._accounted = True
        elapsed = time.perf_counter() - self._t0
        if self._monitored:
            self.server.app.stats.record(status, elapsed, rows)
        log.info("%s %s %d %.1fms", self._method, self.path, status, elapsed * 1000.0)

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

    def _reply(self, status: int, payload: Any, headers: dict | None = None,
               rows: int = 0) -> None:
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
        self._account(status, rows)
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


class ServingHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, app: ServingApp):
        self.app = app
        super().__init__(address, Handler)

    def handle_error(self, request, client_address):
        log.warning("connection from %s failed: %s", client_address,
                    short_exc(sys.exc_info()[1] or Exception("?")))
