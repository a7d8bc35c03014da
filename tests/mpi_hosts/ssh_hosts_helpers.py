"""Two real SSH hosts for MPI across hosts (the ``ssh_hosts`` fixture in conftest.py): containers with sshd and Open MPI.

Each host is a container of ``mltrain-mpihost:bookworm`` (our base image plus Debian 12's
openssh-server and openmpi-bin, built once with apt and reused while its recipe and base are
unchanged) with its own host name, ``mpihost1`` and ``mpihost2``, on a bridge network of its own.
This machine is the head: the job's mpirun runs here and starts Open MPI's daemon on each host
over SSH, with a client key, a host key and a known_hosts file that this fixture makes for the
session and an ssh_config file naming them. As a cluster's shared file system would, the hosts
see the repository (the interpreter of the project's .venv and the job kit) and a workspace
folder at the same paths as here, bind-mounted. Containers and network carry the label
``mltrain.role=mpi-hosts-test`` and are removed at the end of the session.
"""
from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import secrets
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "mltrain-base:bookworm-py311"
IMAGE = "mltrain-mpihost:bookworm"
ROLE = "mltrain.role=mpi-hosts-test"
INSTALL = ("set -e; apt-get update -q; DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
           "--no-install-recommends openssh-server openmpi-bin; apt-get clean; "
           "rm -rf /var/lib/apt/lists/* /etc/ssh/ssh_host_*; mkdir -p /run/sshd /root/.ssh; chmod 700 /root/.ssh")
SSHD = ("install -m 0600 /opt/mpihost/authorized_keys /root/.ssh/authorized_keys && "
        "install -m 0600 /opt/mpihost/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key && "
        "exec /usr/sbin/sshd -D -e -o HostKey=/etc/ssh/ssh_host_ed25519_key -o PasswordAuthentication=no "
        "-o PermitRootLogin=prohibit-password")


@dataclasses.dataclass
class SshHosts:
    hosts: list[str]
    ssh_config: str
    ssh_key: str
    subnet: str
    shared: Path
    containers: list[str]
    network: str

    def mpirun_args(self) -> list[str]:
        """Open MPI's daemons and ranks talk over the hosts' network only."""
        return ["--mca", "oob_tcp_if_include", self.subnet, "--mca", "btl_tcp_if_include", self.subnet]


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _apt_proxy() -> list[str]:
    out = subprocess.run(["apt-config", "dump"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith('Acquire::http::Proxy "'):
            return ["-e", "http_proxy=" + line.split('"')[1]]
    return []


def ensure_image() -> str:
    """The host image, built from the base image when missing or made by another recipe."""
    base_id = docker("image", "inspect", "-f", "{{.Id}}", BASE_IMAGE)
    recipe = hashlib.sha256((INSTALL + base_id).encode()).hexdigest()[:16]
    have = docker("image", "inspect", "-f", '{{index .Config.Labels "mltrain.mpihost.recipe"}}', IMAGE, check=False)
    if have == recipe:
        return IMAGE
    ca = Path("/etc/ssl/certs/ca-certificates.crt")
    ca_args = ["-v", f"{ca}:{ca}:ro"] if ca.is_file() else []
    cid = docker("create", "--label", "mltrain.role=image-build", *ca_args, *_apt_proxy(), BASE_IMAGE,
                 "sh", "-c", INSTALL)
    try:
        done = subprocess.run(["docker", "start", "-a", cid], capture_output=True, text=True, timeout=600)
        code = docker("inspect", "-f", "{{.State.ExitCode}}", cid)
        assert done.returncode == 0 and code == "0", f"building {IMAGE} failed:\n{done.stdout[-3000:]}{done.stderr}"
        docker("commit", "--change", f"LABEL mltrain.mpihost.recipe={recipe}", cid, IMAGE)
    finally:
        docker("rm", "-f", cid, check=False)
    return IMAGE


def _make_keys(keys: Path) -> None:
    keys.mkdir(mode=0o700)
    for name, comment in (("id_ed25519", "mltrain-mpi-test"), ("ssh_host_ed25519_key", "mpihost")):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(keys / name)],
                       check=True)
    shutil.copy(keys / "id_ed25519.pub", keys / "authorized_keys")


def _write_ssh_config(keys: Path, addresses: dict[str, str]) -> Path:
    host_key = (keys / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    (keys / "known_hosts").write_text(
        "".join(f"{name},{ip} {' '.join(host_key)}\n" for name, ip in addresses.items()))
    config = keys / "ssh_config"
    config.write_text("".join(
        f"Host {name}\n  HostName {ip}\n  User root\n  IdentityFile {keys / 'id_ed25519'}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {keys / 'known_hosts'}\n  StrictHostKeyChecking yes\n"
        for name, ip in addresses.items()))
    return config


def _wait_for_sshd(config: Path, host: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(["ssh", "-F", str(config), "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", host, "true"],
                              capture_output=True, text=True, timeout=15)
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"sshd on {host} did not answer within {timeout} s: {done.stderr.strip()}")
        time.sleep(0.3)


def refresh_addresses(hosts: SshHosts) -> None:
    """Writes the ssh_config and known_hosts for the hosts' current addresses; waits for their sshd."""
    keys = Path(hosts.ssh_config).parent
    addresses = {name: docker("inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{hosts.network}\").IPAddress}}}}", c)
                 for name, c in zip(hosts.hosts, hosts.containers)}
    _write_ssh_config(keys, addresses)
    for name in hosts.hosts:
        _wait_for_sshd(Path(hosts.ssh_config), name)


def start_hosts(root: Path, names: list[str]) -> SshHosts:
    """Keys, a network and one sshd container per name; stopped again by :func:`stop_hosts`."""
    image = ensure_image()
    keys, shared = root / "keys", root / "shared"
    _make_keys(keys)
    shared.mkdir()
    tag = secrets.token_hex(3)
    network = f"mltrain-mpihosts-{tag}"
    docker("network", "create", "--label", ROLE, network)
    hosts = SshHosts(names, str(keys / "ssh_config"), str(keys / "id_ed25519"), "", shared, [], network)
    try:
        for name in names:
            hosts.containers.append(docker(
                "run", "-d", "--init", "--name", f"mltrain-{name}-{tag}", "--hostname", name, "--network", network,
                "--network-alias", name, "--label", ROLE, "-v", f"{REPO}:{REPO}:ro", "-v", f"{shared}:{shared}",
                "-v", f"{keys}:/opt/mpihost:ro", image, "sh", "-c", SSHD))
        ipam = json.loads(docker("network", "inspect", network))[0]["IPAM"]["Config"][0]
        hosts.subnet = str(ipaddress.ip_network(ipam["Subnet"]))
        refresh_addresses(hosts)
    except BaseException:
        stop_hosts(hosts)
        raise
    return hosts


def stop_hosts(hosts: SshHosts) -> None:
    for c in hosts.containers:
        docker("rm", "-f", c, check=False)
    docker("network", "rm", hosts.network, check=False)
