"""The containers of one running ``mpirun``-over-SSH job on Docker: node containers and the launcher.

The containers are looked at as for every distributed Docker job (:class:`~.docker_cluster_handle.
DockerClusterHandle`: one listing per poll, every container's log streamed into driver.log, the
same teardown); what is judged are the ranks, from their launchers' records, by the MPI rules
(:class:`~mltrain_desktop.domain.distributed_policy.MpiPolicy` under mpirun), and the containers:

- a node container that ends while the run goes on is a lost node: the run fails naming it and
  its ranks (mpirun's own message would only say that daemons were lost);
- a rank whose script fails fails the run at once (mpirun would take a second or two);
- the launcher's end is mpirun's: 0 completes the run, anything else fails it with the first
  failed rank, or the node that never answered SSH, or mpirun's own words.

On a local engine the start-up watchdog reads each node's ``/proc/<pid>/net/tcp``: the ranks of a
node share its network namespace, each on its own port.
"""
from __future__ import annotations

import functools
import time

from .. import rank_launcher as rl
from ...adapters import tf_cluster as tfc
from ...domain.distributed_policy import MpiPolicy, TaskObservation
from ...domain.distribution import DEFAULT_STARTUP_TIMEOUT_S
from .docker_cluster_handle import DockerClusterHandle, how_it_ended
from .docker_mpirun_specs import LAUNCHER_TAG, SSH_WAIT_EXIT, node_tag
from .mpi import failure_report, mpirun_rank_report, rank_observation

KIND_MPIRUN = "docker_mpirun"


class DockerMpirunHandle(DockerClusterHandle):
    """Node containers running sshd, one launcher running mpirun; see the module docstring."""

    INIT_MARK = b"mltrain-node"

    def __init__(self, api, state: dict, ctx, reattached: bool = False, start_pumps: bool = True):
        super().__init__(api, state, ctx, reattached=reattached, start_pumps=start_pumps)
        self.rank_node = [int(k) for k in state.get("rank_nodes", [])]
        self.ports = [int(p) for p in state.get("ports", [])]
        self.ranks = [rl.task_tag(None, r) for r in range(len(self.rank_node))]
        self.node_tags = [t for t in self.order if t != LAUNCHER_TAG]

    @functools.cached_property
    def policy(self) -> MpiPolicy:
        return MpiPolicy(self.ranks, self._state.get("startup_timeout_s", DEFAULT_STARTUP_TIMEOUT_S),
                         self._state.get("started") or time.time(), watch=self._watch, under_mpirun=True)

    def metrics_files(self):
        return [rl.metrics_file(self.logs_dir, tag) for tag in self.ranks if not rl.is_primary(tag)]

    # -- where each rank is -------------------------------------------------------------------
    def _container_of(self, tag: str) -> str:
        return node_tag(self.rank_node[int(tag.rsplit("_", 1)[1])])

    def _port_of(self, tag: str) -> int:
        return self.ports[int(tag.rsplit("_", 1)[1])]

    def _node_name(self, tag: str) -> str:
        return self.tasks[tag]["container_name"]

    def _looks(self, now: float) -> list[TaskObservation]:
        statuses = rl.read_statuses(self.logs_dir)
        listening = self._sockets(now)
        looks = []
        for r, tag in enumerate(self.ranks):
            node = self._node_name(self._container_of(tag))
            looks.append(rank_observation(tag, statuses.get(tag, {}), tfc.address(node, self.ports[r]),
                                          listening.get(tag), where=f"node {node}"))
        return looks

    # -- the rules ----------------------------------------------------------------------------
    def _judge(self, now: float) -> int | None:
        lost = next((t for t in self.node_tags if t in self._ended), None)
        if lost is not None:
            return self._lost_node(lost)
        decision = self.policy.decide(self._looks(now), now)
        if decision is not None and not decision.succeeded:
            self._detail = failure_report(decision, self.logs_dir)
            self._teardown(decision.grace_s)
            return self._finish(decision.exit_code)
        ended = self._ended.get(LAUNCHER_TAG)
        if ended is None:
            return None  # every rank may have ended with 0: mpirun's exit (it flushes their output) ends the run
        code = ended.get("code")
        if code != 0:
            self._detail = self._launcher_report(ended)
        self._teardown(0)
        return self._finish(0 if code == 0 else (code if code else 1))

    def _lost_node(self, tag: str) -> int:
        name = self._node_name(tag)
        k = self.node_tags.index(tag)
        ranks = [r for r, node in enumerate(self.rank_node) if node == k]
        ended = self._ended[tag]
        self._detail = rl.failure_report(
            f"node {name} (rank {'/'.join(map(str, ranks))})",
            f"was lost mid-run: its container {how_it_ended(name, ended, {})}",
            rl.log_file(self.logs_dir, rl.task_tag(None, ranks[0])) if ranks else None,
            hint="the engine stopped mpirun and the other nodes; submit the run again")
        self.ctx_log(f"[mltrain] node {name} was lost mid-run; stopping the job")
        self._teardown(0)
        code = ended.get("code")
        return self._finish(code if code else 1)

    def _launcher_report(self, ended: dict) -> str:
        failed = self.policy.first_failure(self._looks(time.time()))
        if failed is not None:
            return failure_report(failed, self.logs_dir)
        driver = self.logs_dir / "driver.log"
        if ended.get("code") == SSH_WAIT_EXIT:
            return rl.failure_report(
                "the launcher", "could not reach every node over SSH", driver,
                hint="the node containers' sshd did not answer in time; see their lines above in driver.log")
        said = mpirun_rank_report(self.logs_dir, ended.get("code"))
        if said is not None:
            return said
        name = self.tasks[LAUNCHER_TAG]["container_name"]
        return rl.failure_report("mpirun", how_it_ended(name, ended, {}), driver)


__all__ = ["KIND_MPIRUN", "DockerMpirunHandle"]
