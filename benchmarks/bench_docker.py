"""Docker figures, measured side by side in one run (issue 4).

1. start latency: the first line of a trivial script
   (a) bare:     `docker run --rm IMAGE python3 first.py` (the image as it is, the CLI);
   (b) backend:  DockerBackend.prepare (environment found in cache) + launch, no supervisor;
   (c) app:      exp.submit() to a docker compute target, environment in cache;
2. the sample's epoch time in a container (exp.submit() on the docker target) vs on the host
   (the same script with this venv's python), from the script's own "Training took" line and
   Keras' ms/step of the last epoch.

Needs a running engine and the images of scripts/docker_base_image.sh.

Usage: .venv/bin/python benchmarks/bench_docker.py [--repeats 5] [--epochs 2] [--skip-epoch]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

IMAGE = "mltrain-tf:2.21"
FIRST_LINE = "import time; print('first', repr(time.time()), flush=True)\n"


def _first(text: str) -> float:
    m = re.search(r"first (\d+\.\d+)", text)
    return float(m.group(1)) if m else float("nan")


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:7.1f} ms  (runs: {', '.join(f'{v * 1000:.0f}' for v in values)})"


def bench_start(ws, src: Path, repeats: int) -> dict[str, list[float]]:
    from mltrain_desktop.core import Experiment, ScriptRunConfig
    from mltrain_desktop.core.script_run_config import Environment
    from mltrain_desktop.engine.backends.base import JobContext
    from mltrain_desktop.engine.backends.docker import DockerBackend
    from mltrain_desktop.engine.jobkit import jobkit_dir
    env = Environment(pip_packages=["six"])  # a real environment image (built once, below)
    cfg = lambda: ScriptRunConfig(source_directory=str(src), script="first.py", compute_target="docker1",  # noqa: E731
                                  environment=env)
    warm = Experiment(ws, "bench-docker").submit(cfg())
    warm.wait_for_completion()
    target = {"name": "docker1", "kind": "docker", "config": {"image": IMAGE}}
    out: dict[str, list[float]] = {"bare": [], "backend": [], "app": []}
    for i in range(repeats):
        t0 = time.time()
        p = subprocess.run(["docker", "run", "--rm", "-v", f"{src}:/src:ro", IMAGE, "python3", "/src/first.py"],
                           capture_output=True, text=True)
        out["bare"].append(_first(p.stdout) - t0)

        rd = Path(ws.path) / "bench-backend" / f"r{i}"
        for d in ("snapshot", "outputs", "logs"):
            (rd / d).mkdir(parents=True, exist_ok=True)
        (rd / "snapshot" / "first.py").write_text(FIRST_LINE)
        ctx = JobContext(run_id=f"bench_{os.getpid()}_{i}", workspace_dir=Path(ws.path), run_dir=rd,
                         snapshot_dir=rd / "snapshot", outputs_dir=rd / "outputs", logs_dir=rd / "logs",
                         jobkit_dir=jobkit_dir(Path(ws.path)), entry_script="first.py", arguments=[],
                         environment_variables={"MLTRAIN_METRICS_FILE": str(rd / "logs" / "metrics.jsonl")},
                         target=target, spec={"environment": {"pip_packages": ["six"]}}, log=lambda _l: None)
        t0 = time.time()
        backend = DockerBackend(target)
        backend.prepare(ctx)
        handle = backend.launch(ctx)
        while handle.poll() is None:
            time.sleep(0.02)
        out["backend"].append(_first((rd / "logs" / "driver.log").read_text()) - t0)

        t0 = time.time()
        run = Experiment(ws, "bench-docker").submit(cfg())
        run.wait_for_completion()
        out["app"].append(_first(run.read_log()[0]) - t0)
    return out


def _training(text: str, epochs: int) -> tuple[float, float]:
    took = float(re.search(r"Training took ([\d.]+)s", text).group(1))
    steps = re.findall(r"- (\d+)ms/step", text)
    return took / epochs, float(steps[-1]) if steps else float("nan")


def bench_epoch(ws, epochs: int) -> tuple[tuple[float, float], tuple[float, float], str]:
    from mltrain_desktop.core import Experiment
    from mltrain_desktop.core.sample_flow import register_sample_dataset, sample_estimator
    from mltrain_desktop.core.samples import SAMPLE_DIR, sample_data_dir
    data = sample_data_dir()
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run([sys.executable, str(SAMPLE_DIR / "tf_mnist.py"), "--data-folder", str(data),
                            "--epochs", str(epochs)], capture_output=True, text=True, cwd=d,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    host = _training(p.stdout, epochs)
    ds = register_sample_dataset(ws)
    run = Experiment(ws, "bench-epoch").submit(sample_estimator(ws, ds, epochs=epochs, compute_target="docker1"))
    run.wait_for_completion()
    container = _training(run.read_log(max_bytes=1 << 24)[0], epochs)
    return host, container, str(data)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--skip-epoch", action="store_true")
    args = ap.parse_args()
    from mltrain_desktop.core import ComputeTarget, Workspace
    from mltrain_desktop.core.compute_docker import DockerCompute
    with tempfile.TemporaryDirectory() as d:
        ws = Workspace.create(Path(d) / "ws")
        t = ComputeTarget.create(ws, "docker1", DockerCompute.provisioning_configuration(image=IMAGE))
        if t.provisioning_state != "Succeeded":
            sys.exit(f"docker target not usable: {t.state_detail}")
        print(f"engine: {t.state_detail.split(';')[0]}")
        src = Path(d) / "src"
        src.mkdir()
        (src / "first.py").write_text(FIRST_LINE)
        s = bench_start(ws, src, args.repeats)
        print(f"start: docker run --rm (bare)            -> first line  {_ms(s['bare'])}")
        print(f"start: backend prepare (cached) + launch -> first line  {_ms(s['backend'])}")
        print(f"start: exp.submit() on the docker target -> first line  {_ms(s['app'])}")
        print(f"start: added by the app over a bare docker run: "
              f"{(statistics.median(s['app']) - statistics.median(s['bare'])) * 1000:+.0f} ms "
              f"(backend alone {(statistics.median(s['backend']) - statistics.median(s['bare'])) * 1000:+.0f} ms)")
        if not args.skip_epoch:
            (hs, hms), (cs, cms), data = bench_epoch(ws, args.epochs)
            print(f"sample epoch time ({args.epochs} epochs, data {data}):")
            print(f"  host      {hs:7.3f} s/epoch, last epoch {hms:.0f} ms/step")
            print(f"  container {cs:7.3f} s/epoch, last epoch {cms:.0f} ms/step  -> {100 * (cs / hs - 1):+.1f}%")


if __name__ == "__main__":
    main()
