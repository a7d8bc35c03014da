"""User values that would reach a folder, a command line or a Dockerfile are checked when given.

Regression tests for what the chaos suite's fuzzing found (issue 14, B4-B9, B14): each bad value
gets a clear error naming it and what to do, and nothing is stored or written for it.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mltrain_desktop.core import Dataset, Model
from mltrain_desktop.core.errors import DatasetError, ModelError, UserErrorException
from mltrain_desktop.core.run_spec import build_spec


@pytest.fixture
def dataset(ws, tmp_path):
    (tmp_path / "d.txt").write_text("data")
    return Dataset.File.from_files(path=[str(tmp_path / "d.txt")]).register(ws, "train data")


def _spec(tmp_path, **kw):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "job.py").write_text("")
    kw.setdefault("arguments", [])
    return build_spec(source_directory=src, entry_script="job.py", compute_target="local", **kw)


# -- B4: a pid that names no process --------------------------------------------------------------
@pytest.mark.parametrize("pid", [None, 0, -1, -12345])
def test_a_pid_that_is_not_positive_is_not_alive(pid):
    from mltrain_desktop.adapters.process import is_same_process_alive
    assert is_same_process_alive(pid, None) is False
    assert is_same_process_alive(pid, 1.0) is False


def test_process_liveness_follows_the_real_process():
    import time
    import psutil
    from mltrain_desktop.adapters.process import is_same_process_alive, process_identity
    me = os.getpid()
    assert is_same_process_alive(me, process_identity(me))
    assert is_same_process_alive(me, None)
    assert not is_same_process_alive(me, process_identity(me) - 100)  # the pid, reused by another process
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    ct = process_identity(child.pid)
    deadline = time.monotonic() + 20
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not is_same_process_alive(child.pid, ct)  # exited, not reaped yet
    child.wait()
    assert not is_same_process_alive(child.pid, ct)


def test_recovery_and_the_cli_work_while_a_supervisor_is_claimed(ws, make_script):
    """A claim (supervisor_pid -1: a client restarting the supervisor) no longer breaks other clients."""
    import time
    import psutil
    from mltrain_desktop.core import Experiment
    from mltrain_desktop.store import runs as run_rows
    from mltrain_desktop.train.estimator import Estimator
    src = make_script("import time\ntime.sleep(300)\n")
    run = Experiment(ws, "claim").submit(Estimator(source_directory=str(src), entry_script="job.py",
                                                   compute_target="local"))
    deadline = time.monotonic() + 60
    while run.get_status() != "Running" and time.monotonic() < deadline:
        time.sleep(0.1)
    sup = psutil.Process(run._row()["supervisor_pid"])
    sup.kill()
    sup.wait(10)
    assert run_rows.claim_supervisor(ws.db.conn, run.id, sup.pid)
    ws.recover()  # raised ValueError (psutil) for pid -1
    env = {k: v for k, v in os.environ.items() if k != "MLTRAIN_WORKSPACE"}
    r = subprocess.run([sys.executable, "-m", "mltrain_desktop.cli", "-w", str(ws.path), "run", "list"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert run.id in r.stdout


# -- B5: dataset input names ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../escaped", "..", ".", "a/b", "a\\b", "/abs", "a\x00b", "a\nb", "1st",
                                  "with space", "", "x" * 65, "dash-ed", None, 3])
def test_a_dataset_input_name_must_be_an_identifier(dataset, name):
    with pytest.raises(DatasetError, match="dataset input name .* is not valid: use 1 to 64 letters"):
        dataset.as_named_input(name)


@pytest.mark.parametrize("name", ["mnist", "_x", "Train_Data2", "x" * 64])
def test_identifiers_are_accepted_as_input_names(dataset, name):
    assert dataset.as_named_input(name).as_download().to_spec()["input"] == name


def test_a_dataset_named_with_spaces_gets_a_valid_default_input_name(dataset, tmp_path):
    from mltrain_desktop.core.dataset import input_name_for
    assert dataset.as_mount().name == "train_data"
    assert input_name_for("3 sets-of/data") == "_3_sets_of_data"
    assert input_name_for("../..") == "input" and input_name_for(None) == "input"
    spec = _spec(tmp_path, arguments=[dataset.as_download().to_spec()])
    assert spec["arguments"][0]["input"] == "train_data"


def test_the_cli_names_the_input_of_any_dataset_validly(ws, tmp_path, make_script):
    """``dataset:NAME`` on the command line: a dataset named '2-sets' becomes input '_2_sets'."""
    (tmp_path / "d.txt").write_text("data")
    Dataset.File.from_files(path=[str(tmp_path / "d.txt")]).register(ws, "2-sets")
    src = make_script("import os, sys\nprint('inputs', sorted(k for k in os.environ if k.startswith('MLTRAIN_INPUT_')),"
                      " open(os.path.join(sys.argv[1], 'd.txt')).read(), flush=True)\n")
    env = {k: v for k, v in os.environ.items() if k != "MLTRAIN_WORKSPACE"}
    r = subprocess.run([sys.executable, "-m", "mltrain_desktop.cli", "-w", str(ws.path), "run", "submit", "-e",
                        "cli", "-s", str(src), "-c", "job.py", "--wait", "--", "dataset:2-sets:download"],
                       capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "inputs ['MLTRAIN_INPUT__2_sets'] data" in r.stdout


def test_a_stored_spec_with_a_bad_input_name_is_refused(dataset, tmp_path):
    item = dict(dataset.as_named_input("ok").as_download().to_spec(), input="../../../x")
    with pytest.raises(DatasetError, match="input name '../../../x'"):
        _spec(tmp_path, arguments=["--data", item])


# -- B6: model names ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [".", "..", "a/b", "a\\b", "a:b", "a\x00b", "a\nb", "tab\tname", "\x7f",
                                  "line\u2028sep", "", "   ", "n" * 201, None])
def test_a_model_name_that_is_not_one_folder_name_is_refused(ws, tmp_path, name):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "weights").write_text("1")
    before = sorted(p.relative_to(ws.path) for p in ws.path.rglob("*") if "workspace.db" not in p.name)
    with pytest.raises(ModelError, match="model_name must be a name such as"):
        Model.register(ws, str(tmp_path / "m"), name)
    after = sorted(p.relative_to(ws.path) for p in ws.path.rglob("*") if "workspace.db" not in p.name)
    assert after == before
    assert Model.list(ws) == []


def test_a_model_named_like_a_version_number_keeps_its_files(ws, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "weights").write_text("1")
    one = Model.register(ws, str(tmp_path / "m"), "1")
    dots = Model.register(ws, str(tmp_path / "m"), "...")  # a plain folder name, unlike '.' and '..'
    assert (one.local_path / "weights").read_text() == "1"
    assert dots.local_path.parent.parent.name == "..." and (dots.local_path / "weights").is_file()


# -- B7, B9: pip packages, the framework version and the custom base image ---------------------------
@pytest.mark.parametrize("version", ["2.21$(touch PWNED)", "2.21; rm -rf /", "2.21\nRUN x", "latest", "2..1", ""])
def test_a_framework_version_that_is_not_a_version_is_refused(tmp_path, version):
    with pytest.raises(UserErrorException, match="is not a version"):
        _spec(tmp_path, framework_version=version)


@pytest.mark.parametrize("version, kept", [("2.21", "2.21"), (" 2.21.0 ", "2.21.0"), (2, "2"), (None, None)])
def test_framework_versions_are_kept_as_typed(tmp_path, version, kept):
    assert _spec(tmp_path, framework_version=version)["environment"]["framework_version"] == kept


def test_a_stored_spec_with_a_bad_framework_version_is_refused_before_any_build(tmp_path):
    from mltrain_desktop.adapters.docker.images import environment_spec
    spec = _spec(tmp_path)
    spec["environment"]["framework_version"] = "2.21`id`"
    with pytest.raises(UserErrorException, match="is not a version"):
        environment_spec(spec, {}, "base:1")


@pytest.mark.parametrize("pkg", ["numpy\nRUN touch /x", "numpy\rRUN x", "a\x00b", "a\x1bb", "a\u2028b", "a\x85b"])
def test_a_pip_package_with_a_control_character_is_refused(tmp_path, pkg):
    with pytest.raises(UserErrorException, match="pip package .* holds the control character"):
        _spec(tmp_path, pip_packages=[pkg])


@pytest.mark.parametrize("pkg", ["--index-url=http://x.invalid/simple", "-r", "-rrequirements.txt", " -e ."])
def test_a_pip_package_that_is_an_option_is_refused(tmp_path, pkg):
    with pytest.raises(UserErrorException, match="starts with '-', so pip would read it as an option"):
        _spec(tmp_path, pip_packages=[pkg])


def test_pip_packages_are_kept_stripped(tmp_path):
    spec = _spec(tmp_path, pip_packages=[" pandas==2.2 ", "numpy>=1,<3\n", "pkg @ https://x.invalid/p.whl"])
    assert spec["environment"]["pip_packages"] == ["pandas==2.2", "numpy>=1,<3", "pkg @ https://x.invalid/p.whl"]


@pytest.mark.parametrize("image", ["base:1\nRUN touch /x", "base:1 RUN", "-v", "", "a\x00b", "img\u2029x"])
def test_a_custom_docker_image_that_is_not_one_reference_is_refused(tmp_path, image):
    with pytest.raises(UserErrorException, match="custom Docker image .* is not a valid image reference"):
        _spec(tmp_path, docker={"base_image": image})


def test_a_custom_docker_image_reaches_the_spec(tmp_path):
    from mltrain_desktop.train.estimator import Estimator
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "job.py").write_text("")
    spec = Estimator(source_directory=str(tmp_path / "s"), entry_script="job.py",
                     custom_docker_image=" registry:5000/team/img:2.1 ").to_spec()
    assert spec["environment"]["docker"]["base_image"] == "registry:5000/team/img:2.1"
    with pytest.raises(UserErrorException, match="custom Docker image"):
        Estimator(source_directory=str(tmp_path / "s"), entry_script="job.py",
                  custom_docker_image="img\nRUN x").to_spec()


# -- B8: what no process can receive --------------------------------------------------------------------
def test_a_nul_in_a_script_argument_is_refused(tmp_path):
    with pytest.raises(UserErrorException, match=r"script argument 1 \('a\\x00b'\) holds a NUL"):
        _spec(tmp_path, arguments=["--x", "a\x00b"])


@pytest.mark.parametrize("name", ["A-B", "1X", "", "A=B", "A B", "A\x00", "É", None, 3])
def test_an_environment_variable_name_must_be_an_identifier(tmp_path, name):
    with pytest.raises(UserErrorException, match="environment variable name .* is not valid"):
        _spec(tmp_path, environment_variables={name: "1"})


def test_a_nul_in_an_environment_value_is_refused(tmp_path):
    with pytest.raises(UserErrorException, match="environment variable A's value holds a NUL"):
        _spec(tmp_path, environment_variables={"A": "x\x00y"})


def test_good_arguments_and_variables_pass_verbatim(tmp_path):
    args = ["--lr", "0.1", "a b; $(touch x)", "line\nbreak", "ünïcode", "-"]
    env = {"_A": "x=y", "B2": "multi\nline", "C": 3}
    spec = _spec(tmp_path, arguments=args, environment_variables=env)
    assert spec["arguments"] == args
    assert spec["environment_variables"] == {"_A": "x=y", "B2": "multi\nline", "C": "3"}


def test_a_bad_value_submits_no_run(ws, make_script):
    from mltrain_desktop.core import Experiment
    from mltrain_desktop.train.estimator import Estimator
    src = make_script("print('ok')\n")
    with pytest.raises(UserErrorException, match="environment variable"):
        Experiment(ws, "bad").submit(Estimator(source_directory=str(src), entry_script="job.py",
                                               environment_variables={"A-B": "1"}))
    assert ws.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
    assert not list((ws.path / "runs").glob("*"))


# -- B14: a dataset is found by the name it was registered with ----------------------------------------
def test_a_dataset_is_found_by_the_name_it_was_registered_with(ws, tmp_path):
    (tmp_path / "d.txt").write_text("x")
    ds = Dataset.File.from_files(path=[str(tmp_path / "d.txt")]).register(ws, " sp ")
    assert ds.name == "sp"
    assert Dataset.get_by_name(ws, " sp ").version == 1
    assert Dataset.get_by_name(ws, "sp", version=1).version_id == ds.version_id
    assert [d.version for d in Dataset.get_versions(ws, "sp  ")] == [1]
    with pytest.raises(DatasetError, match="non-empty name"):
        Dataset.get_by_name(ws, "   ")
    with pytest.raises(DatasetError, match="no dataset named 'other'"):
        Dataset.get_by_name(ws, " other")
