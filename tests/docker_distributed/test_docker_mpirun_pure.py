"""mpirun over SSH on a Docker target, as values: node and launcher containers, the mpirun command,
the TF_CONFIG workers and the MPI image layer (no engine)."""
from __future__ import annotations

import json
import re
import shlex

import pytest

from dc_helpers import cluster_ctx
from mltrain_desktop.adapters import mpirun as mc
from mltrain_desktop.adapters.docker.mpi_image import mpi_dockerfile, mpi_image_tag
from mltrain_desktop.engine import rank_launcher as rl
from mltrain_desktop.engine.backends import backend_for
from mltrain_desktop.engine.backends import docker_mpirun_specs as ms
from mltrain_desktop.engine.backends.docker_cluster import DockerMpiBackend, network_name

HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
DIST = {"kind": "mpi", "node_count": 2, "process_count_per_node": 2}


@pytest.fixture
def ctx(tmp_path):
    return cluster_ctx(tmp_path, DIST, args=["--epochs", "1"], config={"mpi_launcher": "mpirun"})


@pytest.mark.parametrize("run_id", ["exp_1_r1", "Tëst run/1", "a" * 200])
def test_node_and_launcher_names_are_host_names(run_id):
    for name in (ms.node_name(run_id, 0), ms.node_name(run_id, 15), ms.launcher_name(run_id)):
        assert HOSTNAME.match(name) and len(name) <= 63, name
        assert name.startswith(network_name(run_id) + "-")


def test_ranks_fill_the_nodes_in_order_each_on_its_own_port():
    nodes = ms.nodes_plan("r", 3, 2)
    assert [str(n) for n in nodes] == ["mltrain-r-node-0:2", "mltrain-r-node-1:2", "mltrain-r-node-2:2"]
    assert ms.rank_nodes(nodes) == [0, 0, 1, 1, 2, 2] == [int(h[-1]) for h in mc.rank_hosts(nodes)]
    assert ms.rank_ports(nodes) == [2222, 2223] * 3
    assert ms.cluster_spec(nodes)["worker"] == [
        "mltrain-r-node-0:2222", "mltrain-r-node-0:2223", "mltrain-r-node-1:2222", "mltrain-r-node-1:2223",
        "mltrain-r-node-2:2222", "mltrain-r-node-2:2223"]


def test_the_node_container_runs_sshd_on_the_runs_network_only(ctx):
    kw = ms.node_container_kwargs(ctx, "img", 1, uid=1000, gid=1000, config=ctx.target["config"])
    assert kw["name"] == kw["hostname"] == ms.node_name(ctx.run_id, 1)
    assert kw["network"] == network_name(ctx.run_id) and "network_mode" not in kw and "ports" not in kw
    assert kw["user"] == "1000:1000" and kw["security_opt"] == ["no-new-privileges"] and kw["init"] is True
    assert kw["labels"]["mltrain.task"] == "node:1" and kw["labels"]["mltrain.run"] == ctx.run_id
    script = kw["entrypoint"][2]
    assert "exec /usr/sbin/sshd -D -e" in script and f"-p {ms.SSH_PORT}" in script
    assert f"AuthorizedKeysFile=/mltrain/run/{ms.SSH_DIR}/authorized_keys" in script
    assert "PasswordAuthentication=no" in script and "UsePAM=no" in script
    assert kw["command"] == []


def test_the_launcher_runs_mpirun_over_ssh_with_every_variable_forwarded(ctx):
    nodes = ms.nodes_plan(ctx.run_id, 2, 2)
    kw = ms.launcher_container_kwargs(ctx, "img", nodes, token="tok", image_env=["PATH=/usr/bin", "LANG=C.UTF-8",
                                                                               "HOSTNAME=x"],
                                      uid=1000, gid=1000, config={"mpirun_args": ["--mca", "btl", "tcp,self"]},
                                      ssh_wait_s=30)
    argv = kw["command"]
    assert argv[:6] == ["mpirun", "-np", "4", "--host", ",".join(str(n) for n in nodes), "--map-by"]
    assert "--allow-run-as-root" not in argv  # uid 1000
    assert argv[argv.index("--wdir") + 1] == "/mltrain/run/snapshot"
    ssh = shlex.split(argv[argv.index("plm_rsh_args") + 1])
    assert ssh[:4] == ["-p", str(ms.SSH_PORT), "-i", ms.CLIENT_KEY] and "BatchMode=yes" in ssh
    forwarded = [argv[i + 1] for i, a in enumerate(argv) if a == "-x"]
    for name in ("PATH", "LANG", "PYTHONPATH", rl.ENV_CLUSTER, rl.ENV_TOKEN, "MLTRAIN_WORLD_SIZE",
                 rl.ENV_RANK_NODES, "MLTRAIN_RUN_ID", "HOME"):
        assert name in forwarded, name
    assert "HOSTNAME" not in forwarded
    assert argv[-6:] == ["--logs-dir", "/mltrain/run/logs", "--", "job.py", "--epochs", "1"]
    assert "mltrain_desktop.engine.rank_launcher" in argv
    i = argv.index("--mca", argv.index("btl_vader_single_copy_mechanism") - 1)
    assert argv[i:i + 6] == ["--mca", "btl_vader_single_copy_mechanism", "none", "--mca", "btl", "tcp,self"]
    env = kw["environment"]
    assert json.loads(env[rl.ENV_CLUSTER])["worker"][2] == f"{ms.node_name(ctx.run_id, 1)}:2222"
    assert json.loads(env[rl.ENV_RANK_NODES]) == [ms.node_name(ctx.run_id, k) for k in (0, 0, 1, 1)]
    assert env["MLTRAIN_MPI_NODES"] == f"{ms.node_name(ctx.run_id, 0)} {ms.node_name(ctx.run_id, 1)}"
    assert env["MLTRAIN_SSH_WAIT_S"] == "30" and env[rl.ENV_TOKEN] == "tok"
    assert kw["name"] == ms.launcher_name(ctx.run_id) and kw["labels"]["mltrain.task"] == "mpirun:0"
    assert "exec \"$@\"" in kw["entrypoint"][2]


def test_the_launcher_as_root_allows_mpirun_to_run_as_root_and_takes_no_gpu(ctx):
    gpu_ctx = ctx.replace(spec={**ctx.spec, "use_gpu": True})
    nodes = ms.nodes_plan(ctx.run_id, 1, 1)
    kw = ms.launcher_container_kwargs(gpu_ctx, "img", nodes, token="t", uid=0, gid=0, config={})
    assert kw["command"][:2] == ["mpirun", "--allow-run-as-root"]
    assert "device_requests" not in kw
    assert "device_requests" in ms.node_container_kwargs(gpu_ctx, "img", 0, uid=0, gid=0, config={})


def test_the_backend_chooses_mpirun_over_ssh_only_when_the_target_asks(ctx, tmp_path):
    backend = backend_for(ctx.target, ctx.spec)
    assert isinstance(backend, DockerMpiBackend) and backend.over_ssh
    plain = cluster_ctx(tmp_path / "plain", DIST)
    assert not backend_for(plain.target, plain.spec).over_ssh


def test_the_mpi_layer_recipe():
    text = mpi_dockerfile("mltrain-tf:2.21", "sha256:abc", 1000, 1001)
    assert text.splitlines()[1] == "FROM mltrain-tf:2.21" and "USER root" in text
    assert "apt-get install -y -q --no-install-recommends openssh-server openssh-client openmpi-bin" in text
    assert "useradd -u 1000 -g 1001" in text and "groupadd -g 1001" in text
    assert "useradd" not in mpi_dockerfile("mltrain-tf:2.21", "sha256:abc", 0, 0)  # root is in every image
    tags = {mpi_image_tag("sha256:abc", 1000, 1001), mpi_image_tag("sha256:abd", 1000, 1001),
            mpi_image_tag("sha256:abc", 0, 0)}
    assert len(tags) == 3 and all(t.startswith("mltrain-mpi:") and len(t.split(":")[1]) == 16 for t in tags)
    assert mpi_image_tag("sha256:abc", 1000, 1001) == mpi_image_tag("sha256:abc", 1000, 1001)
