"""A model deployed into a container on a Docker target, with the model's CPU and memory limits."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mltrain_desktop.core import Model, Workspace
from mltrain_desktop.core.compute import ComputeTarget
from mltrain_desktop.core.resource_configuration import ResourceConfiguration

pytestmark = [pytest.mark.docker, pytest.mark.slow]
IMAGE = "mltrain-tf:2.21"


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


def test_deploy_in_a_container_with_limits(tmp_path):
    client = _engine_or_fail()
    from mltrain_desktop.core.compute_docker import DockerCompute
    from mltrain_desktop.core.webservice import DockerWebservice
    ws = Workspace.create(tmp_path / "ws")
    mdir = tmp_path / "model"
    code = ("import sys, keras\nm = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])\n"
            "m.save(sys.argv[1] + '/model.keras')\nimport numpy as np, json\n"
            "print(json.dumps(m.predict(np.ones((2, 3)), verbose=0).tolist()))")
    mdir.mkdir()
    out = subprocess.run([sys.executable, "-c", code, str(mdir)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    expected = np.array(json.loads(out.stdout.strip().splitlines()[-1]))
    model = Model.register(ws, str(mdir), "tiny", model_framework="TensorFlow",
                           resource_configuration=ResourceConfiguration(cpu=1, memory_in_gb=1))
    ComputeTarget.create(ws, "docker1", DockerCompute.provisioning_configuration(image=IMAGE))
    svc = Model.deploy(ws, "tiny-in-docker", [model], deployment_config=DockerWebservice.deploy_configuration("docker1"))
    try:
        assert svc.state == "Healthy", svc.get_logs()
        got = np.array(svc.run({"instances": np.ones((2, 3)).tolist()})["predictions"])
        np.testing.assert_allclose(got, expected, atol=1e-5)
        info = client.api.inspect_container(svc._row()["container_id"])
        assert info["HostConfig"]["NanoCpus"] == 1_000_000_000
        assert info["HostConfig"]["Memory"] == 2**30
        assert info["HostConfig"]["PortBindings"]["8501/tcp"][0]["HostIp"] == "127.0.0.1"
        assert "loading keras model" in svc.get_logs()
    finally:
        cid = svc._row()["container_id"]
        svc.delete()
    assert not client.containers.list(all=True, filters={"id": cid})
