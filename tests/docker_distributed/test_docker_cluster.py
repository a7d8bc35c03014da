"""The Docker cluster backends driven directly (a JobContext made by hand), against a real engine,
with a TensorFlow stand-in on the small base image: one container per rank or task, a network
per run, failures named, nothing left behind."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from dc_helpers import (MPI2, PS12, PS_TAGS, cluster_ctx, drive, first_supervisor, log_has, run_containers,
                        run_networks, wait_for)
from mltrain_desktop.engine import rank_launcher as rl
from mltrain_desktop.engine.backends import backend_for
from mltrain_desktop.engine.backends.docker_cluster import (clean_orphan_networks, network_name,
                                                            task_container_name)

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftovers")]


def start(ctx):
    backend = backend_for(ctx.target, ctx.spec)
    backend.prepare(ctx)
    return backend, backend.launch(ctx)


def all_listening(ctx, tags):
    return all(log_has(ctx.logs_dir / f"{t}.log", "listening") for t in tags)


def gone(docker_api, run_id):
    return not run_containers(docker_api, run_id) and not run_networks(docker_api, run_id)


def test_a_parameter_server_cluster_runs_one_container_per_task(docker_api, tmp_path):
    ctx = cluster_ctx(tmp_path, PS12, args=["chief:0=probe:1", "*=serve"])
    backend, handle = start(ctx)
    state = handle.state()
    assert [t["tag"] for t in state["tasks"]] == PS_TAGS
    # while it runs: the run's own network, one labelled container per task on it, named by task
    net = docker_api.inspect_network(state["network_id"])
    assert net["Name"] == network_name(ctx.run_id) and net["Driver"] == "bridge"
    assert net["Labels"]["mltrain.run"] == ctx.run_id and net["Labels"]["mltrain.role"] == "network"
    for t in state["tasks"]:
        info = docker_api.inspect_container(t["container_id"])
        assert info["Name"] == "/" + task_container_name(ctx.run_id, t["tag"])
        assert info["Config"]["Labels"]["mltrain.task"] == t["tag"].replace("_", ":")
        assert list(info["NetworkSettings"]["Networks"]) == [network_name(ctx.run_id)]
        assert info["HostConfig"]["Init"] is True and not info["HostConfig"]["PortBindings"]
        # the adapter's hardened builder and label namespace, as for a job's or an endpoint's container
        assert info["HostConfig"]["SecurityOpt"] == ["no-new-privileges"] and not info["HostConfig"]["Privileged"]
        assert info["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "100m", "max-file": "3"}}
        assert info["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
        assert info["Config"]["Labels"]["mltrain.owner.kind"] == "run"
        assert info["Config"]["Labels"]["mltrain.owner.id"] == ctx.run_id
    rc, _ = drive(handle, 90)
    driver = (ctx.logs_dir / "driver.log").read_text()
    assert rc == 0, driver
    # the chief reached every other task by its container name on the run's network
    for tag in PS_TAGS[:-1]:
        assert f"[chief 0] chief:0 reached {task_container_name(ctx.run_id, tag)}:2222" in driver
    # one log per task, unprefixed; the combined log prefixes each line with its task
    for tag in PS_TAGS:
        ttype, index = tag.split("_")
        assert f"[{ttype} {index}] {ttype}:{index} rank" in driver
        own = (ctx.logs_dir / f"{tag}.log").read_text()
        assert own.startswith(f"{ttype}:{index} rank") and f"host {task_container_name(ctx.run_id, tag)}" in own
        assert rl.read_statuses(ctx.logs_dir)[tag]["started"]
    assert "[chief 0] chief:0 done" in driver
    # metrics from every task, tagged with it
    assert sorted(p.name for p in handle.metrics_files()) == [
        "metrics.ps0.jsonl", "metrics.worker0.jsonl", "metrics.worker1.jsonl"]
    assert json.loads((ctx.logs_dir / "metrics.worker1.jsonl").read_text().splitlines()[0])["rank"] == 2
    assert json.loads((ctx.logs_dir / "metrics.ps0.jsonl").read_text().splitlines()[0])["rank"] == 3
    chief = [json.loads(line) for line in (ctx.logs_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["n"] for r in chief} >= {"started", "reached", "docker.network", "docker.containers"}
    assert all("rank" not in r for r in chief)
    assert handle.failure_detail() is None
    assert gone(docker_api, ctx.run_id)


def test_an_mpi_job_runs_one_container_per_rank_with_tf_config(docker_api, tmp_path):
    ctx = cluster_ctx(tmp_path, MPI2, args=["*=probe:0.5"])
    _, handle = start(ctx)
    rc, _ = drive(handle, 90)
    driver = (ctx.logs_dir / "driver.log").read_text()
    assert rc == 0, driver
    assert f"[rank 0] worker:0 reached {task_container_name(ctx.run_id, 'rank_1')}:2222" in driver
    assert f"[rank 1] worker:1 reached {task_container_name(ctx.run_id, 'rank_0')}:2222" in driver
    assert "[rank 1] worker:1 rank 1 task rank 1" in driver
    assert [p.name for p in handle.metrics_files()] == ["metrics.rank1.jsonl"]
    assert json.loads((ctx.logs_dir / "metrics.rank1.jsonl").read_text().splitlines()[0])["rank"] == 1
    assert (ctx.logs_dir / "rank_0.log").is_file() and (ctx.logs_dir / "rank_1.log").is_file()
    assert gone(docker_api, ctx.run_id)


def test_a_rank_that_fails_fails_the_run_naming_it_its_code_and_last_lines(docker_api, tmp_path):
    ctx = cluster_ctx(tmp_path, MPI2, args=["worker:1=crash:1", "*=serve"])
    _, handle = start(ctx)
    rc, _ = drive(handle, 60)
    assert rc == 1
    detail = handle.failure_detail()
    assert detail.startswith(f"rank 1 exited with code 1 (container {task_container_name(ctx.run_id, 'rank_1')}); "
                             "the engine stopped rank 0"), detail
    assert "last lines of logs/rank_1.log:" in detail and "RuntimeError: boom from worker:1" in detail
    assert gone(docker_api, ctx.run_id)


def test_a_killed_container_fails_the_run_within_seconds(docker_api, tmp_path):
    ctx = cluster_ctx(tmp_path, PS12, args=["chief:0=sleep:120", "*=stubborn"])
    _, handle = start(ctx)
    wait_for(lambda: all_listening(ctx, PS_TAGS), 60, "the cluster to serve")
    victim = handle.state()["tasks"][2]
    assert victim["tag"] == "worker_1"
    subprocess.run(["docker", "kill", victim["container_name"]], check=True, capture_output=True)
    t0 = time.monotonic()
    rc, _ = drive(handle, 30)
    took = time.monotonic() - t0
    assert rc == 137
    detail = handle.failure_detail()
    assert detail.startswith("worker 1 was killed by signal 9 (SIGKILL) (container "
                             f"{victim['container_name']}, exit code 137; stopped from outside"), detail
    assert "the engine stopped ps 0, worker 0, chief 0" in detail
    assert "last lines of logs/worker_1.log:" in detail and "worker:1 listening on 2222" in detail
    # the others ignore SIGTERM and SIGINT: the engine's own bound still ends them
    assert took < 8, took
    assert gone(docker_api, ctx.run_id)


def test_a_task_out_of_memory_is_named_with_its_limit(docker_api, tmp_path):
    ctx = cluster_ctx(tmp_path, MPI2, args=["worker:1=hog", "*=serve"], config={"memory_gb": 0.25})
    _, handle = start(ctx)
    rc, _ = drive(handle, 60)
    assert rc == 137
    detail = handle.failure_detail()
    assert detail.startswith(f"rank 1 ran out of memory and was killed (container "
                             f"{task_container_name(ctx.run_id, 'rank_1')}, exit code 137, memory limit 0.25 GiB)"), detail
    assert gone(docker_api, ctx.run_id)


def test_cancel_stops_every_container_and_removes_the_network(docker_api, tmp_path):
    ctx = cluster_ctx(tmp_path, MPI2, args=["*=stubborn"])
    _, handle = start(ctx)
    wait_for(lambda: all_listening(ctx, ["rank_0", "rank_1"]), 60, "the ranks to listen")
    t0 = time.monotonic()
    handle.cancel(grace_seconds=1)
    assert time.monotonic() - t0 < 10
    assert gone(docker_api, ctx.run_id)
    handle.cancel(grace_seconds=1)  # idempotent


def test_a_ps_task_that_leaves_before_the_chief(docker_api, tmp_path):
    ctx = cluster_ctx(tmp_path, PS12, args=["worker:0=exit0", "chief:0=sleep:60", "*=serve"])
    _, handle = start(ctx)
    rc, secs = drive(handle, 60)
    assert rc == 1 and secs < 30
    detail = handle.failure_detail()
    assert detail.startswith("worker 0 exited with code 0 (container "), detail
    assert "before the chief finished" in detail
    assert gone(docker_api, ctx.run_id)


def test_the_startup_deadline(docker_api, tmp_path):
    ctx = cluster_ctx(tmp_path, PS12, args=["ps:0=late:60", "chief:0=sleep:60", "*=serve"],
                      config={"startup_timeout_s": 5})
    _, handle = start(ctx)
    rc, secs = drive(handle, 60)
    assert rc == 1 and secs < 20
    detail = handle.failure_detail()
    assert detail.startswith("ps 0 did not start serving within the startup deadline (5 s)"), detail
    assert f"no listener on {task_container_name(ctx.run_id, 'ps_0')}:2222" in detail
    assert gone(docker_api, ctx.run_id)


def test_a_rank_that_leaves_without_joining_while_the_other_waits(docker_api, tmp_path):
    ctx = cluster_ctx(tmp_path, MPI2, args=["worker:1=exit0", "*=stubborn"])
    _, handle = start(ctx)
    rc, secs = drive(handle, 60)
    assert rc == 1 and secs < 30
    assert handle.failure_detail().startswith("rank 1 exited with code 0 without joining the TensorFlow cluster")
    assert gone(docker_api, ctx.run_id)


def test_a_new_supervisor_reattaches_and_the_logs_continue(docker_api, tmp_path):
    ctx = cluster_ctx(tmp_path, MPI2, args=["*=sleep:6"])
    proc, state = first_supervisor(tmp_path, ctx, MPI2, ["*=sleep:6"])  # killed below
    wait_for(lambda: all_listening(ctx, ["rank_0", "rank_1"]), 60, "the ranks to run")
    proc.kill()
    proc.wait()
    handle = backend_for(ctx.target, ctx.spec).reattach(ctx, state)
    assert handle is not None
    rc, _ = drive(handle, 60)
    assert rc == 0
    lines = (ctx.logs_dir / "driver.log").read_text().splitlines()
    for r in (0, 1):
        assert lines.count(f"[rank {r}] worker:{r} listening on 2222") == 1
        assert lines.count(f"[rank {r}] worker:{r} done") == 1
    assert gone(docker_api, ctx.run_id)


def test_reattach_when_the_containers_are_gone_removes_the_network(docker_api, tmp_path):
    ctx = cluster_ctx(tmp_path, MPI2, args=["*=serve"])
    backend, handle = start(ctx)
    state = handle.state()
    for t in state["tasks"]:
        docker_api.remove_container(t["container_id"], force=True)
    assert backend_for(ctx.target, ctx.spec).reattach(ctx, state) is None
    assert any("are gone" in line for line in ctx.lines)
    assert gone(docker_api, ctx.run_id)
    # a handle that was watching them sees them vanish
    rc, _ = drive(handle, 30)
    assert rc == -1 and "was removed while the run was going on" in handle.failure_detail()


def test_clean_orphan_networks_removes_only_those_of_finished_runs(docker_api, tmp_path):
    ws = (tmp_path / "ws").resolve()
    ids = {}
    for run in ("done_1", "live_1"):
        ids[run] = docker_api.create_network(
            f"mltrain-test-{run.replace('_', '-')}-{os.getpid()}", driver="bridge",
            labels={"mltrain.workspace": str(ws), "mltrain.run": run, "mltrain.role": "network"})["Id"]
    c = docker_api.create_container("mltrain-base:bookworm-py311", ["sleep", "60"],
                                    labels={"mltrain.workspace": str(ws), "mltrain.run": "done_1"},
                                    host_config=docker_api.create_host_config(network_mode=f"mltrain-test-done-1-{os.getpid()}"))
    docker_api.start(c["Id"])
    removed = clean_orphan_networks(ws, ["live_1"], api=docker_api)
    assert removed == [f"mltrain-test-done-1-{os.getpid()}"]
    assert [n["Id"] for n in docker_api.networks(filters={"label": f"mltrain.workspace={ws}"})] == [ids["live_1"]]
    assert clean_orphan_networks(ws, [], api=docker_api) == [f"mltrain-test-live-1-{os.getpid()}"]


def test_clean_orphan_networks_leaves_what_no_finished_run_owns(docker_api, tmp_path):
    """A network of the workspace with no owner, or an endpoint's, stays; and so does an endpoint's container
    on a finished run's network (the network then too, until that container is gone)."""
    ws = (tmp_path / "ws").resolve()
    pid = os.getpid()
    endpoint = {"mltrain.workspace": str(ws), "mltrain.owner.kind": "endpoint", "mltrain.owner.id": "ep1",
                "mltrain.endpoint": "ep1"}
    names = {"unowned": f"mltrain-test-unowned-{pid}", "endpoint": f"mltrain-test-ep-{pid}",
             "done": f"mltrain-test-done-2-{pid}"}
    labels = {"unowned": {"mltrain.workspace": str(ws)}, "endpoint": endpoint,
              "done": {"mltrain.workspace": str(ws), "mltrain.owner.kind": "run", "mltrain.owner.id": "done_2",
                       "mltrain.run": "done_2", "mltrain.role": "network"}}
    ids = {k: docker_api.create_network(names[k], driver="bridge", labels=labels[k])["Id"] for k in names}
    c = docker_api.create_container("mltrain-base:bookworm-py311", ["sleep", "60"], labels=endpoint,
                                    host_config=docker_api.create_host_config(network_mode=names["done"]))
    try:
        docker_api.start(c["Id"])
        assert clean_orphan_networks(ws, [], api=docker_api) == []
        assert docker_api.inspect_container(c["Id"])["State"]["Running"]
        assert {n["Id"] for n in docker_api.networks(filters={"label": f"mltrain.workspace={ws}"})} == set(ids.values())
        docker_api.remove_container(c["Id"], force=True)
        assert clean_orphan_networks(ws, [], api=docker_api) == [names["done"]]
        assert {n["Id"] for n in docker_api.networks(filters={"label": f"mltrain.workspace={ws}"})} == {
            ids["unowned"], ids["endpoint"]}
    finally:
        try:
            docker_api.remove_container(c["Id"], force=True)
        except Exception:  # noqa: BLE001 - already removed by the test
            pass
        for net in ids.values():
            try:
                docker_api.remove_network(net)
            except Exception:  # noqa: BLE001 - already removed by the clean-up
                pass
