"""What a distributed run on Docker is made of, as values: names, the cluster, the container and network specs.

One container per MPI rank or parameter-server task, named ``mltrain-<run>-rank-1`` /
``...-worker-0`` / ``...-chief-0`` (its host name too), on the run's own bridge network
``mltrain-<run>``. ``TF_CONFIG`` addresses are ``<container name>:2222``: each container has its
own network namespace, so every task uses the same port and nothing is published on the host.
The task counts come checked from :mod:`mltrain_desktop.domain.distribution`. Pure: nothing here
talks to an engine.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path, PurePosixPath

from .. import rank_launcher as rl
from ...adapters import tf_cluster as tfc
from ...domain import distribution as dd
from ...adapters.docker import labels as lb
from .base import JobContext
from .docker import RUN_DIR, container_run_kwargs
from .mpi import checked_distribution

LABEL_TASK = lb.TASK
TASK_PORT = 2222                 # every task's gRPC port, inside its own container
_SLUG_MAX = 40


def run_slug(run_id: str) -> str:
    """The run id as a DNS label part: lower case, ``[a-z0-9-]``, at most 40 characters.

    A longer id is cut and given 8 hex digits of its hash, so that names stay distinct.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", run_id.lower()).strip("-") or "run"
    if len(slug) > _SLUG_MAX:
        digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
        slug = slug[: _SLUG_MAX - 9].rstrip("-") + "-" + digest
    return slug


def network_name(run_id: str) -> str:
    return f"mltrain-{run_slug(run_id)}"


def task_container_name(run_id: str, tag: str) -> str:
    """``mltrain-<run>-worker-0``: a valid host name (at most 63 characters, no underscores)."""
    return f"mltrain-{run_slug(run_id)}-{tag.replace('_', '-')}"


def mpi_tasks(distribution: dict | None) -> list[tuple[None, int]]:
    """The ranks of an MPI-configured job: node_count x process_count_per_node, all on one engine."""
    return checked_distribution(distribution, dd.MpiDistribution).tasks()


def ps_tasks(distribution: dict | None) -> list[tuple[str, int]]:
    """The tasks of a parameter-server job in start order: ps, workers, then the chief."""
    return checked_distribution(distribution, dd.PsDistribution).tasks()


def cluster_spec(run_id: str, tasks: list[tuple[str | None, int]], port: int = TASK_PORT) -> dict:
    """The TensorFlow cluster: every address is ``<container name>:<port>``."""
    def addr(ttype, index):
        return tfc.address(task_container_name(run_id, rl.task_tag(ttype, index)), port)

    if all(t is None for t, _ in tasks):
        return tfc.mpi_cluster([addr(None, i) for _, i in tasks])
    by_type: dict[str, list[int]] = {}
    for t, i in tasks:
        by_type.setdefault(t, []).append(i)
    return tfc.ps_cluster(addr("chief", 0), [addr("worker", i) for i in by_type.get("worker", [])],
                          [addr("ps", i) for i in by_type.get("ps", [])])


def run_labels(ctx: JobContext, role: str) -> dict:
    """The adapter's labels of the run's ``role`` (network, task): its workspace and its owner, the run."""
    return lb.run_labels(ctx.workspace_dir, ctx.run_id, ctx.target.get("name", ""), role)


def network_create_kwargs(ctx: JobContext) -> dict:
    """The ``create_network`` keyword arguments of the run's own bridge network."""
    return {"name": network_name(ctx.run_id), "driver": "bridge", "check_duplicate": True,
            "labels": run_labels(ctx, "network")}


def task_container_kwargs(ctx: JobContext, image: str, task_type: str | None, index: int, cluster: dict, *,
                          token: str, world_size: int | None = None, uid: int | None = None,
                          gid: int | None = None, config: dict | None = None) -> dict:
    """The ``containers.create`` keyword arguments of one rank or task (pure: nothing is started)."""
    tag = rl.task_tag(task_type, index)
    env = dict(ctx.environment_variables)
    env[rl.ENV_CLUSTER] = json.dumps(cluster, separators=(",", ":"))
    env[rl.ENV_TOKEN] = token
    if world_size is not None:
        env["MLTRAIN_WORLD_SIZE"] = str(world_size)
    compat = bool(ctx.spec.get("compat"))  # the launcher starts the script the compat way, not the container
    kwargs = container_run_kwargs(ctx.replace(environment_variables=env, spec={**ctx.spec, "compat": False}),
                                  image, uid=uid, gid=gid, config=config)
    logs_rel = PurePosixPath(Path(ctx.logs_dir).relative_to(ctx.run_dir).as_posix())
    who = ["--rank", str(index)] if task_type is None else ["--task-type", task_type, "--task-index", str(index)]
    # kwargs["command"] is [script, *arguments] with host paths already mapped into the container
    kwargs["command"] = ["-m", "mltrain_desktop.engine.rank_launcher", "--logs-dir", f"{RUN_DIR}/{logs_rel}",
                         *who, *(["--compat"] if compat else []), "--", *kwargs["command"]]
    name = task_container_name(ctx.run_id, tag)
    kwargs["name"] = name
    kwargs["hostname"] = name
    kwargs.pop("network_mode", None)  # the run's own network, whatever the target's `network` says
    kwargs["network"] = network_name(ctx.run_id)
    kwargs["labels"] = {**kwargs["labels"], lb.ROLE: "task", lb.TASK: f"{task_type or 'rank'}:{index}"}
    return kwargs



__all__ = ["LABEL_TASK", "TASK_PORT", "cluster_spec", "mpi_tasks", "network_create_kwargs", "network_name",
           "ps_tasks", "run_labels", "run_slug", "task_container_kwargs", "task_container_name"]
