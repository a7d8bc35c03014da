"""The Docker adapter's pure parts: the label namespace and the hardened container builder (no engine)."""
from __future__ import annotations

from pathlib import Path

import pytest

from mltrain_desktop.adapters.docker import labels as lb
from mltrain_desktop.adapters.docker.containers import container_kwargs, hardened_options, memory_limit


def test_run_and_endpoint_labels_name_the_workspace_and_the_owner(tmp_path):
    ws = tmp_path / "a" / ".." / "ws"
    run = lb.run_labels(ws, "exp_1_x", "docker1", "job")
    assert run == {"mltrain.workspace": str((tmp_path / "ws").resolve()), "mltrain.owner.kind": "run",
                   "mltrain.owner.id": "exp_1_x", "mltrain.run": "exp_1_x", "mltrain.target": "docker1",
                   "mltrain.role": "job"}
    ep = lb.endpoint_labels(ws, "ep1")
    assert ep == {"mltrain.workspace": str((tmp_path / "ws").resolve()), "mltrain.owner.kind": "endpoint",
                  "mltrain.owner.id": "ep1", "mltrain.endpoint": "ep1"}
    assert lb.owner_of(run) == ("run", "exp_1_x") and lb.owner_of(ep) == ("endpoint", "ep1")


def test_containers_made_before_the_owner_labels_are_read_by_their_run_or_endpoint_label():
    assert lb.owner_of({lb.WORKSPACE: "/w", lb.RUN: "r1"}) == ("run", "r1")
    assert lb.owner_of({lb.WORKSPACE: "/w", lb.ENDPOINT: "e1"}) == ("endpoint", "e1")
    assert lb.owner_of({lb.WORKSPACE: "/w"}) is None
    # an owner kind we do not know is nobody's: never cleaned
    assert lb.owner_of({lb.OWNER_KIND: "other", lb.OWNER_ID: "x", lb.RUN: "r1"}) is None


def test_workspace_filters(tmp_path):
    assert lb.workspace_filters(tmp_path) == {"label": [f"mltrain.workspace={tmp_path.resolve()}"]}
    assert lb.workspace_filters(tmp_path, {lb.RUN: "r1"})["label"][1] == "mltrain.run=r1"


def test_the_hardened_options():
    o = hardened_options(uid=1000, gid=1001, cpus=1.5, memory_gb=2)
    assert o["user"] == "1000:1001" and o["init"] is True and o["privileged"] is False
    assert o["security_opt"] == ["no-new-privileges"]
    assert o["log_config"]["Type"] == "json-file" and o["log_config"]["Config"] == {"max-size": "100m", "max-file": "3"}
    assert o["nano_cpus"] == 1_500_000_000 and o["mem_limit"] == "2048m"
    bare = hardened_options()
    assert "nano_cpus" not in bare and "mem_limit" not in bare and bare["user"].count(":") == 1
    assert memory_limit(0.5) == "512m"


def test_the_builder_keeps_the_hardening_and_takes_the_rest():
    kw = container_kwargs("img", {"k": "v"}, uid=1, gid=2, command=["x"], name="n")
    assert kw["image"] == "img" and kw["labels"] == {"k": "v"} and kw["detach"] is True
    assert kw["command"] == ["x"] and kw["name"] == "n" and kw["user"] == "1:2"
    from docker.models.containers import _create_container_args
    hc = _create_container_args({**kw, "version": "1.41"})["host_config"]
    assert hc["Init"] is True and hc["SecurityOpt"] == ["no-new-privileges"]
    with pytest.raises(ValueError, match="privileged, user are set by the hardening"):
        container_kwargs("img", {}, privileged=True, user="0:0")


def test_no_product_module_spells_the_workspace_label_but_the_adapter():
    package = Path(__file__).resolve().parents[2] / "mltrain_desktop"
    spelled = [p.relative_to(package).as_posix() for p in package.rglob("*.py")
               if '"mltrain.workspace"' in p.read_text(encoding="utf-8")]
    assert spelled == ["adapters/docker/labels.py"]
