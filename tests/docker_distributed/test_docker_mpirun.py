"""MPI through mpirun over SSH on a Docker target (``mpi_launcher="mpirun"``), against a real engine:
node containers running sshd, a launcher container running Open MPI's mpirun, the TensorFlow
stand-in on the small base image (plus its OpenSSH + Open MPI layer, built once)."""
from __future__ import annotations

import os
import subprocess
import time

import pytest

from dc_helpers import (cluster_ctx, drive, first_supervisor, log_has, run_containers, run_networks,
                        wait_for)
from docker_helpers import BASE_IMAGE
from mltrain_desktop.adapters.docker.engine import validate
from mltrain_desktop.adapters.docker.mpi_image import ensure_mpi_image, mpi_image_tag
from mltrain_desktop.domain.errors import PrepareError
from mltrain_desktop.engine import rank_launcher as rl
from mltrain_desktop.engine.backends import backend_for
from mltrain_desktop.engine.backends import docker_mpirun_specs as ms
from mltrain_desktop.engine.backends.docker_cluster import network_name

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftovers")]

OVER_SSH = {"mpi_launcher": "mpirun"}


def mpi(nodes: int, per_node: int) -> dict:
    return {"kind": "mpi", "node_count": nodes, "process_count_per_node": per_node}


def start(ctx, uid=None, gid=None):
    backend = backend_for(ctx.target, ctx.spec)
    if uid is not None:
        backend.uid, backend.gid = uid, gid
    backend.prepare(ctx)
    return backend, backend.launch(ctx)


def gone(docker_api, run_id):
    return not run_containers(docker_api, run_id) and not run_networks(docker_api, run_id)


def driver_log(ctx) -> str:
    return (ctx.logs_dir / "driver.log").read_text()


def test_two_nodes_run_their_ranks_through_mpirun_over_ssh(docker_api, tmp_path):
    ctx = cluster_ctx(tmp_path, mpi(2, 2), args=["*=probe:0.5"], config=OVER_SSH)
    backend, handle = start(ctx)
    state = handle.state()
    assert state["kind"] == "docker_mpirun"
    assert [t["tag"] for t in state["tasks"]] == ["node-0", "node-1", "mpirun"]
    assert state["rank_nodes"] == [0, 0, 1, 1] and state["ports"] == [2222, 2223, 2222, 2223]
    for t in state["tasks"]:
        info = docker_api.inspect_container(t["container_id"])
        assert list(info["NetworkSettings"]["Networks"]) == [network_name(ctx.run_id)]
        assert not info["HostConfig"]["PortBindings"]  # sshd is reachable on the run's network only
        assert info["HostConfig"]["SecurityOpt"] == ["no-new-privileges"] and info["HostConfig"]["Init"] is True
        assert info["Config"]["Image"].startswith("mltrain-mpi:")
    rc, _ = drive(handle, 90)
    log = driver_log(ctx)
    assert rc == 0, log[-3000:]
    assert "every node answers SSH" in log
    node0, node1 = ms.node_name(ctx.run_id, 0), ms.node_name(ctx.run_id, 1)
    # every rank reached every other rank's TF_CONFIG address, across the two nodes
    assert f"[rank 0] worker:0 reached {node1}:2222" in log and f"[rank 3] worker:3 reached {node0}:2222" in log
    records = rl.read_statuses(ctx.logs_dir)
    assert {r: records[f"rank_{r}"]["host"] for r in range(4)} == {0: node0, 1: node0, 2: node1, 3: node1}
    assert {records[f"rank_{r}"]["node"] for r in range(4)} == {node0, node1}
    assert all(records[f"rank_{r}"]["exit_code"] == 0 for r in range(4))
    assert "mpirun --allow-run-as-root -np 4 --host " + f"{node0}:2,{node1}:2" in log or os.geteuid() != 0
    assert handle.metrics_files() == [rl.metrics_file(ctx.logs_dir, f"rank_{r}") for r in (1, 2, 3)]
    assert gone(docker_api, ctx.run_id)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand the run folder to another user")
def test_sshd_and_the_ranks_run_as_the_users_uid(docker_api, tmp_path):
    ctx = cluster_ctx(tmp_path, mpi(2, 1), args=["*=probe:0.2"], config=OVER_SSH)
    for name in ("metrics.jsonl", "driver.log"):  # the files this test's root process appends to
        (ctx.logs_dir / name).touch()
    for root, dirs, files in os.walk(tmp_path / "ws"):
        for name in [root] + [os.path.join(root, n) for n in dirs + files]:
            os.lchown(name, 4321, 4322)
    _, handle = start(ctx, uid=4321, gid=4322)
    for t in handle.state()["tasks"]:
        assert docker_api.inspect_container(t["container_id"])["Config"]["User"] == "4321:4322"
    rc, _ = drive(handle, 90)
    log = driver_log(ctx)
    assert rc == 0, log[-3000:]
    assert "--allow-run-as-root" not in log
    assert f"[rank 1] worker:1 reached {ms.node_name(ctx.run_id, 0)}:2222" in log
    st = rl.status_file(ctx.logs_dir, "rank_1").stat()
    assert (st.st_uid, st.st_gid) == (4321, 4322)
    assert gone(docker_api, ctx.run_id)


def test_a_rank_that_fails_fails_the_run_naming_it(docker_api, tmp_path):
    ctx = cluster_ctx(tmp_path, mpi(2, 1), args=["worker:1=crash:1", "*=serve"], config=OVER_SSH)
    _, handle = start(ctx)
    rc, secs = drive(handle, 90)
    assert rc == 1
    detail = handle.failure_detail()
    assert detail.startswith("rank 1 exited with code 1; the other rank(s) were stopped"), detail
    assert "RuntimeError: boom from worker:1" in detail
    assert gone(docker_api, ctx.run_id)


def test_a_node_lost_mid_run_fails_the_run_naming_the_node_and_its_ranks(docker_api, tmp_path):
    ctx = cluster_ctx(tmp_path, mpi(2, 1), args=["*=stubborn"], config=OVER_SSH)
    _, handle = start(ctx)
    wait_for(lambda: all(log_has(ctx.logs_dir / f"rank_{r}.log", "listening") for r in (0, 1)), 90,
             "both ranks to listen")
    node1 = ms.node_name(ctx.run_id, 1)
    subprocess.run(["docker", "kill", node1], check=True, capture_output=True)
    t0 = time.monotonic()
    rc, _ = drive(handle, 30)
    took = time.monotonic() - t0
    assert rc == 137
    detail = handle.failure_detail()
    assert detail.startswith(f"node {node1} (rank 1) was lost mid-run: its container was killed by signal 9 "
                             f"(SIGKILL) (container {node1}, exit code 137; stopped from outside"), detail
    assert "the engine stopped mpirun and the other nodes" in detail
    assert "last lines of logs/rank_1.log:" in detail and "worker:1 listening on 2222" in detail
    assert took < 10, took  # rank 0 ignores SIGTERM: the engine's own bound ends it
    assert gone(docker_api, ctx.run_id)


def test_cancel_stops_every_node_and_the_launcher(docker_api, tmp_path):
    ctx = cluster_ctx(tmp_path, mpi(2, 1), args=["*=stubborn"], config=OVER_SSH)
    _, handle = start(ctx)
    wait_for(lambda: log_has(ctx.logs_dir / "rank_1.log", "listening"), 90, "rank 1 to listen")
    t0 = time.monotonic()
    handle.cancel(grace_seconds=1)
    assert time.monotonic() - t0 < 15
    assert gone(docker_api, ctx.run_id)
    handle.cancel(grace_seconds=1)  # idempotent


def test_a_new_supervisor_reattaches_and_the_logs_continue(docker_api, tmp_path):
    ctx = cluster_ctx(tmp_path, mpi(2, 1), args=["*=sleep:6"], config=OVER_SSH)
    proc, state = first_supervisor(tmp_path, ctx, mpi(2, 1), ["*=sleep:6"], OVER_SSH)  # killed below
    wait_for(lambda: all(log_has(ctx.logs_dir / f"rank_{r}.log", "listening") for r in (0, 1)), 90,
             "the ranks to run")
    proc.kill()
    proc.wait()
    handle = backend_for(ctx.target, ctx.spec).reattach(ctx, state)
    assert type(handle).__name__ == "DockerMpirunHandle"
    rc, _ = drive(handle, 60)
    assert rc == 0, driver_log(ctx)[-3000:]
    lines = driver_log(ctx).splitlines()
    for r in (0, 1):
        assert lines.count(f"[rank {r}] worker:{r} listening on 2222") == 1
        assert lines.count(f"[rank {r}] worker:{r} done") == 1
    assert gone(docker_api, ctx.run_id)


def test_the_startup_deadline_names_the_rank_that_never_joined(docker_api, tmp_path):
    ctx = cluster_ctx(tmp_path, mpi(2, 1), args=["worker:1=late:120", "*=serve"],
                      config={**OVER_SSH, "startup_timeout_s": 8})
    _, handle = start(ctx)
    rc, secs = drive(handle, 60)
    assert rc == 1
    detail = handle.failure_detail()
    assert detail.startswith("rank 1 did not join the TensorFlow cluster within the startup deadline (8 s)"), detail
    assert f"no listener on {ms.node_name(ctx.run_id, 1)}:2222" in detail
    assert gone(docker_api, ctx.run_id)


def test_a_node_that_never_answers_ssh_is_named_by_the_launcher(docker_api, tmp_path):
    """The launcher's own wait, run for real with a node name nothing answers to."""
    ctx = cluster_ctx(tmp_path, mpi(1, 1), config=OVER_SSH)
    backend = backend_for(ctx.target, ctx.spec)
    backend.prepare(ctx)
    kwargs = ms.launcher_container_kwargs(ctx, backend.image, [ms.mc.HostSlots("mltrain-no-such-node", 1)],
                                          token="t", config=backend.config, ssh_wait_s=2)
    kwargs.pop("network")
    from mltrain_desktop.adapters.docker.engine import client_over
    container = client_over(docker_api).containers.create(**kwargs)
    try:
        container.start()
        assert container.wait(timeout=60)["StatusCode"] == ms.SSH_WAIT_EXIT
        out = container.logs().decode()
    finally:
        container.remove(force=True)
    assert "[mltrain] node mltrain-no-such-node did not answer SSH within 2 s" in out, out
    assert "Could not resolve hostname" in out, out


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["ssh", "MPIRUN", 1])
def test_an_unknown_mpi_launcher_is_refused_with_the_choices(value):
    with pytest.raises(ValueError, match=r"mpi_launcher .* must be 'containers' .* or 'mpirun'"):
        validate({"mpi_launcher": value})


@pytest.mark.parametrize("value", ["--mca btl tcp", [1, 2]])
def test_mpirun_args_must_be_a_list_of_strings(value):
    with pytest.raises(ValueError, match="mpirun_args must be a list of strings"):
        validate({"mpirun_args": value})


def test_an_image_with_neither_apt_nor_the_tools_is_refused_saying_what_it_needs(docker_api, tmp_path):
    tag = "mltrain-test-no-apt:1"
    cid = docker_api.create_container(BASE_IMAGE, command=["rm", "-f", "/usr/bin/apt-get"], user="0:0")["Id"]
    try:
        docker_api.start(cid)
        docker_api.wait(cid, timeout=60)
        docker_api.commit(cid, repository="mltrain-test-no-apt", tag="1")
    finally:
        docker_api.remove_container(cid, force=True)
    lines = []
    try:
        with pytest.raises(PrepareError) as err:
            ensure_mpi_image(docker_api, tag, log=lines.append)
        msg = str(err.value)
        assert "exit code 3" in msg and "the image has no apt-get" in msg
        assert "use a Debian/Ubuntu-based image, or one with openssh-server and Open MPI installed" in msg
        base_id = docker_api.inspect_image(tag)["Id"]
        assert not docker_api.images(name=mpi_image_tag(base_id, os.getuid(), os.getgid()))  # nothing half-built
    finally:
        docker_api.remove_image(tag, force=True)


def test_the_mpi_layer_is_built_once_and_then_found(docker_api, tmp_path):
    lines = []
    first = ensure_mpi_image(docker_api, BASE_IMAGE, log=lines.append)
    again = ensure_mpi_image(docker_api, BASE_IMAGE, log=lines.append)
    assert first == again and first.startswith("mltrain-mpi:")
    assert f"[mltrain] MPI layer {first} found in cache" in lines[-1]
    probe = docker_api.create_container(first, entrypoint=[
        "sh", "-c", "for t in sshd ssh ssh-keygen mpirun orted; do command -v $t || exit 1; done"])
    try:
        docker_api.start(probe)
        assert docker_api.wait(probe, timeout=60)["StatusCode"] == 0
        assert len(docker_api.logs(probe).decode().split()) == 5
    finally:
        docker_api.remove_container(probe, force=True)
