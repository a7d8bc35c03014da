"""The Compute view shows a Slurm target's partitions and node states, and a queued run's Slurm
reason (real cluster, real window offscreen)."""
from __future__ import annotations

from conftest import wait_for
from mltrain_desktop.app.slurm_view import cluster_text, job_states, jobs_text
from mltrain_desktop.core import ComputeTarget, ScriptRunConfig
from mltrain_desktop.core.experiment import Experiment


def test_the_compute_view_shows_partitions_nodes_and_a_pending_reason(sws, slurm_config, shared_dir, qtbot,
                                                                     tmp_path, open_window):
    target = ComputeTarget.create(sws, "long", slurm_config(partition="single", time_limit="2-00:00:00"))
    src = shared_dir / "src-window"
    src.mkdir()
    (src / "job.py").write_text("print('hi')\n")
    run = Experiment(sws, "slurm-window").submit(ScriptRunConfig(source_directory=str(src), script="job.py",
                                                                 compute_target=target))
    wait_for(lambda: any(j["reason"] == "PartitionTimeLimit" for j in job_states(sws, "long")), 60,
          "Slurm's reason in the run's state file")
    text = jobs_text(job_states(sws, "long"))
    assert f"{run.id}: " in text and "PENDING (PartitionTimeLimit)" in text
    wait_for(lambda: run.get_status() == "Queued", 30, "the run to be Queued while Slurm holds it")
    cluster = cluster_text(ComputeTarget(sws, "long").as_dict()["probe"])
    assert "Partitions:" in cluster and "single" in cluster and "node1" in cluster and "node2" in cluster

    window = open_window(sws.path)
    try:
        window.show_compute("long")
        view = window.views["compute"]
        qtbot.waitUntil(lambda: "PENDING (PartitionTimeLimit)" in view.details.toPlainText(), timeout=20_000)
        shown = view.details.toPlainText()
        assert "Nodes:" in shown and "node1" in shown and "Partitions:" in shown
        assert f"{run.id}: Queued; Slurm job" in shown
        view.grab().save(str(tmp_path / "compute-slurm.png"))
    finally:
        assert run.cancel(wait_seconds=40) == "Canceled"
