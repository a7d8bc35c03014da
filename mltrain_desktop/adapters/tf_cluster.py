"""TensorFlow cluster specs, per-task ``TF_CONFIG`` values, and the ports they name.

The spec and TF_CONFIG builders are pure functions. The port helpers touch sockets or read
``/proc`` but change nothing: ``allocate_ports`` binds to ``127.0.0.1:0`` to let the kernel pick
free ports, ``check_port_free`` fails with an error naming a requested port that is taken, and
``listening_ports`` tells which TCP ports have a listener (how the engine sees that a task's
gRPC server is up, without connecting to it).

TensorFlow's gRPC servers listen on all interfaces even when TF_CONFIG names 127.0.0.1, so a
single-machine cluster always uses loopback addresses and the free-port check covers every
interface. Standard library only.
"""
from __future__ import annotations

import errno
import json
import socket

LOOPBACK = "127.0.0.1"

# Start order of a parameter-server cluster: servers first, the chief (which connects) last.
TASK_TYPES = ("ps", "worker", "chief")


class PortInUseError(ValueError):
    """A requested port is already taken: the message names it and what it was for."""


def address(host: str, port: int) -> str:
    """``host:port``, with IPv6 literals in brackets as gRPC expects."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{int(port)}"


def allocate_ports(count: int, host: str = LOOPBACK, attempts: int = 5) -> list[int]:
    """Returns ``count`` distinct ports that are free now, chosen by the kernel.

    Binds ``count`` sockets to ``host:0`` at once (so the ports differ), closes them, then checks
    each port is free on every interface too (TensorFlow's servers bind there), retrying a few
    times when one is not.
    """
    if count < 0:
        raise ValueError(f"cannot allocate {count} ports")
    for _ in range(attempts):
        held: list[socket.socket] = []
        try:
            for _i in range(count):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(s)
                s.bind((host, 0))
            ports = [s.getsockname()[1] for s in held]
        finally:
            for s in held:
                s.close()
        try:
            for port in ports:
                check_port_free(port)
        except PortInUseError:
            continue
        return ports
    raise OSError(f"could not find {count} free TCP ports after {attempts} tries")


def check_port_free(port: int, purpose: str = "", host: str = "") -> None:
    """Raises PortInUseError naming ``port`` (and ``purpose``) when it cannot be bound.

    ``host`` "" tests every interface, which is what a TensorFlow server will need.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise PortInUseError(f"port {port!r}{' for ' + purpose if purpose else ''} is not a port "
                             "number between 1 and 65535")
    for family, addr in ((socket.AF_INET, host or "0.0.0.0"), (socket.AF_INET6, "::")):
        if host and family == socket.AF_INET6:
            break
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue
        try:
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((addr, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                why = "is already in use" if exc.errno == errno.EADDRINUSE else "needs privileges"
                raise PortInUseError(
                    f"port {port}{' for ' + purpose if purpose else ''} {why} on this machine; "
                    "stop what holds it, pick another base_port in the compute target's config, "
                    "or remove base_port to let the engine choose free ports"
                ) from exc
            if exc.errno != errno.EADDRNOTAVAIL:  # no IPv6 here: nothing to check
                raise
        finally:
            s.close()


def ports_from_base(base_port: int, count: int) -> list[int]:
    """Consecutive ports ``base_port .. base_port+count-1``, validated as port numbers."""
    if isinstance(base_port, bool) or not isinstance(base_port, int) or base_port < 1:
        raise PortInUseError(f"base_port must be a port number, got {base_port!r}")
    if base_port + count - 1 > 65535:
        raise PortInUseError(f"base_port {base_port} leaves no room for {count} ports (max 65535)")
    return list(range(base_port, base_port + count))


# -- cluster specs ---------------------------------------------------------------------------
def mpi_cluster(worker_addresses: list[str]) -> dict:
    """The cluster of an MPI job: every rank is a worker, rank r at index r."""
    if not worker_addresses:
        raise ValueError("an MPI cluster needs at least one worker address")
    return {"worker": list(worker_addresses)}


def ps_cluster(chief: str, workers: list[str], ps: list[str]) -> dict:
    """The cluster of a parameter-server job: one chief, the workers and the ps tasks."""
    if not workers or not ps:
        raise ValueError("a parameter-server cluster needs at least one worker and one ps task")
    return {"chief": [chief], "worker": list(workers), "ps": list(ps)}


def cluster_tasks(cluster: dict) -> list[tuple[str, int]]:
    """(task type, index) of every task, in start order: ps, then workers, then the chief."""
    order = [t for t in TASK_TYPES if t in cluster] + sorted(t for t in cluster if t not in TASK_TYPES)
    return [(t, i) for t in order for i in range(len(cluster[t]))]


def task_port(cluster: dict, task_type: str, index: int) -> int:
    return int(cluster[task_type][index].rsplit(":", 1)[1])


def tf_config(cluster: dict, task_type: str, index: int, environment: str | None = None) -> dict:
    """The TF_CONFIG of one task; ``environment="cloud"`` for parameter-server clusters."""
    if task_type not in cluster:
        raise ValueError(f"task type {task_type!r} is not in the cluster ({', '.join(cluster)})")
    if not 0 <= index < len(cluster[task_type]):
        raise ValueError(f"{task_type} index {index} is out of range: the cluster has "
                         f"{len(cluster[task_type])} {task_type} task(s)")
    cfg = {"cluster": cluster, "task": {"type": task_type, "index": index}}
    if environment:
        cfg["environment"] = environment
    return cfg


def tf_config_json(cluster: dict, task_type: str, index: int, environment: str | None = None) -> str:
    return json.dumps(tf_config(cluster, task_type, index, environment), separators=(",", ":"))


def task_rank(cluster: dict, task_type: str, index: int) -> int:
    """A single number per task for the run API's ``rank``: chief 0, workers 1.., then ps."""
    n_workers = len(cluster.get("worker", []))
    if task_type == "chief":
        return index
    if task_type == "worker":
        return len(cluster.get("chief", [])) + index
    if task_type == "ps":
        return len(cluster.get("chief", [])) + n_workers + index
    return len(cluster.get("chief", [])) + n_workers + len(cluster.get("ps", [])) + index


# -- who is listening -----------------------------------------------------------------------
_TCP_LISTEN = "0A"


def parse_proc_net_tcp(text: str) -> set[int]:
    """Ports in LISTEN state from the text of /proc/net/tcp or /proc/net/tcp6."""
    ports = set()
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) > 3 and parts[3] == _TCP_LISTEN:
            try:
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
            except (IndexError, ValueError):
                continue
    return ports


def listening_ports() -> set[int] | None:
    """TCP ports with a listener on this machine, or None where that cannot be read."""
    ports: set[int] = set()
    found = False
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path, encoding="ascii") as fh:
                ports |= parse_proc_net_tcp(fh.read())
            found = True
        except OSError:
            continue
    if found:
        return ports
    try:  # macOS and others: psutil, when the app has it
        import psutil

        return {c.laddr.port for c in psutil.net_connections(kind="tcp") if c.status == "LISTEN"}
    except Exception:  # noqa: BLE001 - no way to tell: the caller skips the check
        return None
