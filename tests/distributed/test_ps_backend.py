"""The parameter-server backend: 1 ps + 2 workers + chief, with a fake TF script, then real TensorFlow."""
from __future__ import annotations

import json
import os
import signal
import socket
import time

import psutil
import pytest

from dist_helpers import (DATA, PS12, SAMPLES, assert_nothing_left, drive, log_has, needs_tf, task_status,
                          wait_for)
from mltrain_desktop.engine.backends import backend_for
from mltrain_desktop.engine.backends.base import PrepareError

TAGS = ["chief_0", "ps_0", "worker_0", "worker_1"]


def start(ctx):
    backend = backend_for(ctx.target, ctx.spec)
    backend.prepare(ctx)
    return backend.launch(ctx)


def all_serving(ctx):
    return all(log_has(ctx.logs_dir / f"{t}.log", "listening") for t in TAGS)


@pytest.mark.parametrize("dist", [{"kind": "parameter_server", "worker_count": 0, "parameter_server_count": 1},
                                  {"kind": "parameter_server", "worker_count": 1, "parameter_server_count": -1}])
def test_zero_or_negative_counts(make_ctx, dist):
    ctx = make_ctx(dist)
    with pytest.raises(PrepareError, match="at least 1"):
        backend_for(ctx.target, ctx.spec).prepare(ctx)


def test_a_port_already_taken(make_ctx):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        ctx = make_ctx(PS12, config={"base_port": port})
        with pytest.raises(PrepareError, match=f"port {port} for ps 0 is already in use"):
            backend_for(ctx.target, ctx.spec).launch(ctx)


def test_cluster_runs_and_servers_stop_when_the_chief_ends(make_ctx):
    ctx = make_ctx(PS12, args=["chief:0=sleep:2", "*=serve"])
    handle = start(ctx)
    rc, _ = drive(handle, 60)
    assert rc == 0, (ctx.logs_dir / "driver.log").read_text()
    driver = (ctx.logs_dir / "driver.log").read_text()
    for tag in TAGS:
        name = tag.replace("_", " ")
        ttype, index = tag.split("_")
        assert f"[{name}] {ttype}:{index} rank" in driver
        assert (ctx.logs_dir / f"{tag}.log").read_text().startswith(f"{ttype}:{index}")
    assert "[chief 0] chief:0 done" in driver
    # each task's own TF_CONFIG, environment "cloud", one cluster
    assert handle.failure_detail() is None
    assert sorted(p.name for p in handle.metrics_files()) == [
        "metrics.ps0.jsonl", "metrics.worker0.jsonl", "metrics.worker1.jsonl"]
    rec = json.loads((ctx.logs_dir / "metrics.worker1.jsonl").read_text())
    assert rec["rank"] == 2
    assert "rank" not in json.loads((ctx.logs_dir / "metrics.jsonl").read_text())
    assert_nothing_left(handle)


def test_the_chief_crashing_while_ps_tasks_run(make_ctx):
    ctx = make_ctx(PS12, args=["chief:0=crash:1", "*=serve"])
    handle = start(ctx)
    rc, _ = drive(handle, 60)
    assert rc == 1
    detail = handle.failure_detail()
    assert detail.startswith("chief 0 exited with code 1"), detail
    assert "RuntimeError: boom from chief:0" in detail and "ps 0" in detail
    assert_nothing_left(handle)


def test_a_worker_killed_fails_the_run_naming_it(make_ctx):
    ctx = make_ctx(PS12, args=["chief:0=sleep:60", "*=serve"])
    handle = start(ctx)
    wait_for(lambda: all_serving(ctx), 40, "the cluster to serve")
    os.kill(task_status(ctx.logs_dir, "worker_1")["pid"], signal.SIGKILL)
    t0 = time.monotonic()
    rc, _ = drive(handle, 30)
    assert time.monotonic() - t0 < 5
    assert rc != 0
    assert handle.failure_detail().startswith("worker 1 was killed by signal 9 (SIGKILL)"), handle.failure_detail()
    assert_nothing_left(handle)


def test_a_worker_that_ignores_tf_config_and_leaves(make_ctx):
    ctx = make_ctx(PS12, args=["worker:0=exit0", "chief:0=sleep:60", "*=serve"])
    handle = start(ctx)
    rc, secs = drive(handle, 30)
    assert rc != 0 and secs < 20
    detail = handle.failure_detail()
    assert detail.startswith("worker 0 exited with code 0; before the chief finished"), detail
    assert_nothing_left(handle)


def test_the_startup_deadline(make_ctx):
    ctx = make_ctx(PS12, args=["ps:0=late:60", "chief:0=sleep:60", "*=serve"], config={"startup_timeout_s": 4})
    handle = start(ctx)
    rc, secs = drive(handle, 40)
    assert rc != 0 and secs < 15
    detail = handle.failure_detail()
    assert detail.startswith("ps 0 did not start serving within the startup deadline (4 s)"), detail
    assert_nothing_left(handle)


def test_stubborn_servers_are_killed_when_the_chief_ends(make_ctx):
    ctx = make_ctx(PS12, args=["chief:0=sleep:3", "*=stubborn"])
    handle = start(ctx)
    rc, secs = drive(handle, 60)
    assert rc == 0
    assert_nothing_left(handle)


def test_cancel_in_the_middle_of_startup(make_ctx):
    ctx = make_ctx(PS12)
    handle = start(ctx)
    time.sleep(0.2)
    t0 = time.monotonic()
    handle.cancel(grace_seconds=2)
    assert time.monotonic() - t0 < 10
    assert_nothing_left(handle)


def test_servers_stop_by_themselves_when_the_chief_dies_unwatched(make_ctx):
    """Even with no supervisor polling (it crashed), no ps/worker task outlives the chief."""
    ctx = make_ctx(PS12, args=["chief:0=sleep:60", "*=serve"])
    handle = start(ctx)
    wait_for(lambda: all_serving(ctx), 40, "the cluster to serve")
    chief = handle.state()["tasks"][0]
    assert chief["tag"] == "chief_0"
    psutil.Process(chief["pid"]).kill()  # the chief's launcher: its script dies with it
    handle.popens["chief_0"].wait()
    servers = [t["pid"] for t in handle.state()["tasks"][1:]]
    wait_for(lambda: all(handle.popens[t].poll() is not None for t in TAGS[1:]), 8, "the servers to stop")
    assert_nothing_left(handle)
    assert servers


def test_reattach(make_ctx):
    ctx = make_ctx(PS12, args=["chief:0=sleep:3", "*=serve"])
    backend = backend_for(ctx.target, ctx.spec)
    first = backend.launch(ctx)
    again = backend.reattach(ctx, json.loads(json.dumps(first.state())))
    rc, _ = drive(again, 60)
    assert rc == 0
    for p in first.popens.values():
        p.wait(timeout=10)
    assert_nothing_left(first)
    assert backend.reattach(ctx, first.state()) is None


# -- real TensorFlow -----------------------------------------------------------------------------
PS_ARGS = ["--data-folder", DATA, "--epochs", "1", "--first-layer-neurons", "32", "--second-layer-neurons", "16",
           "--learning-rate", "0.1", "--max-train-samples", "1000"]


@needs_tf
@pytest.mark.slow
def test_ps_sample_trains_and_leaves_no_ps_task(make_ctx):
    ctx = make_ctx(PS12, script=SAMPLES / "ps_mnist.py", args=PS_ARGS)
    handle = start(ctx)
    rc, _ = drive(handle, 240)
    driver = (ctx.logs_dir / "driver.log").read_text()
    assert rc == 0, driver[-3000:]
    assert "[ps 0] ps 0: serving at grpc://127.0.0.1:" in driver
    assert "[chief 0] test accuracy" in driver
    losses = [json.loads(line) for line in (ctx.logs_dir / "metrics.jsonl").read_text().splitlines()]
    assert len([r for r in losses if r.get("n") == "loss"]) == 20
    assert (ctx.outputs_dir / "model" / "model.keras").is_file()
    assert_nothing_left(handle)


@needs_tf
@pytest.mark.slow
def test_ps_worker_killed_mid_training(make_ctx):
    ctx = make_ctx(PS12, script=SAMPLES / "ps_mnist.py", args=[*PS_ARGS[:2], "--epochs", "200"])
    handle = start(ctx)
    wait_for(lambda: log_has(ctx.logs_dir / "chief_0.log", "training 200 epoch"), 180, "the chief to train")
    os.kill(task_status(ctx.logs_dir, "worker_0")["pid"], signal.SIGKILL)
    t0 = time.monotonic()
    rc, _ = drive(handle, 60)
    assert time.monotonic() - t0 < 8
    assert rc != 0
    assert handle.failure_detail().startswith("worker 0 was killed by signal 9 (SIGKILL)")
    assert_nothing_left(handle)
