"""Distributed jobs on a Docker target: one container per MPI rank or parameter-server task.

The run gets a bridge network of its own, ``mltrain-<run>``, created at launch and removed when
the run ends (every path: success, failure, cancel, a failed launch, orphan cleanup). Each rank
or task is a container on it (names and specs: :mod:`.docker_cluster_specs`), made by the
single-container backend's pure :func:`~.docker.container_run_kwargs` (mounts, user, limits,
GPUs, labels) plus the label ``mltrain.task=<type>:<index>``. Each container runs the same rank
launcher as local jobs::

    python3 -m mltrain_desktop.engine.rank_launcher --logs-dir /mltrain/run/logs
        (--rank R | --task-type T --task-index I) -- script.py args

so the per-rank logs, metrics files and status records land in the mounted run folder exactly
as locally, and the launcher's prefixed output (``[worker 0] ...``) is streamed from every
container into ``driver.log``.

MPI-configured jobs run one container per rank with no ``mpirun`` by default: each rank gets
its rank (``MLTRAIN_RANK``) and a ``TF_CONFIG`` worker list, which is what
``tf.distribute.MultiWorkerMirroredStrategy`` needs. A target with ``mpi_launcher="mpirun"``
runs them as a cluster does instead: node containers with sshd and a launcher running mpirun
over SSH (:mod:`.docker_mpirun_specs`, :mod:`.docker_mpirun_handle`), which is what Horovod needs.

The running job (:mod:`.docker_cluster_handle`) follows the same rules as the process backends,
the domain's MpiPolicy and PsPolicy; the network and its clean-up are in
:mod:`.docker_cluster_network`.
"""
from __future__ import annotations

import dataclasses
import json
import secrets
import time
from pathlib import Path

from .. import rank_launcher as rl
from ...adapters import mpirun as mc
from ...adapters.docker import labels as lb
from ...adapters.docker.engine import MPI_LAUNCHER_MPIRUN, NVIDIA_TOOLKIT_HINT, client_over, is_local_engine
from ...domain import distribution as dd
from .base import JobContext, JobHandle, PrepareError
from .docker import DockerBackend
from .docker_cluster_handle import KIND_MPI, KIND_PS, DockerClusterHandle
from .docker_cluster_network import clean_orphan_networks, clean_orphan_networks_for_targets, remove_network
from .docker_cluster_specs import (TASK_PORT, cluster_spec, mpi_tasks, network_create_kwargs, network_name, ps_tasks,
                                   run_slug, task_container_kwargs, task_container_name)
from . import docker_mpirun_specs as ms
from .docker_mpirun_handle import KIND_MPIRUN, DockerMpirunHandle
from .mpi import checked_distribution, startup_timeout


@dataclasses.dataclass
class ClusterPlan:
    """What a launch makes: the state kind, each container's create kwargs and tag, what to log, extra state."""
    kind: str
    specs: list[dict]
    tags: list[str]
    said: list[str]
    state: dict = dataclasses.field(default_factory=dict)


def handle_class(kind: str) -> type[DockerClusterHandle]:
    return DockerMpirunHandle if kind == KIND_MPIRUN else DockerClusterHandle


# -- the backends -----------------------------------------------------------------------------

class _DockerClusterBackend(DockerBackend):
    state_kind = "abstract"
    state_kinds: tuple[str, ...] = ()  # the handle kinds reattach takes
    distribution_kind: type[dd.MpiDistribution] | type[dd.PsDistribution]

    def distribution(self, ctx: JobContext) -> dd.MpiDistribution | dd.PsDistribution:
        """The run's task counts, checked by the domain (PrepareError saying which count is wrong)."""
        return checked_distribution(ctx.distribution, self.distribution_kind)

    def tasks(self, ctx: JobContext) -> list[tuple[str | None, int]]:
        return self.distribution(ctx).tasks()

    def prepare(self, ctx: JobContext) -> None:
        self.tasks(ctx)  # bad counts fail before any image is built
        startup_timeout(self.config)
        if not (Path(ctx.snapshot_dir) / ctx.entry_script).is_file():
            raise PrepareError(f"entry script {ctx.entry_script!r} is not in the source snapshot")
        self.notes(ctx)
        super().prepare(ctx)

    def notes(self, ctx: JobContext) -> None:
        run_docker = ((ctx.spec.get("environment") or {}).get("docker") or {})
        net = run_docker.get("network") or self.config.get("network")
        if net:
            ctx.log(f"[mltrain] note: distributed runs on Docker use a network of their own "
                    f"({network_name(ctx.run_id)}); the target's network {net!r} is not used")

    # -- launch ----------------------------------------------------------------------------------
    def launch(self, ctx: JobContext) -> JobHandle:
        import docker
        if self.image is None:
            self.prepare(ctx)
            if self.image is None:
                raise PrepareError("the environment image was not prepared (the build was canceled)")
        api = self.api
        token = f"{ctx.run_id}-{secrets.token_hex(4)}"
        plan = self.plan(ctx, token)
        self._remove_stale_cluster(ctx, [k["name"] for k in plan.specs])
        for line in plan.said:
            ctx.log(line)
        try:
            net = api.create_network(**network_create_kwargs(ctx))
        except docker.errors.APIError as exc:
            raise PrepareError(f"creating the run's network {network_name(ctx.run_id)} failed: "
                               f"{exc.explanation or exc}") from exc
        specs = plan.specs
        state = {"kind": plan.kind, "run_id": ctx.run_id,
                 "workspace": lb.workspace_value(ctx.workspace_dir),
                 "network_id": net["Id"], "network_name": network_name(ctx.run_id), "tasks": [],
                 "port": TASK_PORT, "token": token, "image": self.image, "engine": self._engine(),
                 "gpus": specs[0]["environment"].get("MLTRAIN_GPUS"), "local_engine": is_local_engine(self.config),
                 "startup_timeout_s": startup_timeout(self.config), "logs_dir": str(ctx.logs_dir), **plan.state}
        client = client_over(api)
        try:
            for tag, kwargs in zip(plan.tags, specs):
                container = self._create(client, kwargs)
                state["tasks"].append({"tag": tag, "container_id": container.id, "container_name": kwargs["name"]})
            for t in state["tasks"]:
                self._start(api, t["container_id"], t["container_name"])
        except BaseException:
            handle_class(plan.kind)(api, state, ctx, start_pumps=False).cancel(0)
            raise
        state["started"] = time.time()
        self._record_tags(ctx, {"docker.image": self.image, "docker.network": state["network_name"],
                                "docker.containers": ",".join(t["container_name"] for t in state["tasks"])})
        ctx.log(f"[mltrain] containers started from {self.image} as user {specs[0]['user']}: "
                + ", ".join(f"{t['container_name']} ({t['container_id'][:12]})" for t in state["tasks"]))
        return handle_class(plan.kind)(api, state, ctx)

    def plan(self, ctx: JobContext, token: str) -> "ClusterPlan":
        """The run's containers (one per rank or task, each with its TF_CONFIG), before anything is made."""
        tasks = self.tasks(ctx)
        cluster = cluster_spec(ctx.run_id, tasks)
        world = len(tasks) if self.state_kind == KIND_MPI else None
        specs = [task_container_kwargs(ctx, self.image, t, i, cluster, token=token, world_size=world,
                                       uid=self.uid, gid=self.gid, config=self.config) for t, i in tasks]
        what = (f"{len(tasks)} rank(s)" if self.state_kind == KIND_MPI else
                f"{sum(t == 'ps' for t, _ in tasks)} ps, {sum(t == 'worker' for t, _ in tasks)} worker(s), 1 chief")
        said = (f"[mltrain] {'MPI' if self.state_kind == KIND_MPI else 'parameter-server'} job on Docker: "
                f"{what}, one container each on network {network_name(ctx.run_id)}; cluster " + json.dumps(cluster))
        return ClusterPlan(self.state_kind, specs, [rl.task_tag(t, i) for t, i in tasks], [said])

    def _start(self, api, container_id: str, name: str) -> None:
        import docker
        try:
            api.start(container_id)
        except docker.errors.APIError as exc:
            msg = str(exc.explanation or exc)
            if "device driver" in msg or "nvidia" in msg.lower():
                raise PrepareError(f"the Docker engine could not give the container {name} GPUs ({msg}). "
                                   f"To run on GPUs, {NVIDIA_TOOLKIT_HINT}; or submit with use_gpu=False.") from exc
            raise PrepareError(f"starting the container {name} failed: {msg}") from exc

    def _remove_stale_cluster(self, ctx: JobContext, names: list[str]) -> None:
        """Containers and the network of an earlier launch attempt of this same run."""
        import docker
        api = self.api
        for name in names:
            try:
                info = api.inspect_container(name)
            except docker.errors.NotFound:
                continue
            if ((info.get("Config") or {}).get("Labels") or {}).get(lb.RUN) == ctx.run_id:
                ctx.log(f"[mltrain] removing the stale container {name} of an earlier attempt")
                api.remove_container(info["Id"], force=True)
        for net in api.networks(names=[network_name(ctx.run_id)]):
            if net.get("Name") == network_name(ctx.run_id) and (net.get("Labels") or {}).get(lb.RUN) == ctx.run_id:
                ctx.log(f"[mltrain] removing the stale network {net['Name']} of an earlier attempt")
                remove_network(api, net["Id"], ctx.log, api_containers_too=True)

    # -- reattach --------------------------------------------------------------------------------
    def reattach(self, ctx: JobContext, state: dict) -> JobHandle | None:
        if state.get("kind") not in self.state_kinds or not state.get("tasks"):
            return None
        api = self.api
        ids = {t["container_id"] for t in state["tasks"]}
        found = [c for c in api.containers(all=True, filters={"label": [f"{lb.RUN}={ctx.run_id}"]})
                 if c["Id"] in ids]
        if not found:
            ctx.log(f"[mltrain] the run's containers ({', '.join(t['container_name'] for t in state['tasks'])}) "
                    "are gone (removed while no supervisor watched them)")
            remove_network(api, state.get("network_id"), ctx.log)
            return None
        return handle_class(state["kind"])(api, state, ctx, reattached=True)


class DockerMpiBackend(_DockerClusterBackend):
    """MPI-configured jobs: one container per rank with its TF_CONFIG, or (``mpi_launcher="mpirun"``)
    node containers and mpirun over SSH."""
    kind = "docker_mpi"
    state_kind = KIND_MPI
    state_kinds = (KIND_MPI, KIND_MPIRUN)

    distribution_kind = dd.MpiDistribution

    @property
    def over_ssh(self) -> bool:
        """The target's ``mpi_launcher="mpirun"``: node containers with sshd, and mpirun over SSH."""
        return self.config.get("mpi_launcher") == MPI_LAUNCHER_MPIRUN

    def prepare(self, ctx: JobContext) -> None:
        super().prepare(ctx)
        if not self.over_ssh or self.image is None:
            return
        from ...adapters.docker.images import BuildCanceled
        from ...adapters.docker.mpi_image import ensure_mpi_image
        from .docker import _cancel_checker
        try:
            self.image = ensure_mpi_image(self.api, self.image, uid=self.uid, gid=self.gid, log=ctx.log,
                                          cancelled=_cancel_checker(ctx), network=self.config.get("network"),
                                          lock_dir=Path(ctx.workspace_dir) / "envs")
        except BuildCanceled:
            ctx.log("[mltrain] MPI layer build canceled; nothing was left behind")
            self.image = None

    def plan(self, ctx: JobContext, token: str) -> ClusterPlan:
        if not self.over_ssh:
            return super().plan(ctx, token)
        dist = self.distribution(ctx)
        nodes = ms.nodes_plan(ctx.run_id, dist.node_count, dist.process_count_per_node)
        image_env = (self.api.inspect_image(self.image).get("Config") or {}).get("Env") or []
        specs = [ms.node_container_kwargs(ctx, self.image, k, uid=self.uid, gid=self.gid, config=self.config)
                 for k in range(dist.node_count)]
        launcher = ms.launcher_container_kwargs(ctx, self.image, nodes, token=token, image_env=image_env,
                                                uid=self.uid, gid=self.gid, config=self.config,
                                                ssh_wait_s=startup_timeout(self.config))
        workers = json.loads(launcher["environment"][rl.ENV_CLUSTER])["worker"]
        said = [f"[mltrain] MPI job on Docker through mpirun over SSH: {dist.rank_count} rank(s) on "
                f"{dist.node_count} node container(s) ({', '.join(str(n) for n in nodes)}) on network "
                f"{network_name(ctx.run_id)}; TF_CONFIG workers {', '.join(workers)}",
                f"[mltrain] {launcher['name']} waits for every node's sshd, then runs: "
                + mc.display(launcher["command"])]
        return ClusterPlan(KIND_MPIRUN, [*specs, launcher],
                           [ms.node_tag(k) for k in range(dist.node_count)] + [ms.LAUNCHER_TAG], said,
                           {"rank_nodes": ms.rank_nodes(nodes), "ports": ms.rank_ports(nodes)})

    def notes(self, ctx: JobContext) -> None:
        super().notes(ctx)
        dist = self.distribution(ctx)
        if self.over_ssh:
            return
        if dist.node_count > 1:
            ctx.log(f"[mltrain] note: node_count={dist.node_count}: the target is one Docker engine, so all "
                    f"{dist.rank_count} ranks run there, one container each")
        try:
            text = (Path(ctx.snapshot_dir) / ctx.entry_script).read_text(errors="replace")
        except OSError:
            text = ""
        if "horovod" in text.lower():
            ctx.log("[mltrain] warning: the script mentions Horovod. On a Docker target each rank is a container of "
                    "its own with TF_CONFIG and no mpirun, so Horovod would see one rank per container "
                    "(hvd.size() == 1). Use tf.distribute.MultiWorkerMirroredStrategy, create the Docker target "
                    "with mpi_launcher='mpirun' (node containers, mpirun over SSH), or submit Horovod jobs to a "
                    "local target, where mpirun starts the ranks.")


class DockerParameterServerBackend(_DockerClusterBackend):
    """Parameter-server jobs: one container per ps, worker and chief task."""
    kind = "docker_parameter_server"
    state_kind = KIND_PS
    state_kinds = (KIND_PS,)
    distribution_kind = dd.PsDistribution



__all__ = ["DockerMpiBackend", "DockerParameterServerBackend", "DockerClusterHandle", "cluster_spec",
           "clean_orphan_networks", "clean_orphan_networks_for_targets", "mpi_tasks", "network_create_kwargs",
           "network_name", "ps_tasks", "run_slug", "task_container_kwargs", "task_container_name"]
