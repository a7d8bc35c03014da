"""Staging on the real test Slurm cluster: a workspace the nodes cannot see (under pytest's tmp_path,
not the cluster's shared folder) runs through the cluster-only scratch folder (/scratch, a Docker
volume of the cluster that this machine does not mount), copied there and back with rsync."""
from __future__ import annotations

import os
import re
import shlex

import pytest

from conftest import replace_supervisor, slurm, wait_for
from mltrain_desktop import ComputeTarget, Experiment, MpiConfiguration
from mltrain_desktop.app.slurm_view import cluster_text
from mltrain_desktop.core.dataset import Dataset
from mltrain_desktop.core.script_run_config import ScriptRunConfig

JOB = '''\
import os, socket, sys, time
from mltrain_desktop.run import Run
run = Run.get_context()
data = sys.argv[1]
print("rank", os.environ.get("MLTRAIN_RANK", "0"), "on", socket.gethostname(), "in", os.getcwd(), flush=True)
print("workspace here", os.path.exists(sys.argv[2]), flush=True)
print("data says", open(os.path.join(data, "numbers.txt")).read().strip(), flush=True)
ticks = int(sys.argv[3]) if len(sys.argv) > 3 else 0
for step in range(ticks):
    run.log("loss", 1.0 / (step + 1))
    print("tick", step, flush=True)
    time.sleep(1)
if os.environ.get("MLTRAIN_RANK", "0") == "0":
    os.makedirs("outputs", exist_ok=True)
    open("outputs/result.txt", "w").write("made on " + socket.gethostname() + "\\n")
if len(sys.argv) > 4:
    raise SystemExit("failing on purpose at the end")
'''


@pytest.fixture
def staged_target(ws, slurm_config, slurm_cluster):
    t = ComputeTarget.create(ws, "cluster", slurm_config(scratch_dir=slurm_cluster["scratch"]))
    assert t.provisioning_state == "Succeeded", t.state_detail
    return t


@pytest.fixture
def numbers(ws, tmp_path):
    d = tmp_path / "numbers"
    d.mkdir()
    (d / "numbers.txt").write_text("4 8 15 16 23 42\n")
    return Dataset.File.from_files(str(d)).register(ws, "numbers")


@pytest.fixture
def src(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    (d / "job.py").write_text(JOB)
    return d


def submit(ws, target, src, numbers, *extra, dist=None):
    cfg = ScriptRunConfig(source_directory=str(src), script="job.py", compute_target=target,
                          arguments=[numbers.as_named_input("numbers").as_mount(), str(ws.path), *extra],
                          distributed_job_config=dist)
    return Experiment(ws, "staged").submit(cfg)


def log(run) -> str:
    return run.read_log()[0]


def remote_runs(cluster) -> list[str]:
    return slurm(cluster, "sh", "-c", shlex.quote(f"ls {cluster['scratch']}/mltrain 2>/dev/null || true")).split()


def test_the_probe_checks_the_scratch_folder_on_the_nodes(staged_target, slurm_cluster):
    staging = staged_target.probe_result["staging"]
    assert staging["ready"] is True and staging["folder"] == slurm_cluster["scratch"]
    assert (f"staging: runs of other workspaces are copied to {slurm_cluster['scratch']} (writable on "
            f"{slurm_cluster['login_host']}, visible on 2 node(s))") in staged_target.state_detail
    assert not os.path.exists(slurm_cluster["scratch"])  # this machine does not see it: nothing is shared
    text = cluster_text(staged_target.as_dict()["probe"])  # what the Compute view shows
    assert f"  staging: runs of other workspaces are copied to {slurm_cluster['scratch']}" in text
    assert "  shared workspace: " in text


def test_a_run_of_a_workspace_the_nodes_cannot_see_is_staged_and_its_outputs_come_back(
        ws, staged_target, src, numbers, slurm_cluster):
    run = submit(ws, staged_target, src, numbers, "3")
    details = run.wait_for_completion(raise_on_error=False, timeout=180)
    text = log(run)
    assert details["status"] == "Completed", (details.get("error"), text[-3000:])
    remote = f"{slurm_cluster['scratch']}/mltrain/{run.id}"
    assert f"staged the run to {slurm_cluster['login_host']}:{remote} (snapshot, job kit, 1 dataset input(s))" in text
    assert "workspace here False" in text  # the nodes do not see this workspace ...
    assert f"in {remote}/snapshot" in text and "data says 4 8 15 16 23 42" in text  # ... they ran the copy
    assert (run.run_dir / "outputs" / "result.txt").read_text().startswith("made on node")
    assert "outputs/result.txt" in run.get_file_names()
    assert run.get_metrics()["loss"] == [1.0, 0.5, pytest.approx(1 / 3)]
    assert f"outputs and logs copied back from {slurm_cluster['login_host']}:{remote}; removed it there" in text
    assert run.id not in remote_runs(slurm_cluster)


def test_the_log_and_the_metrics_come_back_while_the_job_runs(ws, staged_target, src, numbers):
    run = submit(ws, staged_target, src, numbers, "30")
    wait_for(lambda: "tick 3" in log(run), 90, "the job's lines to come back while it runs")
    assert run.get_status() == "Running"
    wait_for(lambda: len(run.get_metrics().get("loss", [])) >= 4, 30, "the metrics to come back while it runs")
    assert run.cancel(wait_seconds=40) == "Canceled"


def test_mpi_ranks_on_two_nodes_are_staged_and_every_rank_log_comes_back(ws, staged_target, src, numbers):
    run = submit(ws, staged_target, src, numbers, "1", dist=MpiConfiguration(process_count_per_node=1, node_count=2))
    details = run.wait_for_completion(raise_on_error=False, timeout=180)
    assert details["status"] == "Completed", (details.get("error"), log(run)[-3000:])
    rank1 = (run.run_dir / "logs" / "rank_1.log").read_text()
    assert "rank 1 on node" in rank1 and "data says 4 8 15" in rank1
    hosts = dict(re.findall(r"rank (\d) on (node\d) in", log(run)))
    assert hosts == {"0": "node1", "1": "node2"}
    assert run.get_metrics(rank=1)["loss"] == 1.0  # one point: a scalar, as in Azure ML


def test_a_failing_staged_script_fails_with_its_error_and_its_files_still_come_back(
        ws, staged_target, src, numbers, slurm_cluster):
    run = submit(ws, staged_target, src, numbers, "1", "fail")
    details = run.wait_for_completion(raise_on_error=False, timeout=180)
    assert details["status"] == "Failed"
    assert "failing on purpose at the end" in details["error"]["message"] + log(run)
    assert (run.run_dir / "outputs" / "result.txt").is_file()
    assert run.id not in remote_runs(slurm_cluster)


def test_cancel_brings_back_what_there_is_and_removes_the_remote_folder(ws, staged_target, src, numbers,
                                                                          slurm_cluster):
    run = submit(ws, staged_target, src, numbers, "60")
    wait_for(lambda: "tick 1" in log(run), 90, "the job to run")
    assert run.cancel(wait_seconds=40) == "Canceled"
    assert "tick 1" in (run.run_dir / "logs" / "driver.log").read_text()
    assert run.id not in remote_runs(slurm_cluster)


def test_a_restarted_supervisor_reattaches_and_still_brings_the_outputs_back(ws, staged_target, src, numbers):
    run = submit(ws, staged_target, src, numbers, "6")
    wait_for(lambda: "tick 1" in log(run), 90, "the job to run")
    replace_supervisor(ws, run)
    details = run.wait_for_completion(raise_on_error=False, timeout=120)
    assert details["status"] == "Completed", details.get("error")
    text = log(run)
    assert "reattached to the running job" in text and "tick 5" in text
    assert text.count("tick 1\n") == 1  # the merged job output is not repeated after the restart
    assert (run.run_dir / "outputs" / "result.txt").is_file()


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["scratch", "/", "/scratch/../etc", ""])
def test_a_scratch_dir_that_is_not_an_absolute_cluster_folder_is_refused(ws, slurm_config, value):
    from mltrain_desktop.core.compute_target import ComputeTargetException
    with pytest.raises((ValueError, ComputeTargetException), match="scratch_dir must be"):
        ComputeTarget.create(ws, "bad", slurm_config(scratch_dir=value))


def test_a_scratch_dir_that_cannot_be_written_is_named_and_the_run_fails_before_sbatch(
        ws, slurm_config, src, numbers):
    t = ComputeTarget.create(ws, "ro", slurm_config(scratch_dir="/proc/mltrain-scratch"))
    staging = t.probe_result["staging"]
    assert staging["ready"] is False and "cannot write to /proc/mltrain-scratch" in staging["detail"]
    run = submit(ws, t, src, numbers)
    details = run.wait_for_completion(raise_on_error=False, timeout=120)
    assert details["status"] == "Failed"
    message = details["error"]["message"]
    assert message.startswith("copying the snapshot to the cluster failed"), message
    assert "submitted Slurm job" not in log(run)


def test_a_staged_run_that_sbatch_refuses_leaves_nothing_on_the_cluster(ws, slurm_config, slurm_cluster, src,
                                                                        numbers):
    t = ComputeTarget.create(ws, "featured", slurm_config(scratch_dir=slurm_cluster["scratch"],
                                                          sbatch_args=["--constraint=bigmem"]))
    run = submit(ws, t, src, numbers)
    details = run.wait_for_completion(raise_on_error=False, timeout=60)
    assert details["status"] == "Failed"
    assert details["error"]["message"].startswith("sbatch refused the job")
    assert "staged the run to" in log(run)  # it was copied there first ...
    assert run.id not in remote_runs(slurm_cluster)  # ... and removed again
