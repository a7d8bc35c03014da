"""Distributed-job figures (issue 5), measured side by side in one run.

1. launch overhead of a 2-rank MPI job of an empty script:
   a. the mpirun command typed by hand (`mpirun -np 2 --host localhost:2 --bind-to none python empty.py`);
   b. the app's MPI backend (prepare + launch + the rank launcher around each rank, polled every 10 ms);
   c. the same through the SDK (submit -> supervisor -> Completed), which adds the supervisor process,
      the database and its 0.25 s poll;
2. time from a rank's death (SIGKILL of its script) to the run being marked failed, and to every
   process of the job being gone: an MPI rank, and a parameter-server worker (backend polled every
   0.25 s as the supervisor does), plus the MPI case through the SDK (until the run is Failed).

The jobs are TF-free stand-ins (each rank listens on its TF_CONFIG port like a gRPC server), so
the figures are the engine's own costs, not TensorFlow's 3-8 s import.

Usage: .venv/bin/python benchmarks/bench_distributed.py [--repeats 5] [--no-sdk]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SERVE = textwrap.dedent("""
    import json, os, socket, time
    cfg = json.loads(os.environ.get("TF_CONFIG") or "{}")
    t = cfg.get("task", {})
    if t.get("type") == "chief":
        time.sleep(300)
    port = int(cfg["cluster"][t["type"]][t["index"]].rsplit(":", 1)[1])
    s = socket.socket(); s.bind(("127.0.0.1", port)); s.listen()
    print("serving", flush=True)
    time.sleep(300)
""")


def context(root: Path, script: str, dist: dict, run_id: str):
    from mltrain_desktop.engine.backends.base import JobContext
    run_dir = root / run_id
    snap, logs, outs = run_dir / "snapshot", run_dir / "logs", run_dir / "outputs"
    for d in (snap, logs, outs):
        d.mkdir(parents=True, exist_ok=True)
    (snap / "job.py").write_text(script)
    env = {"MLTRAIN_RUN_ID": run_id, "MLTRAIN_METRICS_FILE": str(logs / "metrics.jsonl")}
    return JobContext(run_id=run_id, workspace_dir=root, run_dir=run_dir, snapshot_dir=snap, outputs_dir=outs,
                      logs_dir=logs, jobkit_dir=REPO, entry_script="job.py", arguments=[],
                      environment_variables=env, target={"name": "local", "kind": "local", "config": {}},
                      spec={"distribution": dist}, interpreter=sys.executable, log=lambda line: None)


MPI2 = {"kind": "mpi", "process_count_per_node": 2, "node_count": 1}
PS12 = {"kind": "parameter_server", "worker_count": 2, "parameter_server_count": 1}


def by_hand(root: Path) -> float:
    (root / "empty.py").write_text("")
    argv = ["mpirun", "-np", "2", "--host", "localhost:2", "--bind-to", "none", sys.executable, "empty.py"]
    if os.geteuid() == 0:
        argv.insert(1, "--allow-run-as-root")
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=root, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def via_backend(root: Path, i: int) -> float:
    from mltrain_desktop.engine.backends import backend_for
    ctx = context(root, "", MPI2, f"launch{i}")
    t0 = time.perf_counter()
    backend = backend_for(ctx.target, ctx.spec)
    backend.prepare(ctx)
    handle = backend.launch(ctx)
    while (rc := handle.poll()) is None:
        time.sleep(0.01)
    assert rc == 0, (ctx.logs_dir / "driver.log").read_text()
    return time.perf_counter() - t0


def via_sdk(ws, src: Path, target) -> float:
    from mltrain_desktop import Experiment, MpiConfiguration
    from mltrain_desktop.core.script_run_config import ScriptRunConfig
    t0 = time.perf_counter()
    run = Experiment(ws, "bench").submit(ScriptRunConfig(
        source_directory=str(src), script="empty.py", compute_target=target,
        distributed_job_config=MpiConfiguration(process_count_per_node=2)))
    run.wait_for_completion()
    return time.perf_counter() - t0


def _status(logs: Path, tag: str) -> dict:
    try:
        return json.loads((logs / ".tasks" / f"{tag}.json").read_text())
    except (OSError, ValueError):
        return {}


def _serving(logs: Path, tag: str) -> int | None:
    log = logs / f"{tag}.log"
    if log.is_file() and "serving" in log.read_text():
        return _status(logs, tag).get("pid")
    return None


def death_to_failed(root: Path, dist: dict, victim: str, i: int) -> tuple[float, float]:
    from mltrain_desktop.engine.backends import backend_for
    from mltrain_desktop.engine.rank_launcher import job_pids
    ctx = context(root, SERVE, dist, f"death{victim}{i}")
    backend = backend_for(ctx.target, ctx.spec)
    backend.prepare(ctx)
    handle = backend.launch(ctx)
    deadline = time.monotonic() + 60
    while (pid := _serving(ctx.logs_dir, victim)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{victim} never started")
        time.sleep(0.05)
    time.sleep(0.5)
    t0 = time.perf_counter()
    os.kill(pid, signal.SIGKILL)
    while handle.poll() is None:
        time.sleep(0.25)  # the supervisor's poll
    failed = time.perf_counter() - t0
    token = handle.state()["token"]
    while job_pids(token):
        time.sleep(0.01)
    return failed, time.perf_counter() - t0


def death_via_sdk(ws, src: Path, target) -> float:
    from mltrain_desktop import Experiment, MpiConfiguration
    from mltrain_desktop.core.script_run_config import ScriptRunConfig
    run = Experiment(ws, "bench").submit(ScriptRunConfig(
        source_directory=str(src), script="serve.py", compute_target=target,
        distributed_job_config=MpiConfiguration(process_count_per_node=2)))
    logs = run.run_dir / "logs"
    deadline = time.monotonic() + 60
    while (pid := _serving(logs, "rank_1")) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("rank 1 never started")
        time.sleep(0.05)
    time.sleep(0.5)
    t0 = time.perf_counter()
    os.kill(pid, signal.SIGKILL)
    while not run.is_terminal():
        time.sleep(0.02)
    return time.perf_counter() - t0


def show(label: str, values: list[float]) -> None:
    print(f"  {label:<58} median {statistics.median(values):6.3f} s   "
          f"(min {min(values):.3f}, max {max(values):.3f}, n={len(values)})", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-sdk", action="store_true", help="skip the figures through the SDK")
    args = ap.parse_args()
    if shutil.which("mpirun") is None:
        print("mpirun (Open MPI) is not installed: nothing to measure")
        return 1
    root = Path(tempfile.mkdtemp(prefix="bench-dist-"))
    print(f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}; repeats {args.repeats}", flush=True)
    try:
        ws = target = src = None
        if not args.no_sdk:
            from mltrain_desktop import AmlCompute, ComputeTarget, Workspace
            os.environ.setdefault("MLTRAIN_HOME", str(root / "home"))
            ws = Workspace.create(root / "ws")
            target = ComputeTarget.create(ws, "bench", AmlCompute.provisioning_configuration(vm_size="x", max_nodes=1))
            src = root / "src"
            src.mkdir()
            (src / "empty.py").write_text("")
            (src / "serve.py").write_text(SERVE)

        print("1. launch overhead, 2-rank MPI job of an empty script", flush=True)
        by_hand(root)  # warm the page cache once
        hand = [by_hand(root) for _ in range(args.repeats)]
        app = [via_backend(root, i) for i in range(args.repeats)]
        show("mpirun typed by hand", hand)
        show("app's MPI backend (prepare + launch + rank launcher)", app)
        print(f"  -> backend overhead: {statistics.median(app) - statistics.median(hand):+.3f} s", flush=True)
        if ws is not None:
            sdk = [via_sdk(ws, src, target) for _ in range(args.repeats)]
            show("through the SDK (submit -> Completed)", sdk)

        print("2. a rank's death (SIGKILL) -> run failed -> every process gone", flush=True)
        mpi = [death_to_failed(root, MPI2, "rank_1", i) for i in range(args.repeats)]
        show("MPI rank 1: marked failed (backend polled every 0.25 s)", [m[0] for m in mpi])
        show("MPI rank 1: every process gone", [m[1] for m in mpi])
        ps = [death_to_failed(root, PS12, "worker_1", i) for i in range(args.repeats)]
        show("ps cluster, worker 1: marked failed", [p[0] for p in ps])
        show("ps cluster, worker 1: every process gone", [p[1] for p in ps])
        if ws is not None:
            sdk = [death_via_sdk(ws, src, target) for _ in range(args.repeats)]
            show("MPI rank 1 through the SDK: run is Failed", sdk)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
