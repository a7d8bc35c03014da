"""The ``mpirun`` command of an MPI job, built as a value (pure functions, no side effects).

A compute target may list the hosts an MPI job can use, each with a number of slots (ranks it
may run)::

    {"hosts": [{"host": "node1", "slots": 2}, {"host": "node2", "slots": 2}]}

``parse_hosts`` also accepts ``"node1:2"`` / ``"node1 slots=2"`` strings (one per item, or a
comma- or newline-separated string, as in an Open MPI hostfile). A job asks for ``node_count``
nodes with ``process_count_per_node`` ranks each; ``plan_nodes`` takes the first ``node_count``
hosts and refuses to put more ranks on a host than it has slots unless the target says
``oversubscribe``. With no hosts listed, the target is this machine alone, with as many slots
as CPUs this process may use (or ``slots`` from the target's config). A target made with
``AmlCompute.provisioning_configuration(max_nodes=N)`` and no hosts takes up to N "nodes" on this
machine instead (``machine_nodes``): each a group of ranks with its own node name.

``build_mpirun_command`` then gives the argument list for Open MPI 4's mpirun.
"""
from __future__ import annotations

import dataclasses
import re
import shlex

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "localhost.localdomain"})

_HOST_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,252})$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class HostsError(ValueError):
    """The hosts list, or the ranks asked of it, cannot work: the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class HostSlots:
    host: str
    slots: int

    def __str__(self) -> str:
        return f"{self.host}:{self.slots}"


def _check_host(host) -> str:
    if not isinstance(host, str) or not _HOST_RE.match(host.strip()):
        raise HostsError(
            f"{host!r} is not a host name or IPv4 address (letters, digits, '.', '-', '_'; "
            "no spaces, no leading '-')"
        )
    return host.strip()


def _check_slots(host: str, slots) -> int:
    if isinstance(slots, str) and slots.strip().isdigit():
        slots = int(slots)
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
        raise HostsError(f"host {host!r}: slots must be a whole number of at least 1, got {slots!r}")
    return slots


def _parse_host_item(item) -> HostSlots:
    if isinstance(item, dict):
        unknown = set(item) - {"host", "slots"}
        if unknown:
            raise HostsError(f"host entry {item!r}: unknown key(s) {', '.join(sorted(unknown))}; "
                             "use {'host': name, 'slots': n}")
        if "host" not in item:
            raise HostsError(f"host entry {item!r} has no 'host'")
        host = _check_host(item["host"])
        return HostSlots(host, _check_slots(host, item.get("slots", 1)))
    if isinstance(item, (list, tuple)) and len(item) == 2:
        host = _check_host(item[0])
        return HostSlots(host, _check_slots(host, item[1]))
    if isinstance(item, str):
        text = item.split("#", 1)[0].strip()
        m = re.match(r"^(\S+)\s+slots\s*=\s*(\S+)$", text)
        if m:
            host, slots = m.group(1), m.group(2)
        elif text.count(":") == 1:
            host, slots = text.split(":")
        else:
            host, slots = text, 1
        host = _check_host(host)
        return HostSlots(host, _check_slots(host, slots))
    raise HostsError(f"host entry {item!r}: use {{'host': name, 'slots': n}} or 'name:slots'")


def parse_hosts(value) -> list[HostSlots]:
    """Parses a hosts list (see the module docstring); [] for None or empty."""
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, str):
        items = [p for p in re.split(r"[,\n]", value) if p.split("#", 1)[0].strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise HostsError(f"hosts must be a list of {{'host': name, 'slots': n}}, got {type(value).__name__}")
    hosts = [_parse_host_item(i) for i in items]
    seen: set[str] = set()
    for h in hosts:
        if h.host in seen:
            raise HostsError(f"host {h.host!r} is listed twice; list each host once with its total slots")
        seen.add(h.host)
    return hosts


def this_machine(slots) -> HostSlots:
    """The single host of a target that lists none: this machine with ``slots`` slots."""
    return HostSlots("localhost", _check_slots("localhost", slots))


def is_local_host(host: str, local_names=()) -> bool:
    """True for loopback names and any extra names of this machine passed in ``local_names``."""
    return host in LOCAL_NAMES or host in set(local_names)


def plan_nodes(hosts: list[HostSlots], node_count: int, process_count_per_node: int,
               oversubscribe: bool = False) -> list[HostSlots]:
    """The nodes a job runs on, each with ``process_count_per_node`` ranks (its slots in mpirun).

    Raises HostsError when there are fewer hosts than ``node_count`` or a host has fewer slots
    than ``process_count_per_node`` (unless ``oversubscribe``).
    """
    for name, v in (("node_count", node_count), ("process_count_per_node", process_count_per_node)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise HostsError(f"{name} must be a whole number of at least 1, got {v!r}")
    if not hosts:
        raise HostsError("no hosts to run on")
    if node_count > len(hosts):
        listed = ", ".join(str(h) for h in hosts)
        raise HostsError(
            f"node_count={node_count} but the compute target lists {len(hosts)} host(s) ({listed}); "
            f"lower node_count, or add hosts to the target's config"
            + ("; a target without hosts is this machine alone: use node_count=1 and "
               "process_count_per_node=N" if len(hosts) == 1 and is_local_host(hosts[0].host) else "")
        )
    chosen = hosts[:node_count]
    if not oversubscribe:
        short = [h for h in chosen if h.slots < process_count_per_node]
        if short:
            names = ", ".join(f"{h.host} has {h.slots}" for h in short)
            raise HostsError(
                f"{process_count_per_node} rank(s) per node ({node_count * process_count_per_node} "
                f"in all) but not enough slots: {names}; lower process_count_per_node, raise the "
                "host's slots, or set oversubscribe: true in the compute target's config to run "
                "more ranks than slots (slower: ranks share CPUs)"
            )
    return [HostSlots(h.host, process_count_per_node) for h in chosen]


def machine_nodes(node_count: int, process_count_per_node: int, max_nodes: int, slots: int,
                  oversubscribe: bool = False) -> tuple[list[HostSlots], list[str]]:
    """An AmlCompute-made target without hosts: ``node_count`` (at most ``max_nodes``) "nodes" on this
    machine, ``node-0``, ``node-1``, ..., each a group of ``process_count_per_node`` ranks.

    Returns mpirun's nodes (this machine with a slot per rank) and the node name of each rank.
    Raises HostsError when node_count exceeds max_nodes, or the ranks exceed this machine's slots
    (unless ``oversubscribe``).
    """
    for name, v in (("node_count", node_count), ("process_count_per_node", process_count_per_node)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise HostsError(f"{name} must be a whole number of at least 1, got {v!r}")
    if node_count > max_nodes:
        raise HostsError(
            f"node_count={node_count} but the compute target has max_nodes={max_nodes}; lower node_count to "
            f"{max_nodes} or less, or create the target with AmlCompute.provisioning_configuration("
            f"max_nodes={node_count})")
    total = node_count * process_count_per_node
    if total > slots and not oversubscribe:
        raise HostsError(
            f"{node_count} node(s) x {process_count_per_node} rank(s) = {total} ranks on this machine, which "
            f"has {slots} slot(s) (the nodes of an AmlCompute target without hosts share this machine); "
            "lower node_count or process_count_per_node, raise 'slots', or set oversubscribe: true in the "
            "compute target's config (slower: ranks share CPUs)")
    names = [f"node-{i}" for i in range(node_count) for _ in range(process_count_per_node)]
    return [HostSlots("localhost", total)], names


def rank_hosts(nodes: list[HostSlots]) -> list[str]:
    """The host of each rank, rank 0 first: mpirun maps ranks by slot, filling nodes in order."""
    return [n.host for n in nodes for _ in range(n.slots)]


def build_mpirun_command(
    program: list[str],
    *,
    nodes: list[HostSlots],
    forward_env: list[str] = (),
    as_root: bool = False,
    mpirun: str = "mpirun",
    workdir: str | None = None,
    oversubscribe: bool = False,
    tag_output: bool = False,
    output_filename: str | None = None,
    bind_to: str = "none",
    ssh_args: str | None = None,
    extra_args: list[str] = (),
) -> list[str]:
    """The argument list that runs ``program`` once per rank on ``nodes`` (from ``plan_nodes``).

    - ``-np`` is the sum of the nodes' slots; ``--host h1:s1,h2:s2`` with ``--map-by slot`` puts
      ranks 0..s1-1 on h1 and so on (``rank_hosts`` gives the same order).
    - every name in ``forward_env`` is forwarded with ``-x NAME`` (the value comes from
      mpirun's own environment, so values never appear on the command line).
    - ``--allow-run-as-root`` only when ``as_root``; ``--bind-to none`` by default (the ranks are
      TensorFlow processes with their own thread pools).
    - ``tag_output`` adds ``--tag-output`` ([job,rank]<stdout>: prefixes); ``output_filename``
      adds ``--output-filename DIR`` (one file per rank). MLTrain's own rank launcher prefixes
      and splits the output itself, so it leaves both off.
    - ``ssh_args`` (for remote hosts) goes to ``--mca plm_rsh_args``.
    """
    if not program:
        raise ValueError("no program to run")
    if not nodes:
        raise HostsError("no nodes to run on")
    np_ = sum(n.slots for n in nodes)
    argv = [mpirun]
    if as_root:
        argv.append("--allow-run-as-root")
    argv += ["-np", str(np_), "--host", ",".join(str(n) for n in nodes), "--map-by", "slot"]
    if bind_to:
        argv += ["--bind-to", bind_to]
    if oversubscribe:
        argv.append("--oversubscribe")
    if tag_output:
        argv.append("--tag-output")
    if output_filename:
        argv += ["--output-filename", output_filename]
    if workdir:
        argv += ["--wdir", workdir]
    if ssh_args:
        argv += ["--mca", "plm_rsh_args", ssh_args]
    for name in dict.fromkeys(forward_env):  # keeps order, drops repeats
        if not _ENV_NAME_RE.match(name):
            raise ValueError(f"cannot forward environment variable {name!r}: not a valid name")
        argv += ["-x", name]
    argv += list(extra_args)
    argv += list(program)
    return argv


def ssh_options(ssh_config: str | None = None, ssh_key: str | None = None) -> list[str]:
    """ssh's own options for a target's ``ssh_config`` file (-F) and ``ssh_key`` identity (-i)."""
    return [*(["-F", ssh_config] if ssh_config else []), *(["-i", ssh_key] if ssh_key else [])]


def ssh_probe_command(host: str, connect_timeout_s: int = 5, ssh: str = "ssh",
                      options: list[str] = ()) -> list[str]:
    """A command that succeeds quickly when ``host`` answers SSH with key-based login."""
    return [ssh, *options, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(connect_timeout_s)}",
            "-o", "StrictHostKeyChecking=accept-new", _check_host(host), "true"]


def default_ssh_args(connect_timeout_s: int = 10, options: list[str] = ()) -> str:
    """What mpirun passes to ssh for remote hosts: never prompt, give up on a dead host fast."""
    return shlex.join([*options, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(connect_timeout_s)}"])


def display(argv: list[str]) -> str:
    """The command as a shell would show it (for logs and docs)."""
    return shlex.join(argv)
