"""Helpers for the Docker distributed tests (a module of its own: conftest modules share one name).

Every cluster is tiny (2 ranks; 1 ps + 2 workers + chief): the machine has 2 CPU cores.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

from docker_helpers import BASE_IMAGE, make_ctx

MPI2 = {"kind": "mpi", "process_count_per_node": 2, "node_count": 1}
PS12 = {"kind": "parameter_server", "worker_count": 2, "parameter_server_count": 1}
PS_TAGS = ["ps_0", "worker_0", "worker_1", "chief_0"]

# A TensorFlow stand-in that needs no TensorFlow (the base image has none): each rank/task reads
# its TF_CONFIG, listens on its port on all interfaces as a gRPC server would, and does what
# the arguments say ("worker:1=exit3", "chief:0=probe:2", "*=serve"):
#   serve        listen and wait forever (a ps/worker task in server.join())
#   sleep:S      listen, wait S seconds, exit 0
#   probe:S      listen, connect to every other task's TF_CONFIG address (by container name),
#                print "reached ADDRESS" for each, wait S seconds, exit 0
#   crash:S      listen, wait S seconds, raise
#   exitN        exit with code N at once, without listening
#   late:S       listen only after S seconds, then wait forever
#   stubborn     listen and ignore SIGTERM and SIGINT (only SIGKILL ends it)
#   hog          listen, then take 64 MiB after 64 MiB of memory until something stops it
FAKE_JOB = textwrap.dedent("""
    import json, os, signal, socket, sys, time
    cfg = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = cfg.get("task", {})
    me = "%s:%s" % (task.get("type"), task.get("index"))
    rules = dict(a.split("=", 1) for a in sys.argv[1:])
    action = rules.get(me, rules.get("*", "serve"))
    print(me, "rank", os.environ.get("MLTRAIN_RANK"), "task", os.environ.get("MLTRAIN_TASK"),
          "host", socket.gethostname(), "action", action, flush=True)
    from mltrain_desktop.run import Run
    run = Run.get_context()
    run.log("started", 1)

    def listen():
        port = int(cfg["cluster"][task["type"]][task["index"]].rsplit(":", 1)[1])
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
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
    if action.startswith("probe:"):
        mine = cfg["cluster"][task["type"]][task["index"]]
        for addr in [a for t in cfg["cluster"].values() for a in t if a != mine]:
            host, port = addr.rsplit(":", 1)
            deadline = time.time() + 30
            while True:
                try:
                    socket.create_connection((host, int(port)), timeout=2).close()
                    print(me, "reached", addr, flush=True)
                    break
                except OSError as e:
                    if time.time() > deadline:
                        raise SystemExit(f"{me} could not reach {addr}: {e}")
                    time.sleep(0.2)
        run.log("reached", 1)
        action = "sleep:" + action[6:]
    if action.startswith("sleep:"):
        time.sleep(float(action[6:]))
        print(me, "done", flush=True)
        sys.exit(0)
    if action == "hog":
        held = []
        while True:
            held.append(b"x" * (64 << 20))
            time.sleep(0.05)
    if action.startswith("crash:"):
        time.sleep(float(action[6:]))
        raise RuntimeError("boom from " + me)
    while True:
        time.sleep(0.5)
""")


def cluster_ctx(tmp_path: Path, dist: dict, script: str = FAKE_JOB, args=(), config: dict | None = None,
                image: str = BASE_IMAGE, **kwargs):
    """A JobContext for a distributed run on the Docker target, with a run id of its own."""
    run_id = kwargs.pop("run_id", None) or f"dist_{int(time.time())}_{uuid.uuid4().hex[:8]}"
    return make_ctx(tmp_path, script, run_id=run_id, config={"image": image, **(config or {})},
                    spec={"environment": {}, "distribution": dist}, arguments=[str(a) for a in args], **kwargs)


def workspace_resources(api, base) -> tuple[list[dict], list[dict]]:
    """(containers, networks) labelled for a workspace under ``base``."""
    base = str(Path(base).resolve())
    containers = [c for c in api.containers(all=True, filters={"label": "mltrain.workspace"})
                  if (c.get("Labels") or {}).get("mltrain.workspace", "").startswith(base)]
    networks = [n for n in api.networks(filters={"label": "mltrain.workspace"})
                if (n.get("Labels") or {}).get("mltrain.workspace", "").startswith(base)]
    return containers, networks


def run_containers(api, run_id: str) -> list[dict]:
    return api.containers(all=True, filters={"label": f"mltrain.run={run_id}"})


def run_networks(api, run_id: str) -> list[dict]:
    return api.networks(filters={"label": f"mltrain.run={run_id}"})


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


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def log_has(path: Path, text: str) -> bool:
    try:
        return text in Path(path).read_text(errors="replace")
    except OSError:
        return False


def first_supervisor(tmp_path: Path, ctx, dist: dict, args: list[str], config: dict | None = None):
    """Another process that launches the job of ``ctx`` and follows it, as a supervisor would; returns
    (the process, the handle's state it printed). Kill it to play a supervisor that died."""
    here = Path(__file__).resolve().parent
    driver = tmp_path / "first_supervisor.py"
    driver.write_text(textwrap.dedent(f"""
        import json, sys, time
        sys.path[:0] = {[str(here), str(here.parent / 'docker')]!r}
        from pathlib import Path
        from dc_helpers import cluster_ctx
        from mltrain_desktop.engine.backends import backend_for
        ctx = cluster_ctx(Path({str(tmp_path)!r}), {dist!r}, args={args!r}, run_id={ctx.run_id!r},
                          config={config!r})
        b = backend_for(ctx.target, ctx.spec); b.prepare(ctx); h = b.launch(ctx)
        print(json.dumps(h.state()), flush=True)
        while h.poll() is None:
            time.sleep(0.25)
    """))
    proc = subprocess.Popen([sys.executable, str(driver)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(here.parents[1])})
    return proc, json.loads(proc.stdout.readline())
