"""Helpers for the distributed-training tests (imported by the test modules): job contexts, a fake TF job, process checks.

Every cluster here is tiny (2 ranks; 1 ps + 2 workers + chief): the machine has 2 CPU cores.
"""
from __future__ import annotations

import json
import shutil
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "resources" / "samples" / "tf-mnist-distributed"
DATA = REPO / "resources" / "data" / "fashion-mnist-small"
if not (DATA / "train-images-idx3-ubyte.gz").is_file():
    DATA = Path("/usr/share/datasets/fashion-mnist")

# A stand-in for a TensorFlow job that needs no TensorFlow: each rank/task reads its TF_CONFIG,
# listens on its own port like a gRPC server would, and does what the arguments tell it
# ("worker:1=exit3", "chief:0=sleep:2", "*=serve"):
#   serve        listen and wait forever (a ps/worker task in server.join())
#   sleep:S      listen, wait S seconds, exit 0
#   crash:S      listen, wait S seconds, raise
#   exitN        exit with code N at once, without listening (exit0: ignores TF_CONFIG)
#   late:S       listen only after S seconds, then wait forever
#   stubborn     listen and ignore SIGTERM and SIGINT (a MultiWorkerMirroredStrategy worker
#                whose peer never came): only SIGKILL ends it
FAKE_JOB = textwrap.dedent("""
    import json, os, signal, socket, sys, time
    cfg = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = cfg.get("task", {})
    me = "%s:%s" % (task.get("type"), task.get("index"))
    rules = dict(a.split("=", 1) for a in sys.argv[1:])
    action = rules.get(me, rules.get("*", "serve"))
    print(me, "rank", os.environ.get("MLTRAIN_RANK"), "action", action, flush=True)
    from mltrain_desktop.run import Run
    Run.get_context().log("started", 1)

    def listen():
        port = int(cfg["cluster"][task["type"]][task["index"]].rsplit(":", 1)[1])
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
        print(me, "listening on", port, flush=True)
        return s

    if action.startswith("exit"):
        print(me, "leaving at once", flush=True)
        sys.exit(int(action[4:]))
    if action.startswith("late:"):
        time.sleep(float(action[5:]))
    if action == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    server = listen()
    if action.startswith("sleep:"):
        time.sleep(float(action[6:]))
        print(me, "done", flush=True)
        sys.exit(0)
    if action.startswith("crash:"):
        time.sleep(float(action[6:]))
        raise RuntimeError("boom from " + me)
    while True:
        time.sleep(0.5)
""")


def context_factory(tmp_path):
    """Returns a function that builds a JobContext as the supervisor would, with absolute paths."""
    from mltrain_desktop.engine.backends.base import JobContext

    def _make(dist: dict, script: str | Path = FAKE_JOB, args=(), config: dict | None = None,
              name: str = "run") -> JobContext:
        run_dir = tmp_path / name
        snap, logs, outs = run_dir / "snapshot", run_dir / "logs", run_dir / "outputs"
        for d in (snap, logs, outs):
            d.mkdir(parents=True, exist_ok=True)
        if isinstance(script, Path):  # a snapshot of the script's whole folder, as submit() makes
            shutil.copytree(script.parent, snap, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            entry = script.name
        else:
            (snap / "job.py").write_text(script)
            entry = "job.py"
        env = {"MLTRAIN_RUN_ID": name, "MLTRAIN_METRICS_FILE": str(logs / "metrics.jsonl"),
               "MLTRAIN_OUTPUTS_DIR": str(outs), "TF_CPP_MIN_LOG_LEVEL": "2"}
        lines: list[str] = []
        return JobContext(
            run_id=name, workspace_dir=tmp_path, run_dir=run_dir, snapshot_dir=snap, outputs_dir=outs,
            logs_dir=logs, jobkit_dir=REPO, entry_script=entry, arguments=[str(a) for a in args],
            environment_variables=env, target={"name": "local", "kind": "local", "config": dict(config or {})},
            spec={"distribution": dist}, interpreter=sys.executable, log=lines.append)

    return _make


MPI2 = {"kind": "mpi", "process_count_per_node": 2, "node_count": 1}
PS12 = {"kind": "parameter_server", "worker_count": 2, "parameter_server_count": 1}


def drive(handle, timeout: float = 60.0) -> tuple[int, float]:
    """Polls like the supervisor until the job ends; returns (exit code, seconds)."""
    t0 = time.monotonic()
    while True:
        rc = handle.poll()
        if rc is not None:
            return rc, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            handle.cancel(1.0)
            raise AssertionError(f"job still running after {timeout} s")
        time.sleep(0.25)


def job_processes(token: str) -> list[psutil.Process]:
    """Live (non-zombie) processes that carry the job's token."""
    from mltrain_desktop.engine.rank_launcher import job_pids

    out = []
    for pid in job_pids(token):
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def assert_nothing_left(handle, timeout: float = 5.0) -> None:
    """No process of the job (by token, or any pid the handle recorded) is alive."""
    state = handle.state()
    pids = [state["pid"]] if "pid" in state else [t["pid"] for t in state["tasks"]]
    deadline = time.monotonic() + timeout
    while True:
        left = job_processes(state["token"])
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not left and not alive:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"processes left: {[p.pid for p in left]} {alive}")
        time.sleep(0.1)


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def task_status(logs_dir: Path, tag: str) -> dict:
    p = Path(logs_dir) / ".tasks" / f"{tag}.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def log_has(path: Path, text: str) -> bool:
    try:
        return text in Path(path).read_text(errors="replace")
    except OSError:
        return False


needs_mpirun = pytest.mark.skipif(shutil.which("mpirun") is None, reason="Open MPI's mpirun is not installed")
needs_tf = pytest.mark.skipif(
    __import__("importlib").util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
