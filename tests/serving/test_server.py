"""The inference server (mltrain_desktop.serving): protocol, counters, and the real process.

The server tests start real server subprocesses on 127.0.0.1 with real TensorFlow (skipped
where TensorFlow is not installed). Importing TF costs seconds, so the servers are started
once per module, concurrently, and shared by the tests.
"""
from __future__ import annotations

import ast
import base64
import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")

from mltrain_desktop.serving import protocol  # noqa: E402
from mltrain_desktop.serving.protocol import ProtocolError, TensorSpec  # noqa: E402
from mltrain_desktop.serving.stats import RequestStats, percentile  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
needs_tf = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                              reason="TensorFlow is not installed")
MODEL = "mnist"
MAX_BODY = 1_000_000
START_TIMEOUT = 180


# ============================================================================================
# protocol (no TensorFlow)
# ============================================================================================

IMG = TensorSpec("images", "float32", (None, 28, 28))


def _body(obj) -> bytes:
    return json.dumps(obj).encode()


def test_route_matching():
    r = protocol.match_route
    assert r("/v1/models/m").kind == "status"
    assert r("/v1/models/m/versions/3") == protocol.Route("status", ("GET",), "m", "3")
    assert r("/v1/models/m/metadata").kind == "metadata"
    assert r("/v1/models/m/versions/2/metadata").version == "2"
    assert r("/v1/models/m:predict") == protocol.Route("predict", ("POST",), "m", None)
    assert r("/v1/models/m/versions/7:predict").version == "7"
    assert r("/v1/models/m:classify").kind == "unsupported"
    assert r("/healthz").kind == "healthz" and r("/v1/stats?x=1").kind == "stats"
    assert r("/score").kind == "score"
    for bad in ("/", "/v1/models", "/v1/models/m:frobnicate", "/v2/models/m", "/v1/models/m/x"):
        assert r(bad) is None, bad


def test_parse_rows_and_columns_single_input():
    x = np.arange(2 * 28 * 28, dtype=np.float32).reshape(2, 28, 28)
    for body in ({"instances": x.tolist()},
                 {"instances": [{"images": row} for row in x.tolist()]},
                 {"inputs": x.tolist()}, {"inputs": {"images": x.tolist()}},
                 {"instances": x.tolist(), "signature_name": "serving_default"}):
        req = protocol.parse_predict_request(_body(body), [IMG])
        assert req.batch_size == 2 and req.row_format == ("instances" in body)
        assert req.feeds["images"].dtype == np.float32
        np.testing.assert_array_equal(req.feeds["images"], x)
    # Azure-style {"data": rows} only where asked for (/score without an entry script)
    assert protocol.parse_predict_request(_body({"data": x.tolist()}), [IMG],
                                          data_alias=True).row_format
    with pytest.raises(ProtocolError):
        protocol.parse_predict_request(_body({"data": x.tolist()}), [IMG])


@pytest.mark.parametrize("body, words", [
    (b"not json", ["not valid JSON"]),
    (b"", ["empty"]),
    (b"[1, 2]", ["JSON object"]),
    (_body({"instances": [[[0.0] * 27] * 28]}), ["shape", "[28, 27]", "[28, 28]", "float32"]),
    (_body({"instances": [[["a"] * 28] * 28]}), ["strings", "float32"]),
    (_body({"instances": [[[0.0] * 28] * 28, [[0.0] * 28] * 27]}), ["different lengths"]),
    (_body({"instances": [], }), ["empty batch"]),
    (_body({"inputs": []}), ["empty batch"]),
    (_body({"instances": [1], "inputs": [1]}), ["both"]),
    (_body({"rows": [1]}), ["neither", "'rows'"]),
    (_body({"inputs": {"pixels": [1]}}), ["unknown keys ['pixels']"]),
    (_body({"instances": [{"pixels": 1}]}), ["'images'"]),
    (_body({"instances": [[[None] * 28] * 28]}), ["mixed or missing"]),
    (_body({"inputs": 3.0}), ["scalar"]),
    (_body({"instances": [[[0.0] * 28] * 28], "signature_name": "other"}), ["signature_name"]),
])
def test_parse_errors_say_what_is_wrong(body, words):
    with pytest.raises(ProtocolError) as ei:
        protocol.parse_predict_request(body, [IMG])
    assert ei.value.status == 400
    for w in words:
        assert w in ei.value.message, (w, ei.value.message)


def test_multi_input_and_dtypes():
    specs = [TensorSpec("a", "float32", (None, 3)), TensorSpec("ids", "int64", (None,)),
             TensorSpec("txt", "string", (None,))]
    rows = [{"a": [1, 2, 3], "ids": 4, "txt": "hi"},
            {"a": [4, 5, 6], "ids": 5, "txt": {"b64": base64.b64encode(b"\xff").decode()}}]
    req = protocol.parse_predict_request(_body({"instances": rows}), specs)
    assert req.feeds["ids"].dtype == np.int64 and req.feeds["ids"].tolist() == [4, 5]
    assert req.feeds["txt"].tolist() == [b"hi", b"\xff"]
    cols = {"a": [[1, 2, 3]], "ids": [7.0], "txt": ["x"]}
    req = protocol.parse_predict_request(_body({"inputs": cols}), specs)
    assert not req.row_format and req.feeds["ids"].tolist() == [7]
    for bad, word in [({"instances": [[1, 2, 3]]}, "object keyed by input name"),
                      ({"inputs": [[1, 2, 3]]}, "object keyed by input name"),
                      ({"instances": [{"a": [1, 2, 3], "ids": 1}]}, "missing inputs ['txt']"),
                      ({"inputs": dict(cols, ids=[1.5])}, "non-integer"),
                      ({"inputs": dict(cols, ids=[2 ** 70])}, "int64"),
                      ({"inputs": dict(cols, a=[[1, 2, 3], [1, 2, 3]])}, "batch sizes")]:
        with pytest.raises(ProtocolError, match=None) as ei:
            protocol.parse_predict_request(_body(bad), specs)
        assert word in ei.value.message, (word, ei.value.message)


def test_format_responses():
    one = {"out": np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)}
    assert protocol.format_predict_response(one, ["out"], True) == \
        {"predictions": [[1.0, 2.0], [3.0, 4.0]]}
    assert protocol.format_predict_response(one, ["out"], False) == \
        {"outputs": [[1.0, 2.0], [3.0, 4.0]]}
    two = {"p": np.array([0.5, 0.25]), "label": np.array([b"cat", b"\xff"], dtype=object)}
    assert protocol.format_predict_response(two, ["label", "p"], True) == {"predictions": [
        {"label": "cat", "p": 0.5}, {"label": {"b64": "/w=="}, "p": 0.25}]}
    assert protocol.format_predict_response(two, ["p", "label"], False) == {"outputs": {
        "p": [0.5, 0.25], "label": ["cat", {"b64": "/w=="}]}}


def test_metadata_shape():
    md = protocol.model_metadata("m", 3, [IMG], [TensorSpec("output_0", "float32", (None, 10))])
    assert md["model_spec"] == {"name": "m", "signature_name": "", "version": "3"}
    sig = md["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["method_name"] == "tensorflow/serving/predict"
    assert sig["inputs"]["images"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in sig["inputs"]["images"]["tensor_shape"]["dim"]] == \
        ["-1", "28", "28"]
    assert sig["outputs"]["output_0"]["tensor_shape"]["dim"][1]["size"] == "10"


# ============================================================================================
# stats (no TensorFlow)
# ============================================================================================

def test_stats_counts_rate_and_percentiles():
    now = [100.0]
    s = RequestStats(latency_window=100, rate_window_s=10.0, clock=lambda: now[0])
    for i in range(1, 101):
        s.record(200 if i % 10 else 500 if i == 50 else 404, latency_s=i / 1000.0, rows=2)
    now[0] += 5.0
    snap = s.snapshot()
    assert snap["requests"] == 100 and snap["rows"] == 200
    assert snap["client_errors"] == 9 and snap["server_errors"] == 1 and snap["errors"] == 10
    assert snap["requests_per_s"] == pytest.approx(100 / 5.0)  # younger than the window
    assert snap["latency_ms"]["p50"] == pytest.approx(50.5)
    assert snap["latency_ms"]["p99"] == pytest.approx(99.01)
    assert snap["latency_ms"]["max"] == pytest.approx(100.0)
    now[0] += 6.0            # the requests are now older than 10 s
    s.record(200, 0.001)
    assert s.snapshot()["requests_per_s"] == pytest.approx(0.1)
    assert percentile([], 50) is None and percentile([3.0], 99) == 3.0


def test_stats_thread_safe():
    import threading
    s = RequestStats()
    threads = [threading.Thread(target=lambda: [s.record(200, 0.001) for _ in range(2000)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert s.snapshot()["requests"] == 8000


# ============================================================================================
# finding the model (standard library)
# ============================================================================================

def test_resolve_model_path(tmp_path):
    from mltrain_desktop.serving.errors import StartupError
    from mltrain_desktop.serving.model_discovery import resolve_model_path

    out = tmp_path / "outputs" / "model"
    (out / "saved_model").mkdir(parents=True)
    (out / "saved_model" / "saved_model.pb").write_bytes(b"x")
    (out / "model.keras").write_bytes(b"x")
    r = resolve_model_path(out)                                     # model.keras preferred
    assert (r.kind, r.path) == ("keras", out / "model.keras")
    assert resolve_model_path(tmp_path / "outputs").path == out / "model.keras"  # nested
    (out / "model.keras").unlink()
    r = resolve_model_path(out)
    assert (r.kind, r.path) == ("saved_model", out / "saved_model")
    assert resolve_model_path(out / "saved_model" / "saved_model.pb").path == out / "saved_model"
    h5 = tmp_path / "w.h5"
    h5.write_bytes(b"x")
    assert resolve_model_path(h5).kind == "keras"
    for bad, word in [(tmp_path / "nope", "does not exist"), (tmp_path / "empty", "no model"),
                      (tmp_path / "notes.txt", "not a loadable model")]:
        if bad.name == "empty":
            bad.mkdir()
        elif bad.name == "notes.txt":
            bad.write_text("hello")
        with pytest.raises(StartupError) as ei:
            resolve_model_path(bad)
        assert word in ei.value.message and ei.value.stage == "model"


def test_importing_the_server_does_not_import_tensorflow():
    code = ("import sys, mltrain_desktop.serving.server, mltrain_desktop.serving.protocol;"
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_the_server_imports_nothing_of_the_app_outside_serving():
    """It runs in the job's environment: only the standard library, numpy and its own package."""
    code = ("import sys, mltrain_desktop.serving.server;"
            "print(sorted(m for m in sys.modules if m.startswith('mltrain_desktop.')));"
            "print(sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    ours, top = (ast.literal_eval(line) for line in out.stdout.strip().splitlines())
    assert ours and all(m.startswith("mltrain_desktop.serving") for m in ours), ours
    assert "numpy" in top and not {"tensorflow", "keras", "psutil", "docker", "click",
                                    "sqlite_utils", "PySide6"} & set(top), top


# ============================================================================================
# the real server process
# ============================================================================================

class Server:
    """A server subprocess and a tiny http.client-based client for it."""

    def __init__(self, workdir: Path, name: str, model_path: Path, *extra: str,
                 key: str = "k3y-initial", version: str = "1"):
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key_file = self.dir / "key"
        if key is not None:
            self.key_file.write_text(key + "\n")
        self.ready_file = self.dir / "ready.json"
        self.log_path = self.dir / "server.log"
        self.version = version
        cmd = [sys.executable, "-m", "mltrain_desktop.serving.server",
               "--model-name", MODEL, "--model-version", version,
               "--model-path", str(model_path), "--port", "0", "--host", "127.0.0.1",
               "--key-file", str(self.key_file), "--ready-file", str(self.ready_file), *extra]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env)
        self.ready: dict | None = None

    def wait_ready(self, timeout: float = START_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_file.exists():
                self.ready = json.loads(self.ready_file.read_text())
                return self.ready
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no ready file (exit {self.proc.poll()}); log:\n{self.log()}")

    def wait_exit(self, timeout: float = START_TIMEOUT) -> int:
        return self.proc.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def port(self) -> int:
        return self.ready["port"]

    @property
    def key(self) -> str:
        return self.key_file.read_text().strip()

    def request(self, method: str, path: str, body=None, key: str | None = "",
                headers: dict | None = None):
        """-> (status, JSON or text, headers). key "" = the key file's current key."""
        h = dict(headers or {})
        key = self.key if key == "" else key
        if key is not None:
            h["Authorization"] = f"Bearer {key}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            data = resp.read()
            try:
                doc = json.loads(data)
            except ValueError:
                doc = data.decode(errors="replace")
            return resp.status, doc, dict(resp.getheaders())
        finally:
            conn.close()

    def raw(self, head: bytes, payload: bytes = b"") -> tuple[int, dict]:
        """Sends hand-written request bytes; -> (status, JSON body)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(head + payload)
            resp = http.client.HTTPResponse(s, method="POST")
            resp.begin()
            return resp.status, json.loads(resp.read())

    def predict(self, body, version: str | None = None):
        path = f"/v1/models/{MODEL}" + (f"/versions/{version}" if version else "") + ":predict"
        return self.request("POST", path, body)

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


SCORE_PY = textwrap.dedent('''
    import json, os
    import numpy as np
    from helper import double      # a module next to the entry script

    INIT_CALLS = 0
    MODEL_DIR = None

    def init():
        global INIT_CALLS, MODEL_DIR
        INIT_CALLS += 1
        MODEL_DIR = os.environ["AZUREML_MODEL_DIR"]
        assert os.environ["MLTRAIN_MODEL_DIR"] == MODEL_DIR
        assert os.path.exists(os.path.join(MODEL_DIR, "model.keras"))

    def run(raw_data):
        data = json.loads(raw_data)
        if "fail" in data:
            raise ValueError("asked to fail: " + data["fail"])
        if "text" in data:
            return json.dumps({"echo": data["text"]})      # a JSON string passes through
        x = np.asarray(data["data"], dtype=np.float64)
        return {"sums": double(x.sum(axis=1)), "init_calls": INIT_CALLS, "model_dir": MODEL_DIR}
''')


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Builds a tiny model (Keras sample layout: model.keras + saved_model/) and starts three
    servers at once: on the folder (-> model.keras), on the SavedModel, and with a score.py."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    keras = pytest.importorskip("keras")
    work = tmp_path_factory.mktemp("serving")
    model_dir = work / "outputs" / "model"
    model_dir.mkdir(parents=True)
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input(shape=(28, 28), name="images"),
                              keras.layers.Flatten(), keras.layers.Dense(10)])
    model.save(model_dir / "model.keras")
    model.export(str(model_dir / "saved_model"), verbose=False)
    scripts = work / "scripts"
    scripts.mkdir()
    (scripts / "score.py").write_text(SCORE_PY)
    (scripts / "helper.py").write_text("def double(x):\n    return 2 * x\n")

    servers = {
        "keras": Server(work, "keras", model_dir, "--max-body-bytes", str(MAX_BODY)),
        "saved_model": Server(work, "saved_model", model_dir / "saved_model",
                              version="2"),
        "script": Server(work, "script", model_dir, "--entry-script",
                         str(scripts / "score.py")),
    }
    try:
        for s in servers.values():
            s.wait_ready()
        yield {"model": model, "servers": servers, "work": work, "model_dir": model_dir,
               "scripts": scripts}
    finally:
        for s in servers.values():
            s.stop()


@pytest.fixture
def srv(served) -> Server:
    return served["servers"]["keras"]


def _x(n: int, seed: int = 0) -> "np.ndarray":
    return np.random.default_rng(seed).random((n, 28, 28), dtype=np.float32)


def _assert_alive(s: Server) -> None:
    status, doc, _ = s.predict({"instances": _x(1).tolist()})
    assert status == 200 and len(doc["predictions"]) == 1, doc


@needs_tf
def test_ready_file(served, srv):
    r = srv.ready
    assert r["pid"] == srv.proc.pid and isinstance(r["port"], int) and r["port"] > 0
    assert r["kind"] == "keras" and r["model_path"] == str(served["model_dir"])
    assert r["signature"] == {
        "inputs": [{"name": "images", "dtype": "float32", "shape": [-1, 28, 28]}],
        "outputs": [{"name": "output_0", "dtype": "float32", "shape": [-1, 10]}]}
    assert served["servers"]["saved_model"].ready["kind"] == "saved_model"
    assert served["servers"]["script"].ready["signature"] is None


@needs_tf
def test_status_versions_and_metadata(srv):
    expected = {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}}]}
    for path in (f"/v1/models/{MODEL}", f"/v1/models/{MODEL}/versions/1"):
        status, doc, headers = srv.request("GET", path)
        assert (status, doc) == (200, expected)
        assert headers["Content-Type"] == "application/json"
    status, doc, _ = srv.request("GET", f"/v1/models/{MODEL}/metadata")
    assert status == 200
    assert doc["model_spec"] == {"name": MODEL, "signature_name": "", "version": "1"}
    sig = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["images"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in sig["inputs"]["images"]["tensor_shape"]["dim"]] == \
        ["-1", "28", "28"]
    assert list(sig["outputs"]) == ["output_0"]
    assert srv.request("GET", f"/v1/models/{MODEL}/versions/1/metadata")[1] == doc
    assert srv.request("GET", "/healthz", key=None)[:2] == (200, {"status": "ok"})


@needs_tf
def test_predictions_match_model_predict(served, srv):
    x = _x(5, seed=3)
    expected = served["model"].predict(x, verbose=0)
    answers = [
        ("instances", srv.predict({"instances": x.tolist()}), "predictions"),
        ("instances dicts", srv.predict({"instances": [{"images": r} for r in x.tolist()]}),
         "predictions"),
        ("inputs", srv.predict({"inputs": x.tolist()}), "outputs"),
        ("inputs dict", srv.predict({"inputs": {"images": x.tolist()}}), "outputs"),
        ("versioned", srv.predict({"instances": x.tolist()}, version="1"), "predictions"),
        ("ints", srv.predict({"instances": (x * 0).astype(int).tolist()}), "predictions"),
    ]
    for what, (status, doc, _), key in answers:
        assert status == 200, (what, doc)
        assert list(doc) == [key], what
        want = expected if what != "ints" else served["model"].predict(x * 0, verbose=0)
        np.testing.assert_allclose(np.asarray(doc[key]), want, atol=1e-5, err_msg=what)
    # /score without an entry script: the same model, Azure-style {"data": rows} accepted
    status, doc, _ = srv.request("POST", "/score", {"data": x.tolist()})
    assert status == 200
    np.testing.assert_allclose(np.asarray(doc["predictions"]), expected, atol=1e-5)


@needs_tf
def test_saved_model_folder(served):
    s = served["servers"]["saved_model"]
    x = _x(4, seed=5)
    expected = served["model"].predict(x, verbose=0)
    status, doc, _ = s.request("GET", f"/v1/models/{MODEL}/versions/2/metadata")
    assert status == 200
    sig = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert list(sig["inputs"]) == ["images"] and list(sig["outputs"]) == ["output_0"]
    for body, key in (({"instances": x.tolist()}, "predictions"),
                      ({"inputs": {"images": x.tolist()}}, "outputs")):
        status, doc, _ = s.predict(body, version="2")
        assert status == 200, doc
        np.testing.assert_allclose(np.asarray(doc[key]), expected, atol=1e-5)
    status, doc, _ = s.predict({"instances": x.tolist()}, version="1")
    assert status == 404 and "version" in doc["error"]


GOOD_ROW = [[0.5] * 28] * 28


@needs_tf
@pytest.mark.parametrize("body, status, words", [
    (b"{not json", 400, ["not valid JSON"]),
    ({"instances": [[[0.5] * 27] * 28]}, 400, ["wrong shape", "[28, 28]", "float32"]),
    ({"instances": [GOOD_ROW[:27]]}, 400, ["wrong shape", "[27, 28]"]),
    ({"instances": [[["x"] * 28] * 28]}, 400, ["strings", "float32"]),
    ({"instances": [GOOD_ROW], "inputs": [GOOD_ROW]}, 400, ["both"]),
    ({"signature_name": "serving_default"}, 400, ["neither"]),
    ({"instances": []}, 400, ["empty batch"]),
    ({"inputs": {"images": []}}, 400, ["empty batch"]),
    ({"instances": [GOOD_ROW, GOOD_ROW[:3]]}, 400, ["different lengths"]),
])
def test_bad_input_gets_4xx_and_server_keeps_serving(srv, body, status, words):
    got, doc, _ = srv.predict(body)
    assert got == status, doc
    for w in words:
        assert w in doc["error"], (w, doc)
    _assert_alive(srv)


@needs_tf
def test_unknown_model_version_path_and_method(srv):
    cases = [
        ("GET", "/v1/models/other", 404, "not found"),
        ("POST", "/v1/models/other:predict", 404, "'other' not found"),
        ("GET", f"/v1/models/{MODEL}/versions/9", 404, "version '9'"),
        ("POST", f"/v1/models/{MODEL}/versions/9:predict", 404, "version '9'"),
        ("GET", "/v2/whatever", 404, "no such path"),
        ("GET", f"/v1/models/{MODEL}:predict", 405, "POST"),
        ("POST", f"/v1/models/{MODEL}/metadata", 405, "GET"),
        ("DELETE", f"/v1/models/{MODEL}", 405, "GET"),
        ("PUT", "/score", 405, "POST"),
        ("POST", f"/v1/models/{MODEL}:classify", 400, ":predict"),
    ]
    for method, path, status, word in cases:
        body = {"instances": [GOOD_ROW]} if method in ("POST", "PUT") else None
        got, doc, headers = srv.request(method, path, body)
        assert got == status, (method, path, doc)
        assert word in doc["error"], (method, path, doc)
        if status == 405:
            assert "Allow" in headers
    # A malformed request line gets a JSON answer too.
    status, doc = srv.raw(b"GET / two words HTTP/1.1\r\n\r\n")
    assert status == 400 and "Bad request syntax" in doc["error"]
    _assert_alive(srv)


@needs_tf
def test_body_limits(srv):
    path = f"/v1/models/{MODEL}:predict"
    auth = f"Authorization: Bearer {srv.key}\r\n".encode()
    # Content-Length over the limit: refused from the header alone (no body is ever sent).
    t0 = time.monotonic()
    status, doc = srv.raw(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + auth +
                          b"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n")
    assert status == 413 and str(MAX_BODY) in doc["error"] and "50000000" in doc["error"]
    assert time.monotonic() - t0 < 10
    # A real body over the limit: the client still reads a 413, not a reset connection.
    big = b'{"instances": [' + b"0," * (MAX_BODY // 2) + b"0]}"
    status, doc, headers = srv.request("POST", path, big)
    assert status == 413 and headers.get("Connection") == "close"
    # The same with Expect: 100-continue (curl's habit for large bodies).
    status, doc = srv.raw(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + auth +
                          b"Expect: 100-continue\r\nContent-Length: 2000000\r\n\r\n")
    assert status == 413
    # No Content-Length, and chunked transfer encoding: 411.
    status, doc = srv.raw(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + auth +
                          b"Content-Type: application/json\r\n\r\n")
    assert status == 411 and "Content-Length" in doc["error"]
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        conn.request("POST", path, body=iter([b'{"instances": ', b"[]}"]), encode_chunked=True,
                     headers={"Authorization": f"Bearer {srv.key}"})
        resp = conn.getresponse()
        assert resp.status == 411 and "chunked" in json.loads(resp.read())["error"]
    finally:
        conn.close()
    _assert_alive(srv)


@needs_tf
def test_auth_and_key_rotation(srv):
    path = f"/v1/models/{MODEL}"
    for key in (None, "wrong", srv.key + "x"):
        status, doc, headers = srv.request("GET", path, key=key)
        assert status == 401 and "Bearer" in doc["error"], key
        assert headers.get("WWW-Authenticate", "").startswith("Bearer")
    status, _, _ = srv.request("POST", f"{path}:predict", {"instances": [GOOD_ROW]}, key="no")
    assert status == 401
    assert srv.request("GET", "/v1/stats", key=None)[0] == 401
    assert srv.request("GET", "/healthz", key=None)[0] == 200
    assert srv.request("GET", path, headers={"Authorization": f"Basic {srv.key}"},
                       key=None)[0] == 401
    # Rotate: replace the file atomically; the old key stops working at once, no restart.
    old = srv.key
    tmp = srv.key_file.with_suffix(".tmp")
    tmp.write_text("k3y-rotated\n")
    os.replace(tmp, srv.key_file)
    assert srv.request("GET", path, key=old)[0] == 401
    assert srv.request("GET", path, key="k3y-rotated")[0] == 200
    # ... and in place (same inode, other size).
    srv.key_file.write_text("k3y-rotated-again")
    assert srv.request("GET", path, key="k3y-rotated")[0] == 401
    assert srv.request("GET", path)[0] == 200
    assert srv.proc.poll() is None


@needs_tf
def test_stats_and_request_log(srv):
    before = srv.request("GET", "/v1/stats")[1]
    for _ in range(3):
        _assert_alive(srv)
    srv.predict(b"nope")
    status, st, _ = srv.request("GET", "/v1/stats")
    assert status == 200
    assert st["requests"] == before["requests"] + 4          # stats/healthz not counted
    assert st["errors"] == before["errors"] + 1 and st["rows"] >= before["rows"] + 3
    assert st["requests_per_s"] > 0
    assert 0 < st["latency_ms"]["p50"] <= st["latency_ms"]["p99"]
    assert st["model_name"] == MODEL and st["model_version"] == "1"
    log = srv.log()
    assert f"POST /v1/models/{MODEL}:predict 200 " in log
    assert f"POST /v1/models/{MODEL}:predict 400 " in log and "ms\n" in log


@needs_tf
def test_entry_script(served):
    s = served["servers"]["script"]
    model_dir = str(served["model_dir"])
    status, doc, _ = s.request("POST", "/score", {"data": [[1, 2], [3, 4]]})
    assert status == 200, doc
    assert doc == {"sums": [6.0, 14.0], "init_calls": 1, "model_dir": model_dir}
    status, doc, _ = s.predict({"data": [[1, 1]]})       # :predict also goes to run()
    assert (status, doc["sums"], doc["init_calls"]) == (200, [4.0], 1)
    assert s.request("POST", "/score", {"text": "hé"})[1] == {"echo": "hé"}
    status, doc, _ = s.request("POST", "/score", {"fail": "on purpose"})
    assert status == 500 and "asked to fail: on purpose" in doc["error"]
    assert s.request("POST", "/score", {"data": [[1]]})[:2] == \
        (200, {"sums": [2.0], "init_calls": 1, "model_dir": model_dir})
    assert s.request("POST", "/score", {"data": [[1]]}, key="bad")[0] == 401
    status, md, _ = s.request("GET", f"/v1/models/{MODEL}/metadata")
    assert status == 200 and md["metadata"]["signature_def"]["signature_def"] == {}
    assert "ValueError: asked to fail" in s.log()        # the traceback went to the log


@needs_tf
def test_start_failures_are_reported(served, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"this is not a zip file")
    fake_zip = tmp_path / "fake.keras"           # a zip, but not a Keras archive: Keras says
    with zipfile.ZipFile(fake_zip, "w") as z:    # so (needs TensorFlow)
        z.writestr("readme.txt", "hello")
    bad_script = tmp_path / "bad_score.py"
    bad_script.write_text("def init():\n    raise RuntimeError('no weights here')\n"
                          "def run(raw):\n    return raw\n")
    cases = {
        "missing": (Server(tmp_path, "missing", tmp_path / "nowhere"),
                    ["does not exist", str(tmp_path / "nowhere")], "model"),
        "notes": (Server(tmp_path, "notes", notes), ["not a loadable model", "notes.txt"],
                  "model"),
        "broken": (Server(tmp_path, "broken", broken), ["not a loadable model",
                                                        "broken.keras", "not a Keras archive"],
                   "model"),
        "fake-zip": (Server(tmp_path, "fakezip", fake_zip), ["not a loadable model",
                                                             "fake.keras"], "model"),
        "no-key": (Server(tmp_path, "nokey", served["model_dir"], key=None),
                   ["key file"], "key"),
        "init": (Server(tmp_path, "init", served["model_dir"], "--entry-script",
                        str(bad_script)), ["init()", "no weights here"], "entry_script"),
    }
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cases["port-taken"] = (
            Server(tmp_path, "taken", served["model_dir"], "--entry-script",
                   str(served["scripts"] / "score.py"), "--port", str(taken.getsockname()[1])),
            ["cannot listen on 127.0.0.1:"], "listen")
        cases["port-taken"][0].wait_exit()
    for what, (s, words, stage) in cases.items():
        try:
            rc = s.wait_exit()
            assert rc != 0, what
            r = json.loads(s.ready_file.read_text())
            assert set(r) == {"error", "stage", "pid"} and r["stage"] == stage, (what, r)
            for w in words:
                assert w in r["error"], (what, w, r)
            assert r["error"] in s.log(), what                     # a clear log line too
        finally:
            s.stop()


@needs_tf
def test_sigterm_stops_gracefully(served, tmp_path):
    s = Server(tmp_path, "term", served["model_dir"], "--entry-script",
               str(served["scripts"] / "score.py"))
    try:
        s.wait_ready()
        assert s.request("POST", "/score", {"data": [[1]]})[0] == 200
        s.proc.send_signal(signal.SIGTERM)
        assert s.wait_exit(30) == 0
        assert not s.ready_file.exists()
        assert "stopped" in s.log()
    finally:
        s.stop()


@needs_tf
def test_keras_model_structures_in_process(served, tmp_path):
    """Multi-input (dict) and multi-output Keras models, and the legacy .h5 format."""
    import keras
    from mltrain_desktop.serving.model_loading import load_servable

    a = keras.Input((3,), name="a")
    ids = keras.Input((2,), name="ids", dtype="int32")
    h = keras.layers.Concatenate()([a, keras.ops.cast(ids, "float32")])
    model = keras.Model({"a": a, "ids": ids},
                        {"score": keras.layers.Dense(1)(h), "probs": keras.layers.Dense(4)(h)})
    model.save(tmp_path / "multi.keras")
    sv = load_servable(tmp_path)                      # a folder with a single *.keras
    assert [(i.name, i.dtype, i.shape) for i in sv.inputs] == \
        [("a", "float32", (None, 3)), ("ids", "int32", (None, 2))]
    assert sorted(sv.output_names) == ["probs", "score"]
    body = json.dumps({"instances": [{"a": [1, 2, 3], "ids": [1, 0]},
                                     {"a": [0, 0, 1], "ids": [2, 2]}]}).encode()
    req = protocol.parse_predict_request(body, sv.inputs)
    out = sv.predict(req.feeds)
    want = model.predict(req.feeds, verbose=0)
    for k in ("score", "probs"):
        np.testing.assert_allclose(out[k], want[k], atol=1e-5)
    rows = protocol.format_predict_response(out, sv.output_names, True)["predictions"]
    assert len(rows) == 2 and set(rows[0]) == {"score", "probs"}

    served["model"].save(tmp_path / "legacy.h5")
    sv = load_servable(tmp_path / "legacy.h5")
    assert [(i.name, i.shape) for i in sv.inputs] == [("images", (None, 28, 28))]
    x = _x(2)
    np.testing.assert_allclose(sv.predict({"images": x})["output_0"],
                               served["model"].predict(x, verbose=0), atol=1e-5)
