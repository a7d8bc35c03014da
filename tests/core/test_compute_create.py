"""ComputeTarget.create never silently overwrites: same configuration returns the target, another one is
refused unless overwrite=True; update() and the CLI's create-or-update still replace it."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from mltrain_desktop.cli import cli
from mltrain_desktop.core.compute import ComputeTarget, LocalCompute
from mltrain_desktop.core.compute_target import ComputeTargetException


def test_same_configuration_returns_the_existing_target(ws):
    first = ComputeTarget.create(ws, "cpu", LocalCompute.provisioning_configuration(max_concurrent_runs=2))
    again = ComputeTarget.create(ws, "cpu", LocalCompute.provisioning_configuration(max_concurrent_runs=2))
    assert again.name == "cpu" and again.config == first.config and again.created == first.created


def test_other_configuration_is_refused_and_nothing_changes(ws):
    ComputeTarget.create(ws, "cpu", LocalCompute.provisioning_configuration(max_concurrent_runs=2))
    with pytest.raises(ComputeTargetException, match=r"'cpu' already exists.*update\(.*overwrite=True"):
        ComputeTarget.create(ws, "cpu", LocalCompute.provisioning_configuration(max_concurrent_runs=3))
    assert ComputeTarget(ws, "cpu").config["max_concurrent_runs"] == 2


def test_overwrite_and_update_replace_the_configuration(ws):
    ComputeTarget.create(ws, "cpu", LocalCompute.provisioning_configuration(max_concurrent_runs=2))
    t = ComputeTarget.create(ws, "cpu", LocalCompute.provisioning_configuration(max_concurrent_runs=3), overwrite=True)
    assert t.config["max_concurrent_runs"] == 3 and t.provisioning_state == "Succeeded"
    assert ComputeTarget(ws, "cpu").update(max_concurrent_runs=4).config["max_concurrent_runs"] == 4
    assert ComputeTarget(ws, "cpu").config["max_concurrent_runs"] == 4


def test_cli_compute_create_updates_an_existing_target(ws):
    ComputeTarget.create(ws, "cpu", LocalCompute.provisioning_configuration(max_concurrent_runs=2))
    r = CliRunner().invoke(cli, ["--workspace", str(ws.path), "compute", "create", "cpu", "--max-nodes", "5"])
    assert r.exit_code == 0, r.output
    assert ComputeTarget(ws, "cpu").config["max_concurrent_runs"] == 5


def test_dialog_worker_edit_replaces_create_refuses_a_taken_name(ws):
    from mltrain_desktop.gui.dialogs.compute_dialog import save_target
    ComputeTarget.create(ws, "cpu", LocalCompute.provisioning_configuration(max_concurrent_runs=2))
    d = save_target(ws, None, "cpu", "local", {"max_concurrent_runs": 3}, creating=False)
    assert d["name"] == "cpu" and ComputeTarget(ws, "cpu").config["max_concurrent_runs"] == 3
    with pytest.raises(ComputeTargetException, match="already exists"):
        save_target(ws, None, "cpu", "local", {"max_concurrent_runs": 4}, creating=True)


def test_same_configuration_on_a_failed_target_probes_it_again(ws, tmp_path):
    import os
    import sys
    python = tmp_path / "python9"
    cfg = dict(max_concurrent_runs=1, python=str(python))
    assert ComputeTarget.create(ws, "later", LocalCompute.provisioning_configuration(**cfg)).provisioning_state == "Failed"
    os.symlink(sys.executable, python)                    # the interpreter is there now
    assert ComputeTarget.create(ws, "later", LocalCompute.provisioning_configuration(**cfg)).provisioning_state \
        == "Succeeded"
