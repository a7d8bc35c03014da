"""Deployment as the notebooks do it: AZUREML_MODEL_DIR as Azure sets it, ACI config, service.run forms."""
from __future__ import annotations

import json
import textwrap
import urllib.request

import pytest

from mltrain_desktop.core.errors import UserErrorException
from mltrain_desktop.core.model import Model
from mltrain_desktop.core.webservice import AciWebservice, InferenceConfig, LocalWebservice, Webservice

# Written like the notebook's score.py: the model's folder is found under AZUREML_MODEL_DIR.
SCORE_PY = textwrap.dedent('''
    import json
    import os

    def init():
        global weights
        model_root = os.path.join(os.getenv('AZUREML_MODEL_DIR'), 'model')
        with open(os.path.join(model_root, 'weights.json')) as fh:
            weights = json.load(fh)

    def run(raw_data):
        data = json.loads(raw_data)['data']
        return [sum(w * x for w, x in zip(weights, row)) for row in data]
''')


@pytest.fixture
def service(ws, tmp_path):
    model_dir = tmp_path / "outputs" / "model"
    model_dir.mkdir(parents=True)
    (model_dir / "weights.json").write_text(json.dumps([1.0, 2.0, 3.0]))
    model = Model.register(ws, str(model_dir), "tf-mnist", model_framework="Custom")
    (tmp_path / "score.py").write_text(SCORE_PY)
    aciconfig = AciWebservice.deploy_configuration(cpu_cores=1, memory_gb=1, tags={"data": "mnist"},
                                                   description="digits")
    svc = Model.deploy(ws, "tf-mnist-svc", [model], InferenceConfig(entry_script="score.py",
                                                                    source_directory=str(tmp_path)), aciconfig)
    yield ws, svc
    svc.delete()


def test_score_py_finds_the_model_under_azureml_model_dir(service):
    ws, svc = service
    assert svc.state == "Healthy", svc.get_logs()
    test = json.dumps({"data": [[1, 1, 1], [0, 0, 1]]})
    assert svc.run(input_data=test) == [6.0, 3.0]
    assert svc.run(input_data=test.encode("utf-8")) == [6.0, 3.0]      # the notebook passes bytes
    assert svc.run(input_data={"data": [[1, 0, 0]]}) == [1.0]
    with pytest.raises(UserErrorException, match="cannot be sent"):
        svc.run(input_data={1, 2})
    assert ws.webservices["tf-mnist-svc"].name == "tf-mnist-svc"
    assert Webservice(ws, "tf-mnist-svc").scoring_uri == svc.scoring_uri
    req = urllib.request.Request(svc.scoring_uri, data=test.encode(), method="POST",
                                 headers={"Content-Type": "application/json"})  # ACI's default: no key
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert json.loads(resp.read()) == [6.0, 3.0]


def test_local_webservice_port_configuration(ws, tmp_path):
    cfg = LocalWebservice.deploy_configuration(port=0)
    assert cfg["kind"] == "local" and cfg["port"] == 0
    with pytest.raises(UserErrorException, match="not a TCP port"):
        LocalWebservice.deploy_configuration(port="8890")


@pytest.mark.docker
@pytest.mark.slow
def test_aci_configuration_deploys_into_a_container_when_a_docker_target_exists(ws, tmp_path):
    import os
    image = "mltrain-tf:2.21"
    try:
        import docker
        client = docker.from_env()
        client.images.get(image)
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI"):
            pytest.fail(f"CI must have a Docker engine with {image}: {exc}")
        pytest.skip(f"no Docker engine with {image} here ({exc})")
    from mltrain_desktop.core.compute import ComputeTarget
    from mltrain_desktop.core.compute_docker import DockerCompute
    ComputeTarget.create(ws, "docker1", DockerCompute.provisioning_configuration(image=image))
    model_dir = tmp_path / "outputs" / "model"
    model_dir.mkdir(parents=True)
    (model_dir / "weights.json").write_text(json.dumps([2.0, 0.0, 0.0]))
    model = Model.register(ws, str(model_dir), "aci-model", model_framework="Custom")
    (tmp_path / "score.py").write_text(SCORE_PY)
    svc = Model.deploy(ws, "aci-in-docker", [model], InferenceConfig(entry_script="score.py",
                                                                     source_directory=str(tmp_path)),
                       AciWebservice.deploy_configuration(cpu_cores=0.5, memory_gb=0.5))
    cid = svc._row()["container_id"]
    try:
        assert svc.state == "Healthy", svc.get_logs()
        assert svc._row()["kind"] == "docker"
        assert svc.run(input_data=b'{"data": [[3, 1, 1]]}') == [6.0]
        info = client.api.inspect_container(cid)
        assert info["HostConfig"]["NanoCpus"] == 500_000_000 and info["HostConfig"]["Memory"] == 2**29
    finally:
        svc.delete()
    assert not client.containers.list(all=True, filters={"id": cid})
