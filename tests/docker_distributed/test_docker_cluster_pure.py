"""Distributed runs on a Docker target, as values: names, cluster specs, container arguments (no engine)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from dc_helpers import MPI2, PS12, PS_TAGS, cluster_ctx
from docker_helpers import TF_IMAGE
from mltrain_desktop.engine import rank_launcher as rl
from mltrain_desktop.engine.backends import backend_for
from mltrain_desktop.engine.backends.base import PrepareError
from mltrain_desktop.engine.backends.docker_cluster import (
    DockerMpiBackend, DockerParameterServerBackend, cluster_spec, mpi_tasks, network_create_kwargs, network_name,
    ps_tasks, run_slug, task_container_kwargs, task_container_name)
from mltrain_desktop.engine.backends.docker_cluster_handle import DockerClusterHandle, finished_at, how_it_ended
from mltrain_desktop.domain.distributed_policy import MpiPolicy, PsPolicy

HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@pytest.mark.parametrize("run_id", ["exp_1_r1", "mnist-mwms_1718000000_abcdef12", "Tëst run/1",
                                    "a" * 200, "___"])
def test_names_are_valid_host_names(run_id):
    for tag in ("rank_0", "worker_10", "chief_0", "ps_3"):
        name = task_container_name(run_id, tag)
        assert HOSTNAME.match(name) and len(name) <= 63, name
        assert name.startswith(network_name(run_id) + "-")
    assert HOSTNAME.match(network_name(run_id))


def test_names_read_like_the_run_and_long_ids_stay_distinct():
    assert task_container_name("mnist-mwms_1718000000_abcdef12", "worker_1") == \
        "mltrain-mnist-mwms-1718000000-abcdef12-worker-1"
    assert network_name("exp_1_r1") == "mltrain-exp-1-r1"
    a, b = run_slug("x" * 100 + "1"), run_slug("x" * 100 + "2")
    assert a != b and len(a) <= 40 and len(b) <= 40


def test_tasks_and_cluster_specs_address_containers_by_name():
    assert mpi_tasks({"process_count_per_node": 2, "node_count": 1}) == [(None, 0), (None, 1)]
    assert mpi_tasks({"process_count_per_node": 2, "node_count": 2}) == [(None, r) for r in range(4)]
    assert ps_tasks({"worker_count": 2, "parameter_server_count": 1}) == [
        ("ps", 0), ("worker", 0), ("worker", 1), ("chief", 0)]
    assert cluster_spec("r1", mpi_tasks(MPI2)) == {"worker": ["mltrain-r1-rank-0:2222", "mltrain-r1-rank-1:2222"]}
    assert cluster_spec("r1", ps_tasks(PS12)) == {
        "chief": ["mltrain-r1-chief-0:2222"], "worker": ["mltrain-r1-worker-0:2222", "mltrain-r1-worker-1:2222"],
        "ps": ["mltrain-r1-ps-0:2222"]}


@pytest.mark.parametrize("dist", [{"kind": "mpi", "process_count_per_node": 0},
                                  {"kind": "mpi", "node_count": -1},
                                  {"kind": "parameter_server", "worker_count": 0, "parameter_server_count": 1},
                                  {"kind": "parameter_server", "worker_count": 1, "parameter_server_count": True}])
def test_bad_counts_fail_before_the_engine_is_asked(tmp_path, dist):
    ctx = cluster_ctx(tmp_path, dist, config={"base_url": "tcp://127.0.0.1:9"})  # nothing answers there
    with pytest.raises(PrepareError, match="at least 1"):
        backend_for(ctx.target, ctx.spec).prepare(ctx)


def test_the_dispatch_picks_the_docker_cluster_backends(tmp_path):
    assert isinstance(backend_for(cluster_ctx(tmp_path, MPI2).target, {"distribution": MPI2}), DockerMpiBackend)
    assert isinstance(backend_for(cluster_ctx(tmp_path, PS12).target, {"distribution": PS12}),
                      DockerParameterServerBackend)


def test_a_bad_startup_timeout_is_refused(tmp_path):
    ctx = cluster_ctx(tmp_path, MPI2, config={"startup_timeout_s": "soon", "base_url": "tcp://127.0.0.1:9"})
    with pytest.raises(PrepareError, match="startup_timeout_s"):
        backend_for(ctx.target, ctx.spec).prepare(ctx)


def test_each_task_container(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    ctx = cluster_ctx(tmp_path, PS12, args=["--data-folder", str(data), "--epochs", "1"],
                      raw_arguments=["--data-folder", {"input": "d"}, "--epochs", "1"],
                      inputs={"d": {"path": str(data), "mode": "mount"}},
                      config={"network": "host", "cpus": 1, "memory_gb": 2})
    cluster = cluster_spec(ctx.run_id, ps_tasks(PS12))
    kw = task_container_kwargs(ctx, TF_IMAGE, "worker", 1, cluster, token="tok", uid=1000, gid=1000,
                               config=ctx.target["config"])
    name = task_container_name(ctx.run_id, "worker_1")
    assert kw["name"] == kw["hostname"] == name
    assert kw["network"] == network_name(ctx.run_id) and "network_mode" not in kw  # never the host network
    assert kw["command"] == ["-m", "mltrain_desktop.engine.rank_launcher", "--logs-dir", "/mltrain/run/logs",
                             "--task-type", "worker", "--task-index", "1", "--",
                             "job.py", "--data-folder", "/mltrain/inputs/d", "--epochs", "1"]
    assert kw["working_dir"] == "/mltrain/run/snapshot" and kw["user"] == "1000:1000"
    assert kw["init"] is True and kw["privileged"] is False and kw["nano_cpus"] == 1_000_000_000
    env = kw["environment"]
    assert json.loads(env["MLTRAIN_TF_CLUSTER"]) == cluster and env["MLTRAIN_JOB_TOKEN"] == "tok"
    assert env["MLTRAIN_METRICS_FILE"] == "/mltrain/run/logs/metrics.jsonl"  # the launcher picks its own
    assert "MLTRAIN_WORLD_SIZE" not in env and "TF_CONFIG" not in env  # the launcher makes TF_CONFIG
    assert kw["labels"] == {"mltrain.workspace": str(ctx.workspace_dir.resolve()), "mltrain.run": ctx.run_id,
                            "mltrain.owner.kind": "run", "mltrain.owner.id": ctx.run_id,
                            "mltrain.target": "docker1", "mltrain.role": "task", "mltrain.task": "worker:1"}
    # the adapter's one hardened builder: what a job's and an endpoint's containers get, a task gets too
    assert kw["security_opt"] == ["no-new-privileges"]
    assert kw["log_config"]["Config"] == {"max-size": "100m", "max-file": "3"} and kw["mem_limit"] == "2048m"
    mpi = task_container_kwargs(ctx, TF_IMAGE, None, 1, cluster_spec(ctx.run_id, mpi_tasks(MPI2)), token="t",
                                world_size=2)
    assert mpi["command"][:7] == ["-m", "mltrain_desktop.engine.rank_launcher", "--logs-dir", "/mltrain/run/logs",
                                  "--rank", "1", "--"]
    assert mpi["environment"]["MLTRAIN_WORLD_SIZE"] == "2" and mpi["labels"]["mltrain.task"] == "rank:1"
    net = network_create_kwargs(ctx)
    assert net["name"] == network_name(ctx.run_id) and net["driver"] == "bridge"
    assert net["labels"]["mltrain.role"] == "network" and net["labels"]["mltrain.run"] == ctx.run_id
    assert net["labels"]["mltrain.owner.kind"] == "run" and net["labels"]["mltrain.owner.id"] == ctx.run_id


def test_the_rank_launcher_takes_a_rank_without_mpirun(tmp_path):
    """``--rank R``: what a rank container runs (no OMPI_* variables, no mpirun)."""
    logs = tmp_path / "logs"
    script = tmp_path / "s.py"
    script.write_text("import os; print(os.environ['MLTRAIN_RANK'], os.environ['MLTRAIN_TASK'], "
                      "os.environ['TF_CONFIG'], os.environ['MLTRAIN_METRICS_FILE'], sep='|')\n")
    cluster = {"worker": ["a:2222", "b:2222"]}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI", "TF_CONFIG"))}
    env.update({"MLTRAIN_TF_CLUSTER": json.dumps(cluster), "MLTRAIN_METRICS_FILE": str(logs / "metrics.jsonl"),
                "PYTHONPATH": str(rl.Path(rl.__file__).resolve().parents[2])})
    out = subprocess.run([sys.executable, "-m", "mltrain_desktop.engine.rank_launcher", "--logs-dir", str(logs),
                          "--rank", "1", "--", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("[rank 1] 1|rank 1|")
    _, tf_config, metrics = out.stdout.strip().rsplit("|", 2)
    assert json.loads(tf_config) == {"cluster": cluster, "task": {"type": "worker", "index": 1}}
    assert metrics == str(logs / "metrics.rank1.jsonl")
    assert (logs / "rank_1.log").read_text().startswith("1|rank 1|")
    assert rl.read_statuses(logs)["rank_1"]["exit_code"] == 0


def _handle_state(ctx, tags, **more):
    kind = "docker_mpi" if tags[0].startswith("rank") else "docker_parameter_server"
    return {"kind": kind, "run_id": ctx.run_id, "startup_timeout_s": 7, "started": 1000.0,
            "tasks": [{"tag": t, "container_id": f"id-{t}", "container_name": task_container_name(ctx.run_id, t)}
                      for t in tags], **more}


def test_the_handle_judges_by_the_domain_policies(tmp_path):
    """The container runtime has no rules of its own: the MPI and PS policies decide, fed what it sees."""
    ctx = cluster_ctx(tmp_path, PS12)
    ps = DockerClusterHandle(None, _handle_state(ctx, PS_TAGS), ctx, start_pumps=False)
    assert type(ps.policy) is PsPolicy and ps.policy.tags == PS_TAGS and ps.policy.watched == PS_TAGS[:-1]
    assert ps.policy.startup_timeout_s == 7 and ps.policy.started_at == 1000.0
    assert not ps.policy.watching  # a remote engine: its containers' sockets cannot be seen from here
    mpi = DockerClusterHandle(None, _handle_state(ctx, ["rank_0", "rank_1"], local_engine=True), ctx,
                              start_pumps=False)
    assert type(mpi.policy) is MpiPolicy and not mpi.policy.under_mpirun and mpi.policy.watching
    late = DockerClusterHandle(None, _handle_state(ctx, ["rank_0", "rank_1"], local_engine=True), ctx,
                               reattached=True, start_pumps=False)
    assert not late.policy.watching  # reattached after the start-up deadline: the exits alone decide
    # a launch that failed half way (no chief yet) can still be cancelled: the policy is made on first use
    DockerClusterHandle(None, _handle_state(ctx, ["ps_0"]), ctx, start_pumps=False)
    from mltrain_desktop.engine.backends import docker_cluster, docker_cluster_handle
    for module in (docker_cluster, docker_cluster_handle):
        assert not any(hasattr(module, n) for n in ("EARLY_EXIT_CONFIRM_S", "PORT_CHECK_EVERY_S", "CHIEF"))


@pytest.mark.parametrize("ended, status, how", [
    ({"gone": True, "code": None}, {}, "disappeared: its container C was removed while the run was going on "
                                       "(from outside, e.g. 'docker rm -f')"),
    ({"code": 137, "oom": True, "memory": 2**28}, {}, "ran out of memory and was killed (container C, exit code "
                                                      "137, memory limit 0.25 GiB); raise memory_gb on the target "
                                                      "or use less memory"),
    ({"code": 1}, {"ended": 5.0, "exit_code": 1}, "exited with code 1 (container C)"),
    ({"code": 137}, {"ended": 5.0, "exit_code": None, "signal": 9},
     "was killed by signal 9 (SIGKILL) (container C, exit code 137)"),
    ({"code": 137}, {}, "was killed by signal 9 (SIGKILL) (container C, exit code 137; stopped from outside, "
                        "e.g. 'docker kill' or 'docker stop')"),
    ({"code": 3}, {}, "exited with code 3 (container C)"),
])
def test_how_a_task_container_ended_in_words(ended, status, how):
    assert how_it_ended("C", ended, status) == how


def test_a_container_end_time():
    assert finished_at("2026-01-02T03:04:05.5Z") == pytest.approx(1767323045.5)
    assert finished_at("0001-01-01T00:00:00Z") is None and finished_at("") is None and finished_at(None) is None
