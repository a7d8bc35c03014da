"""Recovery of runs whose supervisor died: what the job flushed is kept once, and every process it recorded ends.

Real processes (a job that writes a last point when stopped, parameter-server tasks with children,
a process that left its session) and the real workspace database; the run rows are made through
the store as a submitter and a supervisor make them, with a supervisor that is really gone.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from mltrain_desktop.domain.run_state import RunStatus
from mltrain_desktop.engine.recovery import ingest_leftover_metrics, recover_orphaned_runs
from mltrain_desktop.store import experiments, metrics, runs
from mltrain_desktop.store.metrics import ingest_file


def _point(i: int, rank: int | None = None) -> str:
    rec = {"k": "m", "n": "p", "s": i, "v": float(i), "t": 1.0}
    if rank is not None:
        rec["rank"] = rank
    return json.dumps(rec) + "\n"


def _dead_supervisor() -> tuple[int, float]:
    """(pid, create time) of a process that has ended: a supervisor that was killed."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    created = psutil.Process(p.pid).create_time()
    p.kill()
    p.wait()
    return p.pid, created


def _orphaned_run(ws, run_id: str, backend_state: dict) -> None:
    """A Running run whose supervisor is gone, with the job state a backend recorded."""
    conn = ws.db.conn
    runs.insert(conn, run_id, experiments.ensure(conn, "recovery"), "local", {}, {}, "submitted", {})
    pid, created = _dead_supervisor()
    assert runs.set_status(conn, run_id, RunStatus.PREPARING)
    assert runs.set_status(conn, run_id, RunStatus.RUNNING, supervisor_pid=pid, supervisor_started=created,
                           backend_state=json.dumps(backend_state))


def _logs(ws, run_id: str):
    logs = ws.path / "runs" / run_id / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs


def _spawn(code: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env={**os.environ, **(env or {})}, **kw)


def _ended(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _identity(p: subprocess.Popen | int) -> dict:
    pid = p if isinstance(p, int) else p.pid
    return {"pid": pid, "create_time": psutil.Process(pid).create_time()}


def test_recovery_keeps_what_the_job_flushed_after_the_last_ingestion_and_as_it_was_stopped(ws):
    run_id = "rec_metrics_1"
    logs = _logs(ws, run_id)
    main, rank1 = logs / "metrics.jsonl", logs / "metrics.rank1.jsonl"
    main.write_text("".join(_point(i) for i in range(5)))
    assert ingest_file(ws.db.conn, run_id, main) == 5  # the supervisor's last ingestion
    # the job goes on: five more points, and a rank file never ingested whose last line is not yet whole;
    # stopped, it flushes one last point (the one a Keras callback writes at the end of a batch)
    job = _spawn(f"""
        import json, pathlib, signal, sys, time
        main = pathlib.Path({str(main)!r})
        def last(*_):
            with main.open("a") as fh:
                fh.write({_point(10)!r})
            sys.exit(0)
        signal.signal(signal.SIGTERM, last)
        with main.open("a") as fh:
            fh.write({"".join(_point(i) for i in range(5, 10))!r})
        pathlib.Path({str(rank1)!r}).write_text({_point(0, 1) + _point(1, 1) + '{"k": "m", "n": "p", "s": 99'!r})
        pathlib.Path({str(logs / "ready")!r}).write_text("")
        while True:
            time.sleep(0.05)
    """)
    try:
        _wait(lambda: (logs / "ready").exists(), 30, "the job to flush")
        _orphaned_run(ws, run_id, _identity(job))
        assert recover_orphaned_runs(ws.path, ws.db.conn) == [run_id]
        assert job.wait(10) == 0  # stopped by SIGTERM, and it had its last word
    finally:
        job.kill()
    assert runs.get_status(ws.db.conn, run_id) == "Failed"
    assert [v for _, v in metrics.points(ws.db.conn, run_id, "p", rank=0)] == [float(i) for i in range(11)]
    assert [v for _, v in metrics.points(ws.db.conn, run_id, "p", rank=1)] == [0.0, 1.0]
    ingest_leftover_metrics(ws.path, ws.db.conn, run_id)  # another client recovering it later: nothing twice
    assert len(metrics.points(ws.db.conn, run_id, "p", rank=None)) == 13


def _recover_metrics_in_process(ws_path: str, run_id: str, barrier) -> None:
    from mltrain_desktop.store.db import connect
    db = connect(os.path.join(ws_path, "workspace.db"))
    barrier.wait()
    ingest_leftover_metrics(ws_path, db.conn, run_id)


def test_two_clients_recovering_one_run_store_each_point_once(ws):
    run_id = "rec_twice_1"
    logs = _logs(ws, run_id)
    with open(logs / "metrics.jsonl", "w") as fh:
        fh.writelines(_point(i) for i in range(100_000))
    (logs / "metrics.worker0.jsonl").write_text("".join(_point(i, 1) for i in range(1000)))
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_recover_metrics_in_process, args=(str(ws.path), run_id, barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(metrics.points(ws.db.conn, run_id, "p", rank=0)) == 100_000
    assert len(metrics.points(ws.db.conn, run_id, "p", rank=1)) == 1000


TASK = """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    print(child.pid, flush=True)
    time.sleep(300)
"""


def test_recovery_stops_every_task_of_a_parameter_server_job_and_what_carries_its_token(ws):
    token = "rec_ps_1-abcd1234"
    env = {"MLTRAIN_JOB_TOKEN": token}
    tasks, children = [], []
    bystander = _spawn("import time; time.sleep(300)")  # not the job's: a pid whose create time does not match
    left = _spawn("import time; time.sleep(300)", env=env, start_new_session=True)  # left the task's tree
    try:
        for tag in ("ps_0", "worker_0", "chief_0"):
            p = _spawn(TASK, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
            children.append(int(p.stdout.readline()))
            tasks.append((tag, p))
        state = {"kind": "parameter_server", "token": token,
                 "tasks": [{"tag": tag, **_identity(p), "port": 0} for tag, p in tasks]
                 + [{"tag": "worker_1", "pid": bystander.pid, "create_time": 1.0, "port": 0}]}
        _orphaned_run(ws, "rec_ps_1", state)
        t0 = time.monotonic()
        assert recover_orphaned_runs(ws.path, ws.db.conn) == ["rec_ps_1"]
        pids = [p.pid for _, p in tasks] + children + [left.pid]
        _wait(lambda: all(_ended(pid) for pid in pids), 10, "every process of the job to end")
        assert time.monotonic() - t0 < 15
        assert runs.get_status(ws.db.conn, "rec_ps_1") == "Failed"
        assert bystander.poll() is None, "a process that only reuses a recorded pid was stopped"
    finally:
        for p in [bystander, left, *(p for _, p in tasks)]:
            p.kill()
            p.wait()
        for pid in children:
            try:
                os.kill(pid, 9)
            except OSError:
                pass


@pytest.mark.parametrize("state", [{}, {"pid": None}, {"tasks": [{"tag": "chief_0"}]}, {"tasks": "oops"}])
def test_recovery_fails_a_run_whose_job_state_records_nothing_to_stop(ws, state):
    _orphaned_run(ws, "rec_empty_1", state)
    assert recover_orphaned_runs(ws.path, ws.db.conn) == ["rec_empty_1"]
    assert runs.get_status(ws.db.conn, "rec_empty_1") == "Failed"


def test_a_fresh_claim_is_left_to_its_client_and_a_stale_one_is_settled(ws):
    """B4's follow-up: a client that claimed a run (pid -1) is starting its new supervisor; a
    second client must not start another. A claim nobody followed up times out."""
    from mltrain_desktop.engine.recovery import CLAIM_SECONDS
    _orphaned_run(ws, "rec_claim_1", {})
    conn = ws.db.conn
    pid = runs.get(conn, "rec_claim_1")["supervisor_pid"]
    assert runs.claim_supervisor(conn, "rec_claim_1", pid)
    assert not runs.claim_supervisor(conn, "rec_claim_1", pid)  # only one client wins the claim
    assert recover_orphaned_runs(ws.path, conn) == []
    assert runs.get_status(conn, "rec_claim_1") == "Running"
    runs.update_fields(conn, "rec_claim_1", supervisor_started=time.time() - CLAIM_SECONDS - 1)
    assert recover_orphaned_runs(ws.path, conn) == ["rec_claim_1"]
    assert runs.get_status(conn, "rec_claim_1") == "Failed"
