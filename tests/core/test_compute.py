"""Compute targets: the seed's AmlCompute maps to local processes; validation and probing."""
from __future__ import annotations

import sys

import pytest

from mltrain_desktop.core.compute import AmlCompute, ComputeTarget, LocalCompute
from mltrain_desktop.core.compute_target import ComputeTargetException


def test_seed_provisioning_makes_a_local_target(ws, capsys):
    cfg = AmlCompute.provisioning_configuration(vm_size="STANDARD_NC6", max_nodes=4)
    t = ComputeTarget.create(ws, "gpucluster", cfg)
    t.wait_for_completion(show_output=True, min_node_count=None, timeout_in_minutes=20)
    assert "gpucluster (local): Succeeded" in capsys.readouterr().out
    again = ComputeTarget(workspace=ws, name="gpucluster")
    assert (again.kind, again.max_concurrent_runs, again.config["vm_size"]) == ("local", 4, "STANDARD_NC6")
    assert again.probe_result["python"] == sys.executable
    assert isinstance(again.gpus, list)
    assert set(ComputeTarget.list(ws)) == {"local", "gpucluster"}


@pytest.mark.parametrize("bad", [0, -1, 1.5, "4", True])
def test_bad_max_nodes(ws, bad):
    with pytest.raises(ComputeTargetException, match="max_concurrent_runs"):
        ComputeTarget.create(ws, "c", LocalCompute.provisioning_configuration(max_concurrent_runs=bad))
    assert "c" not in ComputeTarget.list(ws)


def test_missing_interpreter_is_a_failed_target(ws, tmp_path):
    t = ComputeTarget.create(ws, "nopy", LocalCompute.provisioning_configuration(python=str(tmp_path / "python9")))
    assert t.provisioning_state == "Failed" and "not an executable" in t.state_detail
    with pytest.raises(ComputeTargetException, match="not usable"):
        t.wait_for_completion()


def test_bad_names_and_kinds(ws):
    from mltrain_desktop.core.compute import ComputeTargetProvisioningConfiguration
    with pytest.raises(ComputeTargetException, match="name"):
        ComputeTarget.create(ws, "", LocalCompute.provisioning_configuration())
    with pytest.raises(ComputeTargetException, match="unknown compute kind 'k8s'"):
        ComputeTarget.create(ws, "x", ComputeTargetProvisioningConfiguration("k8s"))


def test_delete_refuses_with_unfinished_runs(ws, make_script):
    from mltrain_desktop.core import Experiment, ScriptRunConfig
    ComputeTarget.create(ws, "busy", LocalCompute.provisioning_configuration())
    src = make_script("import time; time.sleep(600)")
    run = Experiment(ws, "e").submit(ScriptRunConfig(source_directory=str(src), script="job.py", compute_target="busy"))
    with pytest.raises(ComputeTargetException, match="unfinished run"):
        ComputeTarget(ws, "busy").delete()
    run.cancel()
    ComputeTarget(ws, "busy").delete()
    assert "busy" not in ComputeTarget.list(ws)
