"""Inference server figures: start-up, throughput and latency, next to in-process prediction.

    .venv/bin/python benchmarks/bench_serving.py [--model sample|tiny] [--requests 500]
        [--threads 4] [--batch 100]

Builds the sample-sized model (28x28 -> Flatten -> Dense 300 -> Dense 100 -> Dense 10; or a
tiny Flatten -> Dense 10 one), saves it as .keras, starts the real server process on
127.0.0.1 (port 0), and measures:

- launch -> ready file, and launch -> first successful :predict;
- single-row and batched requests (JSON row format, keep-alive connections, a few client
  threads, a bounded number of requests): requests/s, rows/s, p50/p99 latency;
- the same batches predicted in this process with ``model.predict(x)``, ``model(x)`` and a
  ``tf.function`` wrapping the model (what the server runs).

Client and server share this machine's cores, so the HTTP figures include the client's cost.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from mltrain_desktop.serving.stats import percentile  # noqa: E402

KEY = "bench-key"


def build_model(kind: str, path: Path):
    import keras
    keras.utils.set_random_seed(0)
    layers = [keras.Input((28, 28), name="images"), keras.layers.Flatten()]
    if kind == "sample":
        layers += [keras.layers.Dense(300, activation="relu"),
                   keras.layers.Dense(100, activation="relu")]
    layers += [keras.layers.Dense(10)]
    model = keras.Sequential(layers)
    model.save(path)
    return model


def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"Authorization": f"Bearer {KEY}",
                                                   "Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, resp.read()


def start_server(model_path: Path, work: Path) -> tuple[subprocess.Popen, dict, float, float]:
    key_file, ready = work / "key", work / "ready.json"
    key_file.write_text(KEY)
    cmd = [sys.executable, "-m", "mltrain_desktop.serving.server", "--model-name", "bench",
           "--model-version", "1", "--model-path", str(model_path), "--port", "0",
           "--key-file", str(key_file), "--ready-file", str(ready)]
    log = open(work / "server.log", "wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    while not ready.exists():
        if proc.poll() is not None:
            raise SystemExit(f"server exited {proc.returncode}:\n"
                             + (work / "server.log").read_text())
        time.sleep(0.01)
    t_ready = time.perf_counter() - t0
    info = json.loads(ready.read_text())
    body = json.dumps({"instances": np.zeros((1, 28, 28)).tolist()}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", info["port"], timeout=60)
    status, out = post(conn, "/v1/models/bench:predict", body)
    conn.close()
    if status != 200:
        raise SystemExit(f"first predict failed: {status} {out[:300]!r}")
    return proc, info, t_ready, time.perf_counter() - t0


def http_load(port: int, body: bytes, rows: int, requests: int, threads: int) -> dict:
    lat: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    errors = []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        try:
            while True:
                with lock:
                    if next(counter, None) is None:
                        break
                t = time.perf_counter()
                status, out = post(conn, "/v1/models/bench:predict", body)
                mine.append(time.perf_counter() - t)
                if status != 200:
                    errors.append((status, out[:200]))
        finally:
            conn.close()
            with lock:
                lat.extend(mine)

    post(http.client.HTTPConnection("127.0.0.1", port, timeout=60),
         "/v1/models/bench:predict", body)                                  # warm the shape
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{len(errors)} failed requests, e.g. {errors[0]}")
    return summarize(lat, wall, rows)


def in_process(fn, x, repeat: int) -> dict:
    fn(x)
    lat = []
    t0 = time.perf_counter()
    for _ in range(repeat):
        t = time.perf_counter()
        fn(x)
        lat.append(time.perf_counter() - t)
    return summarize(lat, time.perf_counter() - t0, len(x))


def summarize(lat: list[float], wall: float, rows: int) -> dict:
    s = sorted(v * 1000 for v in lat)
    return {"n": len(s), "per_s": len(s) / wall, "rows_per_s": len(s) * rows / wall,
            "p50": percentile(s, 50), "p99": percentile(s, 99), "mean": statistics.fmean(s)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=("sample", "tiny"), default="sample")
    ap.add_argument("--requests", type=int, default=500, help="HTTP requests per workload")
    ap.add_argument("--threads", type=int, default=4, help="client threads")
    ap.add_argument("--batch", type=int, default=100, help="rows per batched request")
    ap.add_argument("--repeat", type=int, default=300, help="in-process calls per workload")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        import tensorflow as tf  # noqa: F401  (timed: what every server start pays)
        tf_import = time.perf_counter() - t
        model = build_model(args.model, work / "model.keras")
        proc, info, t_ready, t_first = start_server(work / "model.keras", work)
        try:
            compiled = tf.function(lambda v: model(v, training=False), reduce_retracing=True)
            rng = np.random.default_rng(0)
            x1 = rng.random((1, 28, 28), dtype=np.float32)
            xb = rng.random((args.batch, 28, 28), dtype=np.float32)
            b1 = json.dumps({"instances": x1.tolist()}).encode()
            bb = json.dumps({"instances": xb.tolist()}).encode()
            rows = []
            for label, body, x in (("1 row", b1, x1), (f"{args.batch} rows", bb, xb)):
                for th in sorted({1, args.threads}):
                    r = http_load(info["port"], body, len(x), args.requests, th)
                    rows.append((f"HTTP :predict, {label}, {th} client thread(s)", r))
                rows.append((f"model.predict(x), {label}",
                             in_process(lambda v: model.predict(v, verbose=0), x, args.repeat)))
                rows.append((f"model(x) direct call, {label}",
                             in_process(lambda v: model(v, training=False), x, args.repeat)))
                rows.append((f"tf.function(model)(x) (server's path), {label}",
                             in_process(lambda v: compiled(v).numpy(), x, args.repeat)))
            conn = http.client.HTTPConnection("127.0.0.1", info["port"], timeout=30)
            conn.request("GET", "/v1/stats", headers={"Authorization": f"Bearer {KEY}"})
            stats = json.loads(conn.getresponse().read())
            conn.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(30)

        params = model.count_params()
        print(f"\nmodel: {args.model} ({params:,} parameters), body sizes: 1 row {len(b1):,} B, "
              f"{args.batch} rows {len(bb):,} B; CPU cores: {os.cpu_count()}")
        print(f"TensorFlow import in this process: {tf_import:.2f} s")
        print(f"server launch -> ready file: {t_ready:.2f} s (load+warm-up in server "
              f"{info['load_seconds']:.2f} s); launch -> first successful predict: "
              f"{t_first:.2f} s")
        print(f"server stopped by SIGTERM with exit code {rc}\n")
        head = f"{'workload':<52} {'calls':>6} {'calls/s':>9} {'rows/s':>10} " \
               f"{'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}"
        print(head)
        print("-" * len(head))
        for label, r in rows:
            print(f"{label:<52} {r['n']:>6} {r['per_s']:>9.1f} {r['rows_per_s']:>10.0f} "
                  f"{r['p50']:>8.2f} {r['p99']:>8.2f} {r['mean']:>8.2f}")
        lat = stats["latency_ms"]
        print(f"\nserver /v1/stats: requests={stats['requests']} errors={stats['errors']} "
              f"rows={stats['rows']} p50={lat['p50']} ms p99={lat['p99']} ms "
              f"(server-side time, last {lat['window']} requests)")


if __name__ == "__main__":
    main()
