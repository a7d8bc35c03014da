"""What an MPI job through ``mpirun`` over SSH on a Docker target is made of, as values (pure).

With the target's ``mpi_launcher="mpirun"`` an MPI-configured run is ``node_count`` node
containers, ``mltrain-<run>-node-0`` ... (their host names too), and one launcher container,
``mltrain-<run>-mpirun``, all on the run's own bridge network:

- each node runs ``sshd`` in the foreground as the run's user, on port 2022, with a host key it
  makes at start and the run's ``.mpi-ssh/authorized_keys`` (in the mounted run folder) as the
  only way in; nothing is published on the host;
- the launcher makes the run's client key (the private half stays in its /tmp), writes the
  public half to ``authorized_keys``, waits until every node answers SSH, then runs
  ``mpirun --host node-0:P,node-1:P ...``, which starts P ranks on each node over SSH. Each rank
  is the same rank launcher as everywhere, so its log, metrics and record land in the run folder,
  and its TF_CONFIG worker list names ``<node>:<2222 + local index>``.

The containers come from the single-container backend's :func:`~.docker.container_run_kwargs`
(user, mounts, limits, GPUs, labels), so they are hardened like every other container.
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path, PurePosixPath

from .. import rank_launcher as rl
from ...adapters import mpirun as mc
from ...adapters import tf_cluster as tfc
from ...adapters.docker import labels as lb
from .base import JobContext
from .docker import RUN_DIR, _LAUNCHER, container_run_kwargs
from .docker_cluster_specs import TASK_PORT, network_name, run_slug

SSH_PORT = 2022
SSH_DIR = ".mpi-ssh"                         # in the run folder: authorized_keys only
CLIENT_KEY = "/tmp/mltrain-ssh-client-ed25519"  # in the launcher container, never in the run folder
HOST_KEY = "/tmp/mltrain-ssh-host-ed25519"      # in each node container
LAUNCHER_TAG = "mpirun"
SSH_WAIT_EXIT = 97                           # the launcher's exit code when a node never answered SSH
DEFAULT_MPIRUN_ARGS = ("--mca", "btl_vader_single_copy_mechanism", "none")  # no ptrace between ranks here
_NOT_FORWARDED = frozenset({"HOSTNAME", "PWD", "SHLVL", "OLDPWD", "_", "TERM"})

_NODE_SCRIPT = (
    'set -e; ssh-keygen -q -t ed25519 -N "" -f ' + HOST_KEY + ' >/dev/null; '
    'exec /usr/sbin/sshd -D -e -f /dev/null -p ' + str(SSH_PORT) + ' -h ' + HOST_KEY + ' '
    '-o AuthorizedKeysFile=' + f"{RUN_DIR}/{SSH_DIR}/authorized_keys" + ' -o UsePAM=no -o StrictModes=no '
    '-o PasswordAuthentication=no -o KbdInteractiveAuthentication=no -o PermitRootLogin=prohibit-password '
    '-o PidFile=none -o PrintMotd=no -o LogLevel=ERROR'
)

_LAUNCHER_SCRIPT = (
    'set -e; d=' + f"{RUN_DIR}/{SSH_DIR}" + '; mkdir -p "$d"; '
    'ssh-keygen -q -t ed25519 -N "" -C "mltrain launcher" -f ' + CLIENT_KEY + ' >/dev/null; '
    'cp ' + CLIENT_KEY + '.pub "$d/authorized_keys.new"; mv -f "$d/authorized_keys.new" "$d/authorized_keys"; '
    'end=$(( $(date +%s) + MLTRAIN_SSH_WAIT_S )); '
    'for node in $MLTRAIN_MPI_NODES; do '
    '  until ssh $MLTRAIN_SSH_OPTS "$node" true 2>/tmp/mltrain-ssh-err; do '
    '    if [ "$(date +%s)" -ge "$end" ]; then '
    '      echo "[mltrain] node $node did not answer SSH within ${MLTRAIN_SSH_WAIT_S} s: '
    '$(tail -n 1 /tmp/mltrain-ssh-err)" >&2; exit ' + str(SSH_WAIT_EXIT) + '; fi; '
    '    sleep 0.2; '
    '  done; '
    'done; '
    'echo "[mltrain] every node answers SSH ($MLTRAIN_MPI_NODES): starting mpirun"; '
    'exec "$@"'
)


def node_name(run_id: str, index: int) -> str:
    return f"mltrain-{run_slug(run_id)}-node-{index}"


def launcher_name(run_id: str) -> str:
    return f"mltrain-{run_slug(run_id)}-{LAUNCHER_TAG}"


def node_tag(index: int) -> str:
    return f"node-{index}"


def ssh_args() -> str:
    """What ssh gets, from the launcher's mpirun and its wait loop: the run's key, its port, no prompt.

    The nodes' host keys are made when they start, on the run's own network, so they are not
    checked (there is nothing to check them against); the only key they accept is the run's.
    """
    return shlex.join(["-p", str(SSH_PORT), "-i", CLIENT_KEY, "-o", "StrictHostKeyChecking=no",
                       "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                       "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"])


def nodes_plan(run_id: str, node_count: int, per_node: int) -> list[mc.HostSlots]:
    return [mc.HostSlots(node_name(run_id, k), per_node) for k in range(node_count)]


def cluster_spec(nodes: list[mc.HostSlots], port: int = TASK_PORT) -> dict:
    """The TF_CONFIG workers: rank r on its node at ``port + its index on that node``."""
    addrs = [tfc.address(n.host, port + i) for n in nodes for i in range(n.slots)]
    return tfc.mpi_cluster(addrs)


def rank_ports(nodes: list[mc.HostSlots], port: int = TASK_PORT) -> list[int]:
    return [port + i for n in nodes for i in range(n.slots)]


def rank_nodes(nodes: list[mc.HostSlots]) -> list[int]:
    """The node index of each rank, rank 0 first (mpirun maps by slot)."""
    return [k for k, n in enumerate(nodes) for _ in range(n.slots)]


def forward_names(container_env: dict, image_env: list[str] | None) -> list[str]:
    """What mpirun forwards to the ranks (-x): the container's variables and the image's own
    (PATH, LD_LIBRARY_PATH, ...), which an SSH session would not have."""
    names = [e.split("=", 1)[0] for e in (image_env or []) if "=" in e]
    names += list(container_env)
    return [n for n in dict.fromkeys(names) if n not in _NOT_FORWARDED and mc._ENV_NAME_RE.match(n)]


def _base_kwargs(ctx: JobContext, image: str, env: dict, uid, gid, config) -> dict:
    """A run container's kwargs on the run's network; the script is started the compat way (if at all)
    by the rank launcher, not by the container."""
    kwargs = container_run_kwargs(ctx.replace(environment_variables=env, spec={**ctx.spec, "compat": False}),
                                  image, uid=uid, gid=gid, config=config)
    kwargs.pop("network_mode", None)
    kwargs["network"] = network_name(ctx.run_id)
    return kwargs


def node_container_kwargs(ctx: JobContext, image: str, index: int, *, uid=None, gid=None,
                          config: dict | None = None) -> dict:
    """The ``containers.create`` keyword arguments of node ``index``: sshd in the foreground."""
    kwargs = _base_kwargs(ctx, image, dict(ctx.environment_variables), uid, gid, config)
    name = node_name(ctx.run_id, index)
    kwargs.update(name=name, hostname=name, entrypoint=["/bin/sh", "-c", _NODE_SCRIPT, "mltrain-node"], command=[])
    kwargs["labels"] = {**kwargs["labels"], lb.ROLE: "task", lb.TASK: f"node:{index}"}
    return kwargs


def launcher_container_kwargs(ctx: JobContext, image: str, nodes: list[mc.HostSlots], *, token: str,
                              image_env: list[str] | None = None, uid=None, gid=None, config: dict | None = None,
                              ssh_wait_s: float = 60) -> dict:
    """The launcher container: the run's key, the wait for every node's sshd, then mpirun (pure)."""
    config = dict(config if config is not None else ctx.target.get("config") or {})
    env = dict(ctx.environment_variables)
    env[rl.ENV_CLUSTER] = json.dumps(cluster_spec(nodes), separators=(",", ":"))
    env[rl.ENV_TOKEN] = token
    env["MLTRAIN_WORLD_SIZE"] = str(sum(n.slots for n in nodes))
    env[rl.ENV_RANK_NODES] = json.dumps([n.host for n in nodes for _ in range(n.slots)])
    kwargs = _base_kwargs(ctx, image, env, uid, gid, config)
    compat = bool(ctx.spec.get("compat"))
    logs_rel = PurePosixPath(Path(ctx.logs_dir).relative_to(ctx.run_dir).as_posix())
    uid_here = int(kwargs["user"].split(":")[0])
    program = ["/bin/sh", "-c", _LAUNCHER, "mltrain-rank", "-m", "mltrain_desktop.engine.rank_launcher",
               "--logs-dir", f"{RUN_DIR}/{logs_rel}", *(["--compat"] if compat else []), "--", *kwargs["command"]]
    forward = forward_names(kwargs["environment"], image_env)
    argv = mc.build_mpirun_command(
        program, nodes=nodes, forward_env=forward, as_root=uid_here == 0, mpirun="mpirun",
        workdir=kwargs["working_dir"], ssh_args=ssh_args(),
        extra_args=[*DEFAULT_MPIRUN_ARGS, *(config.get("mpirun_args") or [])])
    kwargs["environment"].update({"MLTRAIN_MPI_NODES": " ".join(n.host for n in nodes),
                                  "MLTRAIN_SSH_OPTS": ssh_args(), "MLTRAIN_SSH_WAIT_S": str(int(ssh_wait_s))})
    kwargs.pop("device_requests", None)  # the ranks run on the nodes; the launcher needs no GPU
    name = launcher_name(ctx.run_id)
    kwargs.update(name=name, hostname=name, entrypoint=["/bin/sh", "-c", _LAUNCHER_SCRIPT, "mltrain-mpirun"],
                  command=argv)
    kwargs["labels"] = {**kwargs["labels"], lb.ROLE: "task", lb.TASK: f"{LAUNCHER_TAG}:0"}
    return kwargs


__all__ = ["CLIENT_KEY", "DEFAULT_MPIRUN_ARGS", "LAUNCHER_TAG", "SSH_DIR", "SSH_PORT", "SSH_WAIT_EXIT",
           "cluster_spec", "forward_names", "launcher_container_kwargs", "launcher_name", "node_container_kwargs",
           "node_name", "node_tag", "nodes_plan", "rank_nodes", "rank_ports", "ssh_args"]
