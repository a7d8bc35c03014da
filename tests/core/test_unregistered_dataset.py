"""An unregistered dataset used as a run's input (``Dataset.File.from_files(...).as_named_input('x').as_mount()``):
the spec names its files, and submission registers it as an auto-named version, reused while its files are
the same, as Azure registers such a dataset anonymously."""
from __future__ import annotations

import pytest

from mltrain_desktop.core import ScriptRunConfig
from mltrain_desktop.core.dataset import Dataset, register_inputs
from mltrain_desktop.core.errors import DatasetError


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.txt").write_text("one")
    (folder / "b.txt").write_text("two")
    return folder


def test_the_spec_names_the_sources_and_registration_fills_the_version(ws, data, make_script):
    ds = Dataset.File.from_files(path=str(data))
    src = make_script("print('hi')")
    spec = ScriptRunConfig(source_directory=str(src), script="job.py",
                           arguments=["--data", ds.as_named_input("x").as_mount()]).to_spec()
    item = spec["arguments"][1]
    assert item["input"] == "x" and item["version_id"] is None and item["sources"] == [str(data)]
    register_inputs(ws, spec["arguments"])
    assert "sources" not in item and item["dataset"].startswith("anonymous-") and item["version"] == 1
    got = Dataset.get_by_id(ws, item["version_id"])
    assert sorted(f["path"] for f in got.files) == ["a.txt", "b.txt"]
    assert (got.mount_path() / "a.txt").read_text() == "one"


def test_same_files_reuse_the_version_changed_files_add_one(ws, data):
    first = [Dataset.File.from_files(path=str(data)).as_named_input("x").to_spec()]
    again = [Dataset.File.from_files(path=str(data)).as_named_input("x").as_download().to_spec()]
    register_inputs(ws, first)
    register_inputs(ws, again)
    assert again[0]["version_id"] == first[0]["version_id"] and again[0]["mode"] == "download"
    (data / "b.txt").write_text("changed")
    third = [Dataset.File.from_files(path=str(data)).as_named_input("x").to_spec()]
    register_inputs(ws, third)
    assert third[0]["dataset"] == first[0]["dataset"] and third[0]["version"] == 2
    assert (Dataset.get_by_id(ws, third[0]["version_id"]).mount_path() / "b.txt").read_text() == "changed"
    assert (Dataset.get_by_id(ws, first[0]["version_id"]).mount_path() / "b.txt").read_text() == "two"


def test_registered_inputs_are_left_alone_and_bad_inputs_refused(ws, data):
    reg = Dataset.File.from_files(path=str(data)).register(ws, "mine")
    items = [reg.as_named_input("x").to_spec()]
    before = dict(items[0])
    register_inputs(ws, items)
    assert items[0] == before
    with pytest.raises(DatasetError, match="does not exist"):
        Dataset.File.from_files(path=str(data / "nope"))
    gone = [Dataset.File.from_files(path=str(data / "*.csv")).as_named_input("y").to_spec()]
    with pytest.raises(DatasetError):
        register_inputs(ws, gone)               # a glob matching nothing: nothing registered
    assert [d.name for d in Dataset.list(ws)] == ["mine"]


def test_submitted_run_mounts_an_unregistered_dataset(ws, data, make_script):
    from mltrain_desktop.core import Experiment, ScriptRunConfig
    src = make_script("import os,sys; print('FILES', sorted(f for f in os.listdir(sys.argv[2]) if f[0] != '.'))")
    ds = Dataset.File.from_files(path=str(data))
    run = Experiment(ws, "e").submit(ScriptRunConfig(source_directory=str(src), script="job.py",
                                                     arguments=["--data", ds.as_named_input("x").as_mount()]))
    run.wait_for_completion()
    assert run.get_status() == "Completed"
    assert any(d.name.startswith("anonymous-") for d in Dataset.list(ws))
    assert "FILES [" in run.read_log()[0]
