"""The ``ssh_hosts`` fixture: two real SSH hosts for the session (see ssh_hosts_helpers.py)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from ssh_hosts_helpers import start_hosts, stop_hosts


@pytest.fixture(scope="session")
def ssh_hosts(tmp_path_factory):
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker engine: the test's SSH hosts are containers (scripts/ensure_dockerd.sh)")
    hosts = start_hosts(tmp_path_factory.mktemp("mpihosts"), ["mpihost1", "mpihost2"])
    try:
        yield hosts
    finally:
        stop_hosts(hosts)
