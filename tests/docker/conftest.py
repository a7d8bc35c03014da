"""Docker test fixtures: an engine (started if none runs, as root) and the locally built images.

``scripts/ensure_dockerd.sh`` starts dockerd only if nothing answers (and this session then
stops it at the end); ``scripts/docker_base_image.sh`` builds mltrain-base:bookworm-py311 and
mltrain-tf:2.21 without Docker Hub, or reuses them (seconds when cached). After the session, no
container of any test workspace may remain.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from docker_helpers import REPO


def _engine_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def docker_api(tmp_path_factory):
    """A low-level client to a running engine that has the test images; skips where Docker cannot run."""
    if shutil.which("docker") is None:
        pytest.skip("the docker command is not installed (apt-get install docker.io)")
    pidfile = tmp_path_factory.mktemp("dockerd") / "dockerd.pid"
    if not _engine_answers():
        if os.geteuid() != 0:
            pytest.skip("no Docker engine answers and starting one needs root")
        r = subprocess.run(["bash", str(REPO / "scripts" / "ensure_dockerd.sh"), str(pidfile)],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            pytest.fail(f"could not start dockerd:\n{r.stdout}\n{r.stderr}")
    r = subprocess.run(["bash", str(REPO / "scripts" / "docker_base_image.sh")], capture_output=True, text=True,
                       timeout=1200)
    if r.returncode != 0:
        pytest.fail(f"building the test images failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    from mltrain_desktop.adapters.docker.engine import api_client
    api = api_client({})
    yield api
    base = str(Path(tmp_path_factory.getbasetemp()).resolve())
    leftovers = []
    for c in api.containers(all=True, filters={"label": "mltrain.workspace"}):
        if (c.get("Labels") or {}).get("mltrain.workspace", "").startswith(base):
            leftovers.append((c.get("Names") or [c["Id"]])[0])
            api.remove_container(c["Id"], force=True)
    api.close()
    subprocess.run(["bash", str(REPO / "scripts" / "stop_dockerd.sh"), str(pidfile)], capture_output=True, timeout=60)
    assert not leftovers, f"containers of test workspaces were left behind: {leftovers}"


@pytest.fixture
def no_leftovers(docker_api, tmp_path):
    """After the test: no container labelled for any workspace under tmp_path remains."""
    yield
    base = str(tmp_path.resolve())
    deadline = time.monotonic() + 10
    while True:
        left = [c for c in docker_api.containers(all=True, filters={"label": "mltrain.workspace"})
                if (c.get("Labels") or {}).get("mltrain.workspace", "").startswith(base)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    for c in left:
        docker_api.remove_container(c["Id"], force=True)
    assert not left, f"containers left behind: {[c['Names'] for c in left]}"


@pytest.fixture
def hanging_index(docker_api):
    """A pip index URL whose server accepts connections and never answers (a build that hangs)."""
    import ipaddress
    import socket
    import threading
    net = docker_api.inspect_network("bridge")
    cfg = (net.get("IPAM") or {}).get("Config") or [{}]
    gateway = cfg[0].get("Gateway") or str(next(ipaddress.ip_network(cfg[0]["Subnet"]).hosts()))
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", 0))
    srv.listen(16)
    srv.settimeout(0.5)
    held, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield f"http://{gateway}:{srv.getsockname()[1]}/simple"
    stop.set()
    t.join(timeout=2)
    for c in held:
        c.close()
    srv.close()
