"""The rank launcher on its own: environment per rank/task, logs, status records, signals."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from dist_helpers import REPO, task_status, wait_for
from mltrain_desktop.engine import rank_launcher as rl

CLUSTER2 = {"worker": ["127.0.0.1:5000", "127.0.0.1:5001"]}
PS_CLUSTER = {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2", "127.0.0.1:3"], "ps": ["127.0.0.1:4"]}


def test_mpi_rank_environment(tmp_path):
    base = {rl.ENV_CLUSTER: json.dumps(CLUSTER2), rl.ENV_METRICS: str(tmp_path / "metrics.jsonl")}
    env0 = rl.task_environment(base, tmp_path, None, 0, 2)
    env1 = rl.task_environment(base, tmp_path, None, 1, 2)
    assert json.loads(env1["TF_CONFIG"]) == {"cluster": CLUSTER2, "task": {"type": "worker", "index": 1}}
    assert env0[rl.ENV_RANK] == "0" and env1[rl.ENV_RANK] == "1"
    assert env0[rl.ENV_METRICS] == str(tmp_path / "metrics.jsonl")  # rank 0 keeps the run's file
    assert env1[rl.ENV_METRICS] == str(tmp_path / "metrics.rank1.jsonl")
    assert env1["MLTRAIN_TASK"] == "rank 1"
    # a world size that does not match the cluster: no TF_CONFIG rather than a wrong one
    assert "TF_CONFIG" not in rl.task_environment(base, tmp_path, None, 1, 3)


@pytest.mark.parametrize("task, index, rank, metrics", [("chief", 0, 0, "metrics.jsonl"),
                                                        ("worker", 1, 2, "metrics.worker1.jsonl"),
                                                        ("ps", 0, 3, "metrics.ps0.jsonl")])
def test_parameter_server_task_environment(tmp_path, task, index, rank, metrics):
    base = {rl.ENV_CLUSTER: json.dumps(PS_CLUSTER), rl.ENV_METRICS: str(tmp_path / "metrics.jsonl")}
    env = rl.task_environment(base, tmp_path, task, index, None)
    cfg = json.loads(env["TF_CONFIG"])
    assert cfg["task"] == {"type": task, "index": index} and cfg["environment"] == "cloud"
    assert env[rl.ENV_RANK] == str(rank)
    assert env[rl.ENV_METRICS] == str(tmp_path / metrics)
    assert env["MLTRAIN_TASK_TYPE"] == task and env["MLTRAIN_TASK_INDEX"] == str(index)


def test_names_and_files():
    assert rl.task_tag(None, 3) == "rank_3" and rl.task_tag("worker", 0) == "worker_0"
    assert rl.task_name("ps_1") == "ps 1"
    assert rl.log_file(Path("/l"), "rank_1") == Path("/l/rank_1.log")
    assert rl.metrics_file(Path("/l"), "worker_0") == Path("/l/metrics.worker0.jsonl")


def test_describe_exit():
    assert rl.describe_exit(3) == "exited with code 3"
    assert rl.describe_exit(-9) == "was killed by signal 9 (SIGKILL)"
    assert rl.describe_exit(-9, 9) == rl.describe_exit(None, 9)
    assert rl.describe_exit(None) == "ended (exit code unknown)"


def test_failure_report_names_the_task_and_its_last_lines(tmp_path):
    log = tmp_path / "logs" / "worker_1.log"
    log.parent.mkdir()
    log.write_text("".join(f"line {i}\n" for i in range(50)))
    text = rl.failure_report("worker 1", "exited with code 3", log, n=5, hint="the engine stopped ps 0")
    assert text.startswith("worker 1 exited with code 3; the engine stopped ps 0")
    assert "last lines of logs/worker_1.log" in text
    assert "line 49" in text and "line 45" in text and "line 44" not in text
    assert "is empty" in rl.failure_report("x", "y", tmp_path / "none.log")


def _launch(tmp_path, script: str, extra_env=None, opts=(), args=()):
    src = tmp_path / "job.py"
    src.write_text(textwrap.dedent(script))
    env = dict(os.environ)
    env.update({"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "OMPI_COMM_WORLD_RANK": "1",
                "OMPI_COMM_WORLD_SIZE": "2", rl.ENV_CLUSTER: json.dumps(CLUSTER2),
                rl.ENV_METRICS: str(tmp_path / "logs" / "metrics.jsonl")})
    env.update(extra_env or {})
    argv = [sys.executable, "-m", "mltrain_desktop.engine.rank_launcher", "--logs-dir", str(tmp_path / "logs"),
            *opts, "--", str(src), *args]
    return subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def test_output_is_split_per_rank_and_prefixed_in_the_combined_log(tmp_path):
    p = _launch(tmp_path, """
        import os, sys
        from mltrain_desktop.run import Run
        print("hello", os.environ["TF_CONFIG"])
        print("to stderr", file=sys.stderr)
        Run.get_context().log("loss", 0.5)
        sys.exit(3)
    """)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 3
    lines = out.decode().splitlines()
    assert lines[0].startswith("[rank 1] hello {") and '"index":1' in lines[0]
    assert "[rank 1] to stderr" in lines
    log = (tmp_path / "logs" / "rank_1.log").read_text()
    assert log.startswith("hello {") and "to stderr\n" in log and "[rank" not in log
    rec = json.loads((tmp_path / "logs" / "metrics.rank1.jsonl").read_text())
    assert rec["n"] == "loss" and rec["rank"] == 1
    st = task_status(tmp_path / "logs", "rank_1")
    assert st["exit_code"] == 3 and st["signal"] is None and st["name"] == "rank 1"
    assert st["ended"] >= st["started"] and st["pid"] != st["launcher_pid"] == p.pid


def test_a_killed_script_is_reported_with_its_signal(tmp_path):
    p = _launch(tmp_path, "import time\nprint('up', flush=True)\ntime.sleep(60)\n")
    st = wait_for(lambda: task_status(tmp_path / "logs", "rank_1").get("pid"), 20, "the script to start")
    os.kill(st, signal.SIGKILL)
    p.communicate(timeout=20)
    assert p.returncode == 128 + 9
    st = task_status(tmp_path / "logs", "rank_1")
    assert st["signal"] == 9 and st["exit_code"] == -9 and "stopped" not in st


def test_sigterm_reaches_a_stubborn_script_as_sigint_then_sigkill(tmp_path):
    # Like a MultiWorkerMirroredStrategy worker: keeps going through SIGTERM, stops on SIGINT.
    p = _launch(tmp_path, """
        import signal, time
        signal.signal(signal.SIGTERM, lambda *a: print("ignoring SIGTERM", flush=True))
        print("up", flush=True)
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            print("stopped by SIGINT", flush=True)
    """)
    wait_for(lambda: task_status(tmp_path / "logs", "rank_1").get("pid"), 20, "the script to start")
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=10)
    assert b"[rank 1] stopped by SIGINT" in out
    assert task_status(tmp_path / "logs", "rank_1")["stopped"] == "stopped by SIGTERM"

    # One that ignores both (its peer never came): SIGKILL after the launcher's grace.
    p = _launch(tmp_path, """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("up", flush=True)
        time.sleep(60)
    """, extra_env={"OMPI_COMM_WORLD_RANK": "0"})
    child = wait_for(lambda: task_status(tmp_path / "logs", "rank_0").get("pid"), 20, "the script to start")
    time.sleep(0.3)
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=10)
    assert time.monotonic() - t0 < 5
    assert p.returncode == 128 + 9
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


def test_the_script_dies_with_its_launcher(tmp_path):
    p = _launch(tmp_path, "import time\ntime.sleep(60)\n")
    child = wait_for(lambda: task_status(tmp_path / "logs", "rank_1").get("pid"), 20, "the script to start")
    p.kill()
    p.wait()
    wait_for(lambda: not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE,
             5, "the script to die with its launcher")


def test_a_task_stops_when_the_process_it_watches_ends(tmp_path):
    watched = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    p = _launch(tmp_path, "import time\nprint('serving', flush=True)\ntime.sleep(60)\n",
                extra_env={rl.ENV_CLUSTER: json.dumps(PS_CLUSTER)}, opts=["--task-type", "ps", "--task-index", "0", "--watch-pid", str(watched.pid)])
    wait_for(lambda: task_status(tmp_path / "logs", "ps_0").get("pid"), 20, "the script to start")
    watched.kill()
    watched.wait()
    t0 = time.monotonic()
    out, _ = p.communicate(timeout=10)
    assert time.monotonic() - t0 < 4
    assert b"[ps 0] serving" in out
    assert "the chief" in task_status(tmp_path / "logs", "ps_0")["stopped"]


def test_job_pids_finds_processes_by_token(tmp_path):
    token = "test-token-123"
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                         env={**os.environ, rl.ENV_TOKEN: token})
    try:
        wait_for(lambda: p.pid in rl.job_pids(token), 10, "the token to be seen")
        assert p.pid not in rl.job_pids("another-token")
    finally:
        p.kill()
        p.wait()
    assert p.pid not in rl.job_pids(token)


def test_a_cluster_without_the_task_is_an_error_in_the_log(tmp_path):
    p = _launch(tmp_path, "print('never')\n", opts=["--task-type", "ps", "--task-index", "0"])
    out, _ = p.communicate(timeout=20)
    assert p.returncode == 2
    assert b"[ps 0] rank_launcher: error: task type 'ps' is not in the cluster" in out


def test_logs_that_cannot_be_written_leave_only_the_combined_log(tmp_path):
    (tmp_path / "logs").write_text("a file where the logs folder should be")
    p = _launch(tmp_path, """
        import os
        from mltrain_desktop.run import Run
        Run.get_context().log("loss", 1.0)
        print("trained anyway", os.environ["MLTRAIN_METRICS_FILE"])
    """)
    out, _ = p.communicate(timeout=20)
    assert p.returncode == 0, out
    assert b"rank_launcher: cannot write to" in out and b"shared filesystem" in out
    assert b"[rank 1] trained anyway /dev/null" in out


def test_usage_errors():
    for argv in ([], ["--logs-dir", "x"], ["--logs-dir", "x", "--"], ["--bogus", "1", "--", "a.py"]):
        with pytest.raises(SystemExit):
            rl.main(argv)
