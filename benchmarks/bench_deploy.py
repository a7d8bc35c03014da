"""Deployment time through the SDK: Model.deploy() call to the first successful answer.

Trains nothing: registers a sample-sized Keras model (Flatten->300->100->10), deploys it as a
local process endpoint, and times deploy -> first :predict answer, over a few repeats. For
throughput and latency of the running service see bench_serving.py.

Usage: .venv/bin/python benchmarks/bench_deploy.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from mltrain_desktop.core import Model, Workspace
    with tempfile.TemporaryDirectory() as d:
        ws = Workspace.create(Path(d) / "ws")
        mdir = Path(d) / "model"
        mdir.mkdir()
        code = ("import sys, keras\nm = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),"
                "keras.layers.Dense(300, activation='relu'), keras.layers.Dense(100, activation='relu'),"
                "keras.layers.Dense(10, activation='softmax')])\nm.save(sys.argv[1] + '/model.keras')")
        subprocess.run([sys.executable, "-c", code, str(mdir)], check=True, capture_output=True)
        model = Model.register(ws, str(mdir), "bench", model_framework="TensorFlow")
        x = [[[0.5] * 28] * 28]
        times = []
        for i in range(args.repeats):
            t0 = time.perf_counter()
            svc = Model.deploy(ws, f"bench-{i}", [model])
            svc.run({"instances": x})
            times.append(time.perf_counter() - t0)
            svc.delete()
        print(f"Model.deploy -> first answer: median {statistics.median(times):.2f} s "
              f"(runs: {', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
