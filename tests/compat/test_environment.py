"""Environment and CondaDependencies: files, registration, curated names, and what a run installs."""
from __future__ import annotations

import pytest

from mltrain_desktop.core.conda_dependencies import CondaDependencies, conda_executable
from mltrain_desktop.core.environment import Environment
from mltrain_desktop.core.errors import UserErrorException
from mltrain_desktop.core.script_run_config import ScriptRunConfig
from mltrain_desktop.train.dnn import TensorFlow


def test_conda_dependencies_round_trip_through_a_file(tmp_path):
    cd = CondaDependencies.create(conda_packages=["numpy=1.26"], pip_packages=["azureml-defaults", "six==1.16"])
    cd.add_conda_package("numpy=1.25")          # replaces the same package
    cd.add_pip_package("pillow")
    cd.add_channel("conda-forge")
    text = cd.serialize_to_string()
    assert "numpy=1.25" in text and "numpy=1.26" not in text and "- pillow" in text
    path = cd.save_to_file(str(tmp_path), "env.yml")
    env = Environment.from_conda_specification("from-file", path)
    back = env.python.conda_dependencies
    assert back.conda_packages == ["numpy=1.25", "pip"]
    assert back.pip_packages == ["azureml-defaults", "six==1.16", "pillow"]
    assert back.channels == ["conda-forge"]


@pytest.mark.parametrize("content, match", [
    ("dependencies: [a, b", "is not a conda environment file"),
    ("- just\n- a list\n", "needs a mapping with a 'dependencies:' list"),
    ("dependencies:\n  - ''\n", "must be a non-empty string"),
])
def test_bad_conda_files_say_what_is_wrong(tmp_path, content, match):
    f = tmp_path / "env.yml"
    f.write_text(content)
    with pytest.raises(UserErrorException, match=match):
        Environment.from_conda_specification("bad", str(f))
    with pytest.raises(UserErrorException, match="cannot read the conda file"):
        CondaDependencies(str(tmp_path / "missing.yml"))


def test_conda_only_packages_are_refused_naming_them_never_pip_installed(tmp_path):
    (tmp_path / "t.py").write_text("print(1)\n")
    env = Environment("needs-conda")
    env.python.conda_dependencies = CondaDependencies.create(conda_packages=["python=3.11", "cudatoolkit=11.2"],
                                                             pip_packages=["six"])
    with pytest.raises(UserErrorException, match="cudatoolkit=11.2") as info:
        ScriptRunConfig(str(tmp_path), "t.py", environment=env).to_spec()
    assert "python=3.11" not in str(info.value)   # python is what the interpreter already is
    if conda_executable() is None:
        assert "neither is on this machine" in str(info.value)
    with pytest.raises(UserErrorException, match="scipy"):
        TensorFlow(source_directory=str(tmp_path), entry_script="t.py", conda_packages=["scipy"]).to_spec()


def test_azureml_pip_packages_are_skipped_with_a_note(tmp_path):
    (tmp_path / "t.py").write_text("print(1)\n")
    env = Environment("tf")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["azureml-defaults", "six"])
    spec = ScriptRunConfig(str(tmp_path), "t.py", environment=env).to_spec()
    assert spec["environment"]["pip_packages"] == ["six"]
    assert "skipped azureml-defaults" in spec["environment"]["notes"][0]
    est = TensorFlow(source_directory=str(tmp_path), entry_script="t.py", pip_packages=["azureml-sdk", "six"])
    spec = est.to_spec()
    assert spec["environment"]["pip_packages"] == ["six"] and "azureml-sdk" in spec["environment"]["notes"][0]


def test_pip_requirements_file(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("# deps\nsix==1.16\n\nazureml-core  # the SDK\n")
    env = Environment.from_pip_requirements("req", str(req))
    assert env.python.conda_dependencies.pip_packages == ["six==1.16", "azureml-core"]
    assert env.run_environment()["pip_packages"] == ["six==1.16"]
    req.write_text("-r other.txt\n")
    with pytest.raises(UserErrorException, match="line 1: pip options such as '-r'"):
        Environment.from_pip_requirements("req", str(req))
    with pytest.raises(UserErrorException, match="cannot read the requirements file"):
        Environment.from_pip_requirements("req", str(tmp_path / "nope.txt"))


def test_register_get_list_versions(ws):
    env = Environment("my-env")
    env.python.conda_dependencies.add_pip_package("six")
    env.environment_variables["A"] = "1"
    assert env.register(ws).version == "1"
    env.python.conda_dependencies.add_pip_package("pillow")
    assert env.register(ws).version == "2"
    latest = Environment.get(ws, "my-env")
    assert latest.version == "2" and latest.python.conda_dependencies.pip_packages == ["six", "pillow"]
    assert latest.environment_variables == {"A": "1"}
    assert Environment.get(ws, "my-env", version="1").python.conda_dependencies.pip_packages == ["six"]
    listed = Environment.list(ws)
    assert listed["my-env"].version == "2" and "AzureML-TensorFlow-2.3-GPU" in listed
    with pytest.raises(UserErrorException, match=r"no environment named 'other'; registered: my-env"):
        Environment.get(ws, "other")
    with pytest.raises(UserErrorException, match="may hold letters, digits"):
        Environment("../escape").register(ws)
    with pytest.raises(UserErrorException, match="needs a name"):
        Environment("")


def test_curated_tensorflow_names_map_to_the_local_interpreter(ws, tmp_path):
    env = Environment.get(ws, name="AzureML-TensorFlow-2.0-GPU")
    assert env.name == "AzureML-TensorFlow-2.0-GPU"
    assert "runs on the local TensorFlow" in env.notes[0] and "2.0" in env.notes[0]
    (tmp_path / "t.py").write_text("print(1)\n")
    spec = ScriptRunConfig(str(tmp_path), "t.py", environment=env).to_spec()
    assert spec["environment"]["python"] is None and spec["environment"]["pip_packages"] == []
    assert "curated environment" in spec["environment"]["notes"][0]


def test_old_environment_arguments_still_work(tmp_path):
    (tmp_path / "t.py").write_text("print(1)\n")
    env = Environment(pip_packages=["six"], docker_image="python:3.11-slim", python="/usr/bin/python3")
    spec = ScriptRunConfig(str(tmp_path), "t.py", environment=env).to_spec()
    assert spec["environment"]["pip_packages"] == ["six"]
    assert spec["environment"]["docker"] == {"base_image": "python:3.11-slim"}
    assert spec["environment"]["python"] == "/usr/bin/python3"


def test_runs_submitted_while_compat_is_on_are_marked(tmp_path):
    from mltrain_desktop import compat
    (tmp_path / "t.py").write_text("print(1)\n")
    assert "compat" not in ScriptRunConfig(str(tmp_path), "t.py").to_spec()
    compat.enable()
    try:
        assert ScriptRunConfig(str(tmp_path), "t.py").to_spec()["compat"] is True
        assert TensorFlow(source_directory=str(tmp_path), entry_script="t.py").to_spec()["compat"] is True
    finally:
        compat.disable()
    assert "compat" not in TensorFlow(source_directory=str(tmp_path), entry_script="t.py").to_spec()
