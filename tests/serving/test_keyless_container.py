"""A keyless endpoint in a container (ACI's default, auth_enabled=False) on a real Docker engine: a plain
POST reaches it; with auth_enabled=True the same container asks for the key."""
from __future__ import annotations

import json
import os
import textwrap
import urllib.error
import urllib.request

import pytest

from mltrain_desktop.core import Model, Workspace
from mltrain_desktop.core.compute import ComputeTarget
from mltrain_desktop.core.webservice import AciWebservice, DockerWebservice, InferenceConfig, WebserviceException

pytestmark = [pytest.mark.docker, pytest.mark.slow]
IMAGE = "mltrain-tf:2.21"
SCORE_PY = textwrap.dedent('''
    import json, os
    def init():
        global w
        w = json.load(open(os.path.join(os.getenv('AZUREML_MODEL_DIR'), 'model', 'w.json')))
    def run(raw):
        return [sum(a * b for a, b in zip(w, row)) for row in json.loads(raw)['data']]
''')


def _engine_or_fail():
    try:
        import docker
        client = docker.from_env()
        client.images.get(IMAGE)
        return client
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI"):
            pytest.fail(f"CI must have a Docker engine with {IMAGE} (scripts/test.sh builds it): {exc}")
        pytest.skip(f"no Docker engine with {IMAGE} here ({exc}); scripts/test.sh starts one and builds it")


def _post(uri, headers=None):
    req = urllib.request.Request(uri, data=b'{"data": [[1, 2]]}', method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def test_keyless_and_keyed_endpoints_in_containers(tmp_path):
    client = _engine_or_fail()
    from mltrain_desktop.core.compute_docker import DockerCompute
    ws = Workspace.create(tmp_path / "ws")
    mdir = tmp_path / "outputs" / "model"
    mdir.mkdir(parents=True)
    (mdir / "w.json").write_text("[1.0, 10.0]")
    (tmp_path / "score.py").write_text(SCORE_PY)
    model = Model.register(ws, str(mdir), "w", model_framework="Custom")
    ComputeTarget.create(ws, "docker1", DockerCompute.provisioning_configuration(image=IMAGE))
    ic = InferenceConfig(entry_script="score.py", source_directory=str(tmp_path))
    open_svc = Model.deploy(ws, "open-in-docker", [model], ic, AciWebservice.deploy_configuration(cpu_cores=0.5))
    keyed = Model.deploy(ws, "keyed-in-docker", [model], ic,
                         DockerWebservice.deploy_configuration("docker1"))     # a key, as before
    try:
        assert open_svc.state == "Healthy", open_svc.get_logs()
        assert open_svc._row()["kind"] == "docker" and not open_svc.auth_enabled
        assert _post(open_svc.scoring_uri) == (200, [21.0])
        assert open_svc.run({"data": [[1, 2]]}) == [21.0]
        with pytest.raises(WebserviceException, match="deployed without auth"):
            open_svc.get_keys()
        assert keyed.state == "Healthy", keyed.get_logs()
        assert _post(keyed.scoring_uri)[0] == 401
        assert _post(keyed.scoring_uri, {"Authorization": f"Bearer {keyed.get_keys()[0]}"}) == (200, [21.0])
    finally:
        cids = [s._row()["container_id"] for s in (open_svc, keyed)]
        open_svc.delete()
        keyed.delete()
    for cid in cids:
        with pytest.raises(Exception):
            client.containers.get(cid)
