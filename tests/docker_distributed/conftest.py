"""Fixtures for distributed runs on a Docker target: the Docker tests' engine fixture, reused by
import, and a check that no container or network of a test's workspace outlives the test."""
from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
for _d in (_TESTS / "docker", _TESTS / "distributed"):  # docker_helpers, dist_helpers
    if str(_d) not in sys.path:
        sys.path.insert(0, str(_d))

# tests/docker/conftest.py's fixtures, loaded under a name of their own (every conftest is "conftest")
_spec = importlib.util.spec_from_file_location("mltrain_docker_test_fixtures", _TESTS / "docker" / "conftest.py")
_docker_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_docker_fixtures)
docker_api = _docker_fixtures.docker_api

from dc_helpers import workspace_resources  # noqa: E402


@pytest.fixture
def no_leftovers(docker_api, tmp_path):
    """After the test: no container and no network labelled for a workspace under tmp_path."""
    yield
    deadline = time.monotonic() + 10
    while True:
        containers, networks = workspace_resources(docker_api, tmp_path)
        if (not containers and not networks) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    for c in containers:
        docker_api.remove_container(c["Id"], force=True)
    for n in networks:
        docker_api.remove_network(n["Id"])
    assert not containers and not networks, (
        f"left behind: containers {[c['Names'] for c in containers]}, networks {[n['Name'] for n in networks]}")


@pytest.fixture(autouse=True)
def _no_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
