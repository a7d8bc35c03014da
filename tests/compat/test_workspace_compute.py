"""Workspace's Azure attributes, Azure config.json, and compute status as the notebooks read them."""
from __future__ import annotations

import json

import pytest

from mltrain_desktop.core.compute import AmlCompute, ComputeTarget, LocalCompute
from mltrain_desktop.core.errors import WorkspaceError
from mltrain_desktop.core.workspace import Workspace


def test_workspace_azure_attributes(ws):
    assert (ws.location, ws.subscription_id, ws.resource_group) == ("local", "local", "local")
    assert ws.webservices == {}
    assert ws.get_details()["resourceGroup"] == "local"


def test_azure_config_maps_to_a_named_local_workspace_said_once(tmp_path, capsys):
    (tmp_path / ".azureml").mkdir()
    (tmp_path / ".azureml" / "config.json").write_text(json.dumps(
        {"subscription_id": "sub-1", "resource_group": "rg-1", "workspace_name": "azure-mapped"}))
    deeper = tmp_path / "notebooks" / "tf"
    deeper.mkdir(parents=True)
    first = Workspace.from_config(str(deeper))
    second = Workspace.from_config(str(deeper))
    assert first == second and first.name == "azure-mapped"
    assert (first.subscription_id, first.resource_group) == ("sub-1", "rg-1")
    assert capsys.readouterr().out.count("maps to the local workspace") == 1


def test_mltrain_config_wins_over_an_azure_one(ws, tmp_path):
    ws.write_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"workspace_name": "other"}))
    assert Workspace.from_config(str(tmp_path)) == ws


def test_mltrain_workspace_variable_is_the_last_resort(ws, tmp_path, monkeypatch):
    with pytest.raises(WorkspaceError, match="no .mltrain/config.json found"):
        Workspace.from_config(str(tmp_path))
    monkeypatch.setenv("MLTRAIN_WORKSPACE", str(ws.path))
    assert Workspace.from_config(str(tmp_path)) == ws


def test_get_status_is_the_old_string_with_serialize(ws):
    t = ComputeTarget.create(ws, "gpu-cluster", AmlCompute.provisioning_configuration(vm_size="STANDARD_NC6",
                                                                                      max_nodes=3))
    status = t.get_status()
    assert status == "Succeeded" and str(status) == "Succeeded" and f"{status}" == "Succeeded"
    d = status.serialize()
    assert d["provisioningState"] == "Succeeded" and d["targetNodeCount"] == 3 and d["vmSize"] == "STANDARD_NC6"
    assert d["nodeStateCounts"]["idleNodeCount"] == 3
    assert t.type == "AmlCompute" and t.kind == "local"
    plain = ComputeTarget.create(ws, "plain", LocalCompute.provisioning_configuration())
    assert plain.type == "local"
    broken = ComputeTarget.create(ws, "broken", LocalCompute.provisioning_configuration(python="/nonexistent/py"))
    assert broken.get_status() == "Failed" and broken.get_status().serialize()["nodeStateCounts"]["unusableNodeCount"]


def test_create_and_get_by_name_as_in_azure(recwarn):
    ws = Workspace.create(name="by-name-ws", subscription_id="sub-9", resource_group="rg-9", location="eastus",
                          exist_ok=True)
    assert ws.path.name == "by-name-ws" and ws.subscription_id == "sub-9" and ws.resource_group == "rg-9"
    assert any("'location' has no meaning" in str(w.message) for w in recwarn)
    assert Workspace.get(name="by-name-ws", subscription_id="sub-9", resource_group="rg-9") == ws
    with pytest.raises(WorkspaceError, match="no workspace named 'nope'"):
        Workspace.get(name="nope")
    with pytest.raises(WorkspaceError, match="must be a plain name"):
        Workspace.get(name="../x")
    with pytest.raises(TypeError, match="did you mean 'resource_group'"):
        Workspace.create(name="x", resource_grp="rg")
