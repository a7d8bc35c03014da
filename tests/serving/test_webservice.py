"""Model.deploy end to end: a real sample run, its model served over HTTP, answers checked."""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import numpy as np
import psutil
import pytest

from mltrain_desktop.core import Experiment, Model, Workspace
from mltrain_desktop.core.errors import UserErrorException
from mltrain_desktop.core.sample_flow import register_sample_dataset, sample_estimator
from mltrain_desktop.core.samples import SUBSET_DIR
from mltrain_desktop.core.webservice import InferenceConfig, Webservice, WebserviceException

pytestmark = pytest.mark.slow


def _test_images(n=5):
    import gzip
    with gzip.open(SUBSET_DIR / "t10k-images-idx3-ubyte.gz") as fh:
        data = np.frombuffer(fh.read(), np.uint8, offset=16)
    return (data[: n * 784].reshape(n, 28, 28) / 255.0).astype("float32")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    ws = Workspace.create(root / "ws")
    ds = register_sample_dataset(ws, full=False)
    run = Experiment(ws, "tf-mnist").submit(sample_estimator(ws, ds, epochs=1))
    run.wait_for_completion()
    model = run.register_model("tf-dnn-mnist", "outputs/model", model_framework=Model.Framework.TENSORFLOW)
    x = _test_images()
    code = ("import sys, json, numpy as np, tensorflow as tf\n"
            "m = tf.keras.models.load_model(sys.argv[1] + '/model.keras')\n"
            "x = np.array(json.loads(sys.argv[2]), dtype='float32')\n"
            "print(json.dumps(m.predict(x, verbose=0).tolist()))")
    out = subprocess.run([sys.executable, "-c", code, str(model.local_path), json.dumps(x.tolist())],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    expected = np.array(json.loads(out.stdout.strip().splitlines()[-1]))
    svc = Model.deploy(ws, "tensorflow-web-service", [model])
    yield ws, model, svc, x, expected
    for w in Webservice.list(ws):
        w.delete()


def test_predictions_match_model_predict_in_both_formats(deployed):
    ws, model, svc, x, expected = deployed
    assert svc.state == "Healthy", svc.get_logs()
    assert svc.scoring_uri.startswith("http://127.0.0.1:")
    rows = svc.run({"instances": x.tolist()})["predictions"]
    np.testing.assert_allclose(np.array(rows), expected, atol=1e-5)
    cols = svc.run(json.dumps({"inputs": x.tolist()}))["outputs"]
    np.testing.assert_allclose(np.array(cols), expected, atol=1e-5)
    status = json.loads(urllib.request.urlopen(urllib.request.Request(
        svc.base_uri + "/v1/models/tf-dnn-mnist", headers={"Authorization": f"Bearer {svc.get_keys()[0]}"})).read())
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    assert svc.stats()["requests"] >= 2


def test_bad_requests_get_4xx_and_the_service_keeps_serving(deployed):
    ws, model, svc, x, expected = deployed
    with pytest.raises(WebserviceException, match="answered 400"):
        svc.run("this is not json")
    with pytest.raises(WebserviceException, match="answered 400"):
        svc.run({"instances": [[1, 2, 3]]})
    req = urllib.request.Request(svc.scoring_uri, data=b'{"instances": []}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)
    assert err.value.code == 401
    assert len(svc.run({"instances": x[:1].tolist()})["predictions"]) == 1


def test_found_again_by_another_client_and_key_rotation(deployed):
    ws, model, svc, x, expected = deployed
    other = Webservice(Workspace(ws.path), "tensorflow-web-service")
    assert other.state == "Healthy" and other.scoring_uri == svc.scoring_uri
    old = svc.get_keys()[0]
    new = other.regen_key()
    assert new != old
    import time
    time.sleep(0.1)
    assert len(svc.run({"instances": x[:1].tolist()})["predictions"]) == 1
    req = urllib.request.Request(svc.scoring_uri, data=json.dumps({"instances": x[:1].tolist()}).encode(),
                                 method="POST", headers={"Authorization": f"Bearer {old}"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)
    assert err.value.code == 401
    assert [w.name for w in Webservice.list(ws)] == ["tensorflow-web-service"]


def test_same_name_refused_and_bad_names(deployed):
    ws, model, svc, x, expected = deployed
    with pytest.raises(WebserviceException, match="already exists"):
        Model.deploy(ws, "tensorflow-web-service", [model])
    with pytest.raises(UserErrorException, match="not valid"):
        Model.deploy(ws, "Bad Name!", [model])
    with pytest.raises(UserErrorException, match="exactly one"):
        Model.deploy(ws, "two", [model, model])


def test_a_model_that_is_not_loadable_fails_cleanly(deployed, tmp_path):
    ws, model, svc, x, expected = deployed
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "model.keras").write_bytes(b"definitely not a keras file")
    bad = Model.register(ws, str(junk), "junk-model", model_framework="TensorFlow")
    before = [m.id for m in Model.list(ws)]
    broken = Model.deploy(ws, "broken", [bad])
    assert broken.state == "Failed"
    assert broken.state_detail and "load" in broken.state_detail.lower()
    assert broken.get_logs()
    assert [m.id for m in Model.list(ws)] == before
    broken.delete()


def test_entry_script_deployment_and_delete_stops_the_process(deployed, tmp_path):
    ws, model, svc, x, expected = deployed
    (tmp_path / "score.py").write_text(
        "import json, os\n"
        "def init():\n    global d\n    d = os.environ['AZUREML_MODEL_DIR']\n"
        "def run(raw):\n    return {'echo': json.loads(raw), 'dir_ok': os.path.exists(d)}\n")
    custom = Model.deploy(ws, "custom", [model], inference_config=InferenceConfig(
        entry_script="score.py", source_directory=str(tmp_path)))
    assert custom.state == "Healthy", custom.get_logs()
    assert custom.run({"a": 1}) == {"echo": {"a": 1}, "dir_ok": True}
    pid = custom._row()["pid"]
    custom.delete()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    with pytest.raises(WebserviceException, match="no endpoint named 'custom'"):
        Webservice(ws, "custom")
