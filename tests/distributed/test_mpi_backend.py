"""The MPI backend with a real mpirun: fast jobs with a fake TF script, then real TensorFlow."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import time

import pytest

from dist_helpers import (DATA, MPI2, SAMPLES, assert_nothing_left, drive, log_has, needs_mpirun, needs_tf,
                          task_status, wait_for)
from mltrain_desktop.engine.backends import backend_for
from mltrain_desktop.engine.backends.base import PrepareError

pytestmark = [pytest.mark.mpi, needs_mpirun]


def start(ctx):
    backend = backend_for(ctx.target, ctx.spec)
    backend.prepare(ctx)
    return backend.launch(ctx)


# -- preparing: bad input fails before anything starts -------------------------------------
def test_mpirun_not_installed(make_ctx):
    ctx = make_ctx(MPI2, config={"mpirun": "/nonexistent/bin/mpirun"})
    with pytest.raises(PrepareError) as err:
        backend_for(ctx.target, ctx.spec).prepare(ctx)
    assert "mpirun (Open MPI) was not found" in str(err.value) and "apt install openmpi-bin" in str(err.value)


def test_not_open_mpi(make_ctx, tmp_path):
    fake = tmp_path / "mpirun"
    fake.write_text("#!/bin/sh\necho 'HYDRA build details: MPICH'\n")
    fake.chmod(0o755)
    ctx = make_ctx(MPI2, config={"mpirun": str(fake)})
    with pytest.raises(PrepareError, match="is not Open MPI"):
        backend_for(ctx.target, ctx.spec).prepare(ctx)


def test_more_ranks_than_slots(make_ctx):
    ctx = make_ctx({"kind": "mpi", "process_count_per_node": 3, "node_count": 1}, config={"slots": 2})
    with pytest.raises(PrepareError) as err:
        backend_for(ctx.target, ctx.spec).prepare(ctx)
    assert "localhost has 2" in str(err.value) and "oversubscribe" in str(err.value)


def test_more_nodes_than_hosts(make_ctx):
    ctx = make_ctx({"kind": "mpi", "process_count_per_node": 1, "node_count": 2})
    with pytest.raises(PrepareError, match="node_count=2"):
        backend_for(ctx.target, ctx.spec).prepare(ctx)


@pytest.mark.parametrize("dist", [{"kind": "mpi", "process_count_per_node": 0, "node_count": 1},
                                  {"kind": "mpi", "process_count_per_node": -2, "node_count": 1},
                                  {"kind": "mpi", "process_count_per_node": 1, "node_count": 0}])
def test_zero_or_negative_counts(make_ctx, dist):
    ctx = make_ctx(dist)
    with pytest.raises(PrepareError, match="at least 1"):
        backend_for(ctx.target, ctx.spec).prepare(ctx)


def test_a_host_that_does_not_answer(make_ctx):
    # 192.0.2.1 is TEST-NET-1: never routed, so SSH cannot reach it.
    ctx = make_ctx({"kind": "mpi", "process_count_per_node": 1, "node_count": 2},
                   config={"hosts": [{"host": "localhost", "slots": 1}, {"host": "192.0.2.1", "slots": 1}],
                           "ssh_connect_timeout_s": 1})
    t0 = time.monotonic()
    with pytest.raises(PrepareError) as err:
        backend_for(ctx.target, ctx.spec).prepare(ctx)
    assert "host '192.0.2.1' did not answer over SSH" in str(err.value)
    assert time.monotonic() - t0 < 10


def test_a_bad_hosts_list(make_ctx):
    ctx = make_ctx(MPI2, config={"hosts": [{"host": "node1", "slots": 0}]})
    with pytest.raises(PrepareError, match="slots must be a whole number"):
        backend_for(ctx.target, ctx.spec).prepare(ctx)


def test_a_port_already_taken(make_ctx):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        ctx = make_ctx(MPI2, config={"base_port": port - 1 if port > 1025 else port})
        with pytest.raises(PrepareError, match=f"port {port} for rank [01] is already in use"):
            backend_for(ctx.target, ctx.spec).launch(ctx)


def test_multi_host_command_and_cluster(make_ctx, monkeypatch):
    """A hosts list: the mpirun command and each rank's TF_CONFIG address, without starting it."""
    from mltrain_desktop.engine.backends import mpi

    captured = {}

    class Stop(Exception):
        pass

    def fake_start(argv, cwd, env, log_path):
        captured.update(argv=argv, env=env, cwd=cwd)
        raise Stop

    monkeypatch.setattr(mpi, "start_process", fake_start)
    ctx = make_ctx({"kind": "mpi", "process_count_per_node": 2, "node_count": 2},
                   config={"hosts": [{"host": "localhost", "slots": 2}, {"host": "node2", "slots": 4},
                                     {"host": "node3", "slots": 4}],
                           "mpirun_args": ["--mca", "btl_tcp_if_include", "eth0"], "base_port": 41000})
    with pytest.raises(Stop):
        backend_for(ctx.target, ctx.spec).launch(ctx)
    argv, env = captured["argv"], captured["env"]
    assert argv[argv.index("--host") + 1] == "localhost:2,node2:2"
    assert argv[argv.index("-np") + 1] == "4"
    assert "plm_rsh_args" in argv and "BatchMode=yes" in argv[argv.index("plm_rsh_args") + 1]
    assert argv[argv.index("btl_tcp_if_include") + 1] == "eth0"
    forwarded = {argv[i + 1] for i, a in enumerate(argv) if a == "-x"}
    assert {"MLTRAIN_TF_CLUSTER", "MLTRAIN_METRICS_FILE", "PYTHONPATH", "MLTRAIN_JOB_TOKEN"} <= forwarded
    workers = json.loads(env["MLTRAIN_TF_CLUSTER"])["worker"]
    here = socket.gethostname()  # other hosts must reach this machine's ranks: not 127.0.0.1
    assert workers == [f"{here}:41000", f"{here}:41001", "node2:41002", "node2:41003"]


# -- running: logs, metrics, TF_CONFIG ----------------------------------------------------------
def test_two_ranks_logs_metrics_and_tf_config(make_ctx):
    ctx = make_ctx(MPI2, args=["*=sleep:0.5"])
    handle = start(ctx)
    rc, _ = drive(handle, 60)
    assert rc == 0, (ctx.logs_dir / "driver.log").read_text()
    driver = (ctx.logs_dir / "driver.log").read_text()
    assert "[rank 0] worker:0 rank 0 action sleep:0.5" in driver
    assert "[rank 1] worker:1 rank 1 action sleep:0.5" in driver
    for r in (0, 1):
        log = (ctx.logs_dir / f"rank_{r}.log").read_text()
        assert log.startswith(f"worker:{r} rank {r}") and "[rank" not in log
    # each rank's metrics in its own file; rank 1's records carry the rank
    assert handle.metrics_files() == [ctx.logs_dir / "metrics.rank1.jsonl"]
    r0 = json.loads((ctx.logs_dir / "metrics.jsonl").read_text())
    r1 = json.loads((ctx.logs_dir / "metrics.rank1.jsonl").read_text())
    assert "rank" not in r0 and r1["rank"] == 1
    # every rank got the same cluster (the ports the engine chose) and its own index
    state = handle.state()
    ports = [int(m) for m in re.findall(r"listening on (\d+)", driver)]
    assert sorted(ports) == sorted(state["ports"])
    assert handle.failure_detail() is None
    assert_nothing_left(handle)


def test_oversubscribe_when_asked(make_ctx):
    ctx = make_ctx({"kind": "mpi", "process_count_per_node": 3, "node_count": 1},
                   config={"slots": 2, "oversubscribe": True}, args=["*=exit0"])
    handle = start(ctx)
    rc, _ = drive(handle, 60)
    assert rc == 0
    assert log_has(ctx.logs_dir / "driver.log", "[rank 2] worker:2")


# -- failing -------------------------------------------------------------------------------------
def test_a_rank_that_fails_fails_the_run_naming_it(make_ctx):
    ctx = make_ctx(MPI2, args=["worker:1=crash:0.5", "*=serve"])
    handle = start(ctx)
    rc, secs = drive(handle, 60)
    assert rc != 0
    detail = handle.failure_detail()
    assert detail.startswith("rank 1 exited with code 1"), detail
    assert "RuntimeError: boom from worker:1" in detail and "last lines of logs/rank_1.log" in detail
    assert_nothing_left(handle)


def test_a_rank_killed_mid_run_fails_the_run_within_seconds(make_ctx):
    ctx = make_ctx(MPI2, args=["*=serve"])
    handle = start(ctx)
    pid = wait_for(lambda: log_has(ctx.logs_dir / "rank_1.log", "listening")
                   and task_status(ctx.logs_dir, "rank_1").get("pid"), 30, "rank 1 to run")
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    rc, _ = drive(handle, 30)
    assert time.monotonic() - t0 < 6
    assert rc != 0
    assert handle.failure_detail().startswith("rank 1 was killed by signal 9 (SIGKILL)")
    assert_nothing_left(handle)


def test_a_rank_launcher_killed_is_named_from_mpiruns_report(make_ctx):
    ctx = make_ctx(MPI2, args=["*=serve"])
    handle = start(ctx)
    launcher = wait_for(lambda: task_status(ctx.logs_dir, "rank_0").get("launcher_pid")
                        if task_status(ctx.logs_dir, "rank_0").get("pid") else None, 30, "rank 0 to run")
    os.kill(launcher, signal.SIGKILL)
    rc, _ = drive(handle, 30)
    assert rc != 0
    assert handle.failure_detail().startswith("rank 0 was killed by signal 9"), handle.failure_detail()
    assert_nothing_left(handle)


def test_a_rank_that_ignores_tf_config_and_leaves_early(make_ctx):
    ctx = make_ctx(MPI2, args=["worker:1=exit0", "*=serve"], config={"startup_timeout_s": 60})
    handle = start(ctx)
    rc, secs = drive(handle, 40)
    assert rc != 0 and secs < 20
    detail = handle.failure_detail()
    assert detail.startswith("rank 1 exited with code 0 without joining the TensorFlow cluster"), detail
    assert "rank 0 waited for it" in detail
    assert_nothing_left(handle)


def test_the_startup_deadline(make_ctx):
    ctx = make_ctx(MPI2, args=["worker:1=late:60", "*=serve"], config={"startup_timeout_s": 4})
    handle = start(ctx)
    rc, secs = drive(handle, 40)
    assert rc != 0 and secs < 15
    detail = handle.failure_detail()
    assert detail.startswith("rank 1 did not join the TensorFlow cluster within the startup deadline (4 s)"), detail
    assert "startup_timeout_s" in detail
    assert_nothing_left(handle)


def test_jobs_that_do_not_use_tf_config_are_left_to_mpirun(make_ctx):
    # Nobody listens (a Horovod or plain script): the deadline does not apply.
    ctx = make_ctx(MPI2, script="import time\ntime.sleep(3)\n", config={"startup_timeout_s": 1})
    rc, _ = drive(start(ctx), 40)
    assert rc == 0


def test_cancel_in_the_middle_of_startup(make_ctx):
    ctx = make_ctx(MPI2, args=["*=serve"])
    handle = start(ctx)
    time.sleep(0.3)  # mpirun is starting the ranks
    t0 = time.monotonic()
    handle.cancel(grace_seconds=2)
    assert time.monotonic() - t0 < 10
    assert_nothing_left(handle)


def test_cancel_ranks_that_ignore_sigterm_and_sigint(make_ctx):
    ctx = make_ctx(MPI2, args=["*=stubborn"])
    handle = start(ctx)
    wait_for(lambda: log_has(ctx.logs_dir / "rank_0.log", "listening")
             and log_has(ctx.logs_dir / "rank_1.log", "listening"), 30, "both ranks to run")
    t0 = time.monotonic()
    handle.cancel(grace_seconds=1)
    assert time.monotonic() - t0 < 10
    assert_nothing_left(handle)


def test_reattach_finds_the_job_and_its_result(make_ctx):
    ctx = make_ctx(MPI2, args=["*=sleep:3"])
    backend = backend_for(ctx.target, ctx.spec)
    first = backend.launch(ctx)
    again = backend.reattach(ctx, json.loads(json.dumps(first.state())))
    assert again is not None
    rc, _ = drive(again, 60)
    first.popen.wait()
    assert rc == 0
    assert backend.reattach(ctx, first.state()) is None


# -- real TensorFlow -----------------------------------------------------------------------------
@needs_tf
@pytest.mark.slow
def test_mwms_sample_two_ranks_agree_on_the_final_weights(make_ctx):
    ctx = make_ctx(MPI2, script=SAMPLES / "mwms_mnist.py",
                   args=["--data-folder", DATA, "--epochs", "1", "--max-train-samples", "1000",
                         "--first-layer-neurons", "32", "--second-layer-neurons", "16", "--learning-rate", "0.1"])
    handle = start(ctx)
    rc, secs = drive(handle, 240)
    driver = (ctx.logs_dir / "driver.log").read_text()
    assert rc == 0, driver[-3000:]
    digests = {int(r): d for r, d in re.findall(r"\[rank (\d)\] weights sha256 ([0-9a-f]{64})", driver)}
    assert set(digests) == {0, 1} and digests[0] == digests[1]
    checks = {}
    for f, rank in ((ctx.logs_dir / "metrics.jsonl", 0), (ctx.logs_dir / "metrics.rank1.jsonl", 1)):
        recs = [json.loads(line) for line in f.read_text().splitlines()]
        checks[rank] = [r["v"] for r in recs if r.get("n") == "weights_checksum"][0]
        assert [r for r in recs if r.get("n") == "loss"], f"no loss logged by rank {rank}"
        assert all(r.get("rank", 0) == rank for r in recs)
    assert checks[0] == checks[1]
    assert (ctx.outputs_dir / "model" / "model.keras").is_file()
    assert driver.count("] saved ") == 1 and "[rank 0] saved " in driver
    assert_nothing_left(handle)


@needs_tf
@pytest.mark.slow
def test_mwms_rank_killed_mid_training(make_ctx):
    ctx = make_ctx(MPI2, script=SAMPLES / "mwms_mnist.py",
                   args=["--data-folder", DATA, "--epochs", "50", "--first-layer-neurons", "32",
                         "--second-layer-neurons", "16"])
    handle = start(ctx)
    wait_for(lambda: log_has(ctx.logs_dir / "rank_1.log", "epoch 1/50"), 180, "rank 1 to train")
    os.kill(task_status(ctx.logs_dir, "rank_1")["pid"], signal.SIGKILL)
    t0 = time.monotonic()
    rc, _ = drive(handle, 60)
    assert time.monotonic() - t0 < 12
    assert rc != 0
    assert handle.failure_detail().startswith("rank 1 was killed by signal 9 (SIGKILL)")
    assert_nothing_left(handle)
