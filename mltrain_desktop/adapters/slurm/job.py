"""The job description of a run on a Slurm target: a pure function of the run spec and the target.

``slurm_job(spec, config, ...)`` reads the run's distribution (MPI counts or parameter-server
tasks), ``use_gpu`` and environment, and the target's partition, account, time limit, GPUs per
node and interpreter, and returns the ``SlurmJob`` the batch script is written from.
``check_fits`` compares it with a partition (as ``parse.partitions`` reads it) before submitting.
"""
from __future__ import annotations

from ...domain.distribution import MpiDistribution, PsDistribution, validate_distribution
from .script import TASK_PORT_BASE, SlurmJob

DEFAULT_PYTHON = "python3"


class DoesNotFit(ValueError):
    """The job asks for more than the partition (or the target) allows; the message has the numbers."""


def interpreter(spec: dict, config: dict) -> str:
    """The run's environment python, else the target's python, else python3 (on the nodes' PATH)."""
    return (spec.get("environment") or {}).get("python") or config.get("python") or DEFAULT_PYTHON


def slurm_job(spec: dict, config: dict, *, run_id: str, workdir: str, logs_dir: str, jobkit_dir: str,
              entry_script: str, arguments: list[str], environment: dict[str, str]) -> SlurmJob:
    """The job of one run (raises DistributionError for bad distribution settings)."""
    dist = validate_distribution(spec.get("distribution"))
    nodes, per_node, tasks, mpi = 1, 1, (), False
    if isinstance(dist, MpiDistribution):
        nodes, per_node, mpi = dist.node_count, dist.process_count_per_node, True
    elif isinstance(dist, PsDistribution):
        tasks = tuple(dist.tasks())
        nodes = min(len(tasks), config.get("nodes_max") or 0)  # 0: as many as Slurm places the tasks on
    gpus = 0
    if spec.get("use_gpu"):
        gpus = config.get("gres_gpu") or (per_node if not tasks else 1)
    return SlurmJob(
        job_name=f"mltrain-{run_id}"[:128], workdir=workdir, logs_dir=logs_dir,
        interpreter=interpreter(spec, config), entry_script=entry_script, arguments=tuple(arguments),
        environment=tuple(sorted(environment.items())), pythonpath=jobkit_dir, nodes=nodes,
        tasks_per_node=per_node, tasks=tasks, mpi=mpi, gpus_per_node=gpus, partition=config.get("partition"),
        account=config.get("account"), time_limit=config.get("time_limit"),
        base_port=config.get("base_port") or TASK_PORT_BASE, compat=bool(spec.get("compat")))


def check_fits(job: SlurmJob, partition: dict, nodes: list[dict], config: dict) -> None:
    """Raises DoesNotFit when the job cannot ever start on ``partition`` (numbers in the message)."""
    name = partition["name"]
    total = partition.get("total_nodes") or 0
    limit = partition.get("max_nodes")
    nodes_max = config.get("nodes_max")
    if nodes_max is not None and job.nodes > nodes_max:
        raise DoesNotFit(f"the run asks for {job.nodes} node(s) but the target allows at most nodes_max={nodes_max}; "
                         "lower node_count or raise nodes_max")
    if job.tasks and not job.nodes:
        pass
    elif job.nodes > total:
        raise DoesNotFit(f"the run asks for {job.nodes} node(s) (node_count) but partition {name!r} has {total}; "
                         f"lower node_count to {total} or less, or use a partition with more nodes")
    if limit is not None and job.nodes > limit:
        raise DoesNotFit(f"the run asks for {job.nodes} node(s) (node_count) but partition {name!r} allows at most "
                         f"{limit} per job (MaxNodes); lower node_count or use another partition")
    members = [n for n in nodes if name in n["partitions"]]
    cpus = max((n["cpus"] or 0 for n in members), default=0)
    if not job.tasks and members and job.tasks_per_node > cpus:
        raise DoesNotFit(f"the run asks for {job.tasks_per_node} process(es) per node (process_count_per_node) but "
                         f"the nodes of partition {name!r} have at most {cpus} CPU(s); lower process_count_per_node")
    if job.tasks and members and len(job.tasks) > sum(n["cpus"] or 0 for n in members):
        raise DoesNotFit(f"the run has {len(job.tasks)} tasks but partition {name!r} has "
                         f"{sum(n['cpus'] or 0 for n in members)} CPU(s); use fewer workers or ps tasks")
    gpus = max((n["gpus"] for n in members), default=0)
    if job.gpus_per_node and job.gpus_per_node > gpus:
        raise DoesNotFit(f"use_gpu=True asks for {job.gpus_per_node} GPU(s) per node (--gres=gpu:"
                         f"{job.gpus_per_node}) but the nodes of partition {name!r} have at most {gpus}; "
                         "submit with use_gpu=False, lower gres_gpu, or use a partition with GPUs")
