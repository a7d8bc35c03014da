"""Keyless endpoints as on ACI: a plain POST to ``scoring_uri`` reaches an ``auth_enabled=False`` endpoint,
a keyed one answers 401 without its key; ``get_keys()``, the CLI and the window's endpoint view say when
there is no key; ``Model.deploy(show_output=True)`` and ``Model.get_model_path`` inside a deployment."""
from __future__ import annotations

import json
import textwrap
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

from mltrain_desktop.cli import cli
from mltrain_desktop.core.model import Model
from mltrain_desktop.core.webservice import (AciWebservice, DockerWebservice, InferenceConfig, LocalWebservice,
                                              WebserviceException)
from mltrain_desktop.core.errors import UserErrorException

pytestmark = pytest.mark.slow

# Finds its weights through Model.get_model_path, as the seed's scoring scripts do.
SCORE_PY = textwrap.dedent('''
    import json
    import os
    from mltrain_desktop.core.model import Model

    def init():
        global weights
        with open(os.path.join(Model.get_model_path('lin'), 'weights.json')) as fh:
            weights = json.load(fh)

    def run(raw_data):
        return [sum(w * x for w, x in zip(weights, row)) for row in json.loads(raw_data)['data']]
''')
BODY = json.dumps({"data": [[1, 1, 1], [0, 0, 1]]}).encode()


def _post(uri: str, headers: dict | None = None) -> tuple[int, object]:
    req = urllib.request.Request(uri, data=BODY, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _deploy(ws, tmp_path, name, config, **kw):
    model_dir = tmp_path / "outputs" / "model"
    if not model_dir.is_dir():
        model_dir.mkdir(parents=True)
        (model_dir / "weights.json").write_text(json.dumps([1.0, 2.0, 3.0]))
        (tmp_path / "score.py").write_text(SCORE_PY)
    model = Model.register(ws, str(model_dir), "lin", model_framework="Custom")
    return Model.deploy(ws, name, [model], InferenceConfig(entry_script="score.py", source_directory=str(tmp_path)),
                        config, **kw)


def test_aci_default_is_keyless_and_a_plain_post_answers(ws, tmp_path, capsys):
    svc = _deploy(ws, tmp_path, "aci-open", AciWebservice.deploy_configuration(cpu_cores=1, memory_gb=1),
                  show_output=True)
    try:
        assert "aci-open: Healthy" in capsys.readouterr().out       # show_output printed the state
        assert svc.state == "Healthy", svc.get_logs()
        assert svc.auth_enabled is False and svc.as_dict()["auth_enabled"] is False
        assert _post(svc.scoring_uri) == (200, [6.0, 3.0])            # no Authorization header at all
        assert _post(svc.scoring_uri, {"Authorization": "Bearer whatever"}) == (200, [6.0, 3.0])
        assert svc.run(BODY) == [6.0, 3.0]
        with pytest.raises(WebserviceException, match="deployed without auth.*auth_enabled=True"):
            svc.get_keys()
        with pytest.raises(WebserviceException, match="deployed without auth"):
            svc.regen_key()
        assert not (svc.folder / "key").exists()
        # the window's endpoint view reads endpoint_detail
        from mltrain_desktop.gui.views.endpoint_tasks import endpoint_detail
        assert endpoint_detail(ws, None, "aci-open")["key"] == "no key (auth disabled)"
        # the CLI says the same, and refuses to rotate a key that does not exist
        keys = CliRunner().invoke(cli, ["--workspace", str(ws.path), "endpoint", "keys", "aci-open"])
        assert keys.exit_code == 0 and "no key (auth disabled)" in keys.output, keys.output
        rot = CliRunner().invoke(cli, ["--workspace", str(ws.path), "endpoint", "keys", "aci-open", "--rotate"])
        assert rot.exit_code != 0 and "no key to rotate" in rot.output, rot.output
        # it stays keyless when started again
        svc.stop()
        assert svc.start() == "Healthy"
        assert _post(svc.scoring_uri) == (200, [6.0, 3.0])
    finally:
        svc.delete()


def test_aci_auth_enabled_needs_the_key(ws, tmp_path):
    svc = _deploy(ws, tmp_path, "aci-keyed", AciWebservice.deploy_configuration(auth_enabled=True))
    try:
        assert svc.state == "Healthy", svc.get_logs()
        assert svc.auth_enabled is True
        status, answer = _post(svc.scoring_uri)
        assert status == 401 and "Authorization: Bearer" in answer["error"]
        assert _post(svc.scoring_uri, {"Authorization": "Bearer wrong"})[0] == 401
        key = svc.get_keys()[0]
        assert _post(svc.scoring_uri, {"Authorization": f"Bearer {key}"}) == (200, [6.0, 3.0])
        assert svc.run(BODY) == [6.0, 3.0]
        from mltrain_desktop.gui.views.endpoint_tasks import endpoint_detail
        assert endpoint_detail(ws, None, "aci-keyed")["key"] == key
    finally:
        svc.delete()


def test_local_webservice_keyless_on_its_port_and_default_deploy_keyed(ws, tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    svc = _deploy(ws, tmp_path, "local-open", LocalWebservice.deploy_configuration(port=port))
    try:
        assert svc.state == "Healthy", svc.get_logs()
        assert svc.port == port and f":{port}/" in svc.scoring_uri
        assert _post(svc.scoring_uri) == (200, [6.0, 3.0])
    finally:
        svc.delete()
    keyed = _deploy(ws, tmp_path, "default-keyed", None)          # no deployment_config: keyed, as before
    try:
        assert keyed.auth_enabled and _post(keyed.scoring_uri)[0] == 401
        assert _post(keyed.scoring_uri, {"Authorization": f"Bearer {keyed.get_keys()[0]}"})[0] == 200
    finally:
        keyed.delete()


def test_bad_auth_enabled_values_are_refused():
    for make in (lambda: AciWebservice.deploy_configuration(auth_enabled="no"),
                 lambda: LocalWebservice.deploy_configuration(auth_enabled=1),
                 lambda: DockerWebservice.deploy_configuration("d1", auth_enabled=None)):
        with pytest.raises(UserErrorException, match="auth_enabled must be True"):
            make()


def test_get_model_path_in_a_deployment_folder(tmp_path, monkeypatch):
    holder = tmp_path / "holder"
    (holder / "model").mkdir(parents=True)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(holder))
    assert Model.get_model_path("whatever") == str(holder / "model")     # the single entry
    (holder / "lin").mkdir()
    assert Model.get_model_path("lin") == str(holder / "lin")            # the named model
    assert Model.get_model_path("other") == str(holder)                  # several, none named so


def test_cli_deploy_no_auth_and_keyed(ws, tmp_path):
    model_dir = tmp_path / "outputs" / "model"
    model_dir.mkdir(parents=True)
    (model_dir / "weights.json").write_text(json.dumps([1.0, 2.0, 3.0]))
    (tmp_path / "score.py").write_text(SCORE_PY)
    Model.register(ws, str(model_dir), "lin", model_framework="Custom")
    base = ["--workspace", str(ws.path), "endpoint", "deploy"]
    r = CliRunner().invoke(cli, base + ["cli-open", "lin", "--entry-script", str(tmp_path / "score.py"), "--no-auth"])
    assert r.exit_code == 0 and "no key (auth disabled)" in r.output, r.output
    r = CliRunner().invoke(cli, base + ["cli-keyed", "lin", "--entry-script", str(tmp_path / "score.py")])
    assert r.exit_code == 0 and "Authorization: Bearer" in r.output, r.output
    from mltrain_desktop.core.webservice import Webservice
    try:
        assert _post(Webservice(ws, "cli-open").scoring_uri) == (200, [6.0, 3.0])
        assert _post(Webservice(ws, "cli-keyed").scoring_uri)[0] == 401
    finally:
        for w in Webservice.list(ws):
            w.delete()
