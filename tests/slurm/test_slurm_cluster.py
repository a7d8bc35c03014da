"""Runs on the real test Slurm cluster (slurmctld + 2 slurmd in containers) through the SDK.

ComputeTarget.create probes it; Experiment.submit hands each run to sbatch; states, logs,
metrics, cancel (PENDING and RUNNING), a supervisor restart, and the bad inputs: an unknown
partition, node_count above the partition, a workspace the nodes cannot see, an unreachable
login host, MUNGE refusing the credential.
"""
from __future__ import annotations

import json

import pytest

from conftest import replace_supervisor, slurm, wait_for
from mltrain_desktop import ComputeTarget, Experiment, MpiConfiguration, TensorflowConfiguration
from mltrain_desktop.adapters.slurm.commands import Runner, SlurmCommandError
from mltrain_desktop.core.script_run_config import ScriptRunConfig
from mltrain_desktop.core.workspace import Workspace

JOB = '''\
import os, socket, sys, time
from mltrain_desktop.run import Run
run = Run.get_context()
print("hello from", socket.gethostname(), "rank", os.environ.get("MLTRAIN_RANK"), flush=True)
print("TF_CONFIG", os.environ.get("TF_CONFIG"), flush=True)
for step in range(3):
    run.log("loss", 1.0 / (step + 1))
seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 0
time.sleep(seconds)
if len(sys.argv) > 2:
    print("failing on purpose", flush=True)
    raise SystemExit(int(sys.argv[2]))
'''


@pytest.fixture
def src(shared_dir):
    d = shared_dir / "src"
    d.mkdir()
    (d / "job.py").write_text(JOB)
    return d


@pytest.fixture
def target(sws, slurm_config):
    return ComputeTarget.create(sws, "cluster", slurm_config())


def submit(ws, target, src, arguments=(), dist=None):
    cfg = ScriptRunConfig(source_directory=str(src), script="job.py", arguments=list(arguments),
                          compute_target=target, distributed_job_config=dist)
    return Experiment(ws, "slurm").submit(cfg)


def log(run) -> str:
    return run.read_log()[0]


def test_probe_records_partitions_nodes_and_the_shared_folder(target, slurm_cluster):
    assert target.provisioning_state == "Succeeded", target.state_detail
    p = target.probe_result
    assert [x["name"] for x in p["partitions"]] == ["debug", "single"]
    assert [n["name"] for n in p["nodes"]] == ["node1", "node2"] and p["cpus"] == 4
    assert p["shared"]["shared"] is True and p["cluster"] == "mltrain"
    assert "visible on 2 node(s)" in target.state_detail


def test_a_run_completes_with_its_log_and_metrics(sws, target, src):
    run = submit(sws, target, src)
    details = run.wait_for_completion(raise_on_error=False, timeout=120)
    assert details["status"] == "Completed", details.get("error")
    text = log(run)
    assert "hello from node" in text and "rank 0" in text
    assert "submitted Slurm job" in text and "COMPLETED" in text
    seen = json.loads((run.run_dir / "slurm" / "state.json").read_text())
    assert (seen["slurm_state"], seen["status"]) == ("COMPLETED", "Completed") and seen["nodes"].startswith("node")
    assert run.get_metrics()["loss"] == [1.0, 0.5, 1.0 / 3]
    assert (run.run_dir / "slurm" / "job.sh").read_text().startswith("#!/bin/bash")


def test_mpi_ranks_span_two_nodes_with_tf_config(sws, target, src, slurm_cluster):
    run = submit(sws, target, src, dist=MpiConfiguration(process_count_per_node=1, node_count=2))
    details = run.wait_for_completion(raise_on_error=False, timeout=120)
    assert details["status"] == "Completed", details.get("error")
    logs = run.run_dir / "logs"
    r0, r1 = (logs / "rank_0.log").read_text(), (logs / "rank_1.log").read_text()
    assert "hello from node1 rank 0" in r0 and "hello from node2 rank 1" in r1
    assert '"worker":["node1:29400","node2:29401"]' in r1 and '"index":1' in r1
    assert run.get_metrics(rank=1)["loss"][0] == 1.0
    job_id = run.get_details()["backendState"]["job_id"]
    assert "node[1-2]" in slurm(slurm_cluster, "sacct", "-n", "-P", "-j", job_id, "-o", "NodeList")


def test_parameter_server_tasks_get_their_roles_by_task_id(sws, target, src):
    run = submit(sws, target, src, dist=TensorflowConfiguration(worker_count=1, parameter_server_count=1))
    details = run.wait_for_completion(raise_on_error=False, timeout=120)
    assert details["status"] == "Completed", details.get("error")
    logs = run.run_dir / "logs"
    for tag, role in (("ps_0", "ps"), ("worker_0", "worker"), ("chief_0", "chief")):
        text = (logs / f"{tag}.log").read_text()
        assert f'"task":{{"type":"{role}","index":0}}' in text, text
    assert '"ps":["node1:29400"]' in (logs / "chief_0.log").read_text()


def test_ps_tasks_that_serve_for_ever_are_ended_after_the_chief(sws, target, shared_dir):
    """A ps task never returns (like TensorFlow's servers); the job ends CHIEF_GRACE_S after the chief,
    with the chief's exit code."""
    d = shared_dir / "serve"
    d.mkdir()
    (d / "job.py").write_text("import os, time\nif os.environ['MLTRAIN_TASK_TYPE'] == 'ps':\n    time.sleep(3600)\n"
                              "print('done', os.environ['MLTRAIN_TASK_TYPE'], flush=True)\n")
    run = submit(sws, target, d, dist=TensorflowConfiguration(worker_count=1, parameter_server_count=1))
    details = run.wait_for_completion(raise_on_error=False, timeout=150)
    assert details["status"] == "Completed", details.get("error")
    assert "done chief" in (run.run_dir / "logs" / "chief_0.log").read_text()


def test_a_failing_script_fails_the_run_with_slurm_words(sws, target, src):
    run = submit(sws, target, src, arguments=["0", "3"])
    details = run.wait_for_completion(raise_on_error=False, timeout=120)
    assert details["status"] == "Failed"
    message = details["error"]["message"]
    assert "FAILED" in message and "exit code 3:0" in message, message
    assert "failing on purpose" in message
    assert "failing on purpose" in log(run)


def test_cancel_while_pending_and_while_running(sws, target, src, slurm_cluster):
    blocker = submit(sws, target, src, arguments=["120"], dist=MpiConfiguration(process_count_per_node=2,
                                                                                   node_count=2))
    wait_for(lambda: "RUNNING on node[1-2]" in log(blocker), 60, "the 4-CPU job to run")
    waiting = submit(sws, target, src)
    wait_for(lambda: "PENDING (Resources)" in log(waiting) or "PENDING (Priority)" in log(waiting), 60,
             "the second job to wait for CPUs")
    wait_for(lambda: waiting.get_status() == "Queued", 30, "the waiting run to be Queued with Slurm's reason")
    assert waiting.cancel(wait_seconds=40) == "Canceled"
    job_id = waiting.get_details()["backendState"]["job_id"]
    assert slurm(slurm_cluster, "sacct", "-n", "-P", "-X", "-j", job_id, "-o", "State").startswith("CANCELLED")
    assert blocker.get_status() == "Running"
    assert blocker.cancel(wait_seconds=40) == "Canceled"
    job_id = blocker.get_details()["backendState"]["job_id"]
    assert slurm(slurm_cluster, "squeue", "-h", "-j", job_id, "-o", "%T").strip() in ("", "CANCELLED")
    assert "CANCELLED" in log(blocker)


def test_a_restarted_supervisor_reattaches_by_job_id(sws, target, src):
    run = submit(sws, target, src, arguments=["6"])
    wait_for(lambda: "RUNNING on node" in log(run), 60, "the job to run")
    replace_supervisor(sws, run)
    details = run.wait_for_completion(raise_on_error=False, timeout=120)
    assert details["status"] == "Completed", details.get("error")
    assert "reattached to the running job" in log(run)
    assert run.get_metrics()["loss"][-1] == pytest.approx(1.0 / 3)


def test_unknown_partition(sws, slurm_config, src):
    t = ComputeTarget.create(sws, "nope", slurm_config(partition="nope"))
    assert t.provisioning_state == "Failed"
    assert "partition 'nope' does not exist" in t.state_detail and "debug, single" in t.state_detail
    from mltrain_desktop.core.compute_target import ComputeTargetException
    with pytest.raises(ComputeTargetException, match="partition 'nope' does not exist on cluster mltrain"):
        submit(sws, t, src)


def test_node_count_above_the_partition_is_refused_before_submit(sws, target, slurm_config, src):
    run = submit(sws, target, src, dist=MpiConfiguration(node_count=3))
    details = run.wait_for_completion(raise_on_error=False, timeout=60)
    assert details["status"] == "Failed"
    assert "asks for 3 node(s) (node_count) but partition 'debug' has 2" in details["error"]["message"]
    assert "submitted Slurm job" not in log(run)
    single = ComputeTarget.create(sws, "single", slurm_config(partition="single"))
    run = submit(sws, single, src, dist=MpiConfiguration(node_count=2))
    details = run.wait_for_completion(raise_on_error=False, timeout=60)
    assert "partition 'single' has 1" in details["error"]["message"]


def test_a_workspace_the_nodes_cannot_see_is_refused_without_a_scratch_dir(ws, slurm_config, src):
    t = ComputeTarget.create(ws, "cluster", slurm_config())
    run = submit(ws, t, src)
    details = run.wait_for_completion(raise_on_error=False, timeout=60)
    assert details["status"] == "Failed"
    message = details["error"]["message"]
    assert "not inside the Slurm target's shared_workspace" in message
    assert "staging is refused: the target has no scratch_dir" in message and "scratch_dir=" in message
    assert "submitted Slurm job" not in log(run)


def test_an_unreachable_login_host(sws, slurm_cluster):
    from mltrain_desktop.core.compute_slurm import SlurmCompute
    t = ComputeTarget.create(sws, "far", SlurmCompute.provisioning_configuration(
        login_host="no-such-host.invalid", shared_workspace=slurm_cluster["shared"]))
    assert t.provisioning_state == "Failed"
    assert "cannot reach the Slurm login host no-such-host.invalid" in t.state_detail
    assert "Could not resolve hostname" in t.state_detail


def test_munge_refusing_the_credential_is_named(slurm_cluster):
    """A client whose MUNGE socket is wrong (SLURM_CONF with AuthInfo=socket=/nonexistent) is refused."""
    runner = Runner({"login_host": slurm_cluster["login_host"], "ssh_config": slurm_cluster["ssh_config"]})
    runner.run(["sh", "-c", "cp /etc/slurm/slurm.conf /tmp/mltrain-badauth.conf && "
                            "echo AuthInfo=socket=/nonexistent >> /tmp/mltrain-badauth.conf"])
    with pytest.raises(SlurmCommandError) as err:
        runner.run(["env", "SLURM_CONF=/tmp/mltrain-badauth.conf", "sinfo"])
    assert err.value.kind == "auth"
    assert "munge.key" in str(err.value) and "Munge encode failed" in str(err.value)


def test_sbatch_errors_are_passed_through_with_what_to_do(sws, slurm_config, src):
    """A constraint no node has is refused by sbatch itself (no check of ours)."""
    t = ComputeTarget.create(sws, "featured", slurm_config(sbatch_args=["--constraint=bigmem"]))
    run = submit(sws, t, src)
    details = run.wait_for_completion(raise_on_error=False, timeout=60)
    assert details["status"] == "Failed"
    message = details["error"]["message"]
    assert message.startswith("sbatch refused the job") and "Invalid feature specification" in message, message
    assert "names a feature no node has" in message


def test_a_job_that_stays_pending_shows_the_reason_and_can_be_cancelled(sws, slurm_config, src, slurm_cluster):
    """Two days on a 10-minute partition: Slurm keeps it PENDING (PartitionTimeLimit) for ever."""
    t = ComputeTarget.create(sws, "long", slurm_config(partition="single", time_limit="2-00:00:00"))
    run = submit(sws, t, src)
    wait_for(lambda: "PENDING (PartitionTimeLimit)" in log(run), 60, "Slurm's reason in the log")
    seen = json.loads((run.run_dir / "slurm" / "state.json").read_text())
    assert (seen["slurm_state"], seen["reason"], seen["status"]) == ("PENDING", "PartitionTimeLimit", "Queued")
    wait_for(lambda: run.get_status() == "Queued", 30, "the run to be Queued while Slurm holds its job")
    held = [e for e in run.get_events() if e["status"] == "Queued"][-1]
    # the first reason Slurm gave (it may settle on another: every change is in the log and state.json)
    assert held["detail"].startswith("held by the cluster's scheduler: Partition"), run.get_events()
    # its supervisor dies while Slurm holds the job: the next client reattaches, the run stays Queued
    import os
    import signal
    from mltrain_desktop.store import runs as run_rows
    old = run_rows.get(sws.db.conn, run.id)["supervisor_pid"]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{old}") or open(f"/proc/{old}/stat").read().split()[2] == "Z", 20,
             "the supervisor to die")
    assert run.id in Workspace(sws.path).recover()
    assert run_rows.get(sws.db.conn, run.id)["supervisor_pid"] not in (old, -1)
    assert run.get_status() == "Queued"
    assert run.cancel(wait_seconds=40) == "Canceled"
    job_id = run.get_details()["backendState"]["job_id"]
    assert slurm(slurm_cluster, "sacct", "-n", "-P", "-X", "-j", job_id, "-o", "State").startswith("CANCELLED")


def test_a_node_that_dies_mid_run_fails_the_run_naming_it(sws, target, src, slurm_cluster):
    """node2's container is killed while a 2-node run runs; Slurm marks it down after SlurmdTimeout."""
    import subprocess
    run = submit(sws, target, src, arguments=["300"], dist=MpiConfiguration(node_count=2))
    try:
        wait_for(lambda: "RUNNING on node[1-2]" in log(run), 60, "the 2-node job to run")
        subprocess.run(["docker", "kill", "mltrain-slurm-node2"], check=True, capture_output=True)
        details = run.wait_for_completion(raise_on_error=False, timeout=120)
    finally:
        subprocess.run(["docker", "start", "mltrain-slurm-node2"], check=True, capture_output=True)
        wait_for(lambda: slurm(slurm_cluster, "sinfo", "-h", "-N", "-n", "node2", "-o", "%T").split()[:1] == ["idle"],
                 60, "node2 to be back")
    assert details["status"] == "Failed"
    message = details["error"]["message"]
    assert "NODE_FAIL" in message and "node2 (Not responding)" in message, message
