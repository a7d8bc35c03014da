"""The seeded plan of a chaos run: which runs go where, which fault hits which run, and when.

Everything random in the suite is drawn here from one ``random.Random(seed)``, so a seed names
one experiment exactly (what happens after a fault still depends on the machine's timing).

Run kinds (``--targets``): ``local`` (the sample, one process), ``docker`` (the sample in a
container), ``mpi`` (the MultiWorkerMirroredStrategy sample with MpiConfiguration, 2 ranks:
alternately under mpirun on the local target and as one container per rank on the Docker
target when ``docker`` is also chosen), ``ps`` (the ParameterServerStrategy sample with
TensorflowConfiguration: 1 ps, 1 worker, 1 chief, local processes).

Run faults by kind (one per run at most; about one run in four gets none and must complete):

============  ========================================================================
kind          faults
============  ========================================================================
local         kill_supervisor, kill_main
docker        kill_supervisor, kill_main, docker_kill
mpi (local)   kill_supervisor, kill_main (mpirun), kill_rank
mpi (docker)  kill_supervisor, docker_kill_rank
ps            kill_supervisor, kill_main (the chief), kill_ps_worker, kill_ps_task
============  ========================================================================

Global faults (not tied to one run), at seeded times over the expected span of the runs:
kill_window, kill_cli_follow, second_client (each more than once for more runs), and
restart_dockerd (only with ``--restart-dockerd``).
"""
from __future__ import annotations

import dataclasses
import random

RUN_FAULTS = {
    "local": ["kill_supervisor", "kill_main"],
    "docker": ["kill_supervisor", "kill_main", "docker_kill"],
    "mpi": ["kill_supervisor", "kill_main", "kill_rank"],
    "docker_mpi": ["kill_supervisor", "docker_kill_rank"],
    "ps": ["kill_supervisor", "kill_main", "kill_ps_worker", "kill_ps_task"],
}
GLOBAL_FAULTS = ("kill_window", "kill_cli_follow", "second_client")
NO_FAULT_SHARE = 0.25
MAX_FAULT_DELAY_S = 2.5  # after the run's first flushed point


@dataclasses.dataclass
class PlannedRun:
    index: int
    kind: str                   # local | docker | mpi | docker_mpi | ps
    fault: str | None           # a RUN_FAULTS entry, or None
    fault_delay_s: float        # after the run's first flushed metric point
    submit_at_s: float          # after the suite starts submitting


@dataclasses.dataclass
class PlannedGlobal:
    kind: str
    at_s: float                 # after the suite starts submitting
    first_at_s: float | None = None  # when it was first due (set when it is put off)


def expand_kinds(targets: list[str], runs: int, docker_mpi: bool = True) -> list[str]:
    """The kind of each run: the targets in turn; mpi alternates local/docker when docker is on
    (and ``docker_mpi``: a private engine cannot network rank containers)."""
    kinds, mpi_seen = [], 0
    for i in range(runs):
        t = targets[i % len(targets)]
        if t == "mpi":
            if "docker" in targets and docker_mpi and mpi_seen % 2 == 1:
                t = "docker_mpi"
            mpi_seen += 1
        kinds.append(t)
    return kinds


def make_plan(seed: int, runs: int, targets: list[str], restart_dockerd: bool,
              submit_spacing_s: float = 1.5, only: set[str] | None = None, docker_mpi: bool = True
              ) -> tuple[list[PlannedRun], list[PlannedGlobal]]:
    """The runs and global faults; ``only`` narrows the run faults drawn (a kind with none of
    them gets no fault), which is how a test aims at one behaviour."""
    rng = random.Random(seed)
    planned = []
    for i, kind in enumerate(expand_kinds(targets, runs, docker_mpi)):
        choices = [f for f in RUN_FAULTS[kind] if only is None or f in only]
        fault = None if rng.random() < NO_FAULT_SHARE or not choices else rng.choice(choices)
        planned.append(PlannedRun(i, kind, fault, round(rng.uniform(0.0, MAX_FAULT_DELAY_S), 2),
                                  round(i * submit_spacing_s + rng.uniform(0.0, 0.5), 2)))
    span = max(20.0, runs * submit_spacing_s + 15.0)
    globals_: list[PlannedGlobal] = []
    rounds = max(1, runs // 10)
    for _ in range(rounds):
        for kind in GLOBAL_FAULTS:
            globals_.append(PlannedGlobal(kind, round(rng.uniform(8.0, span), 2)))
    if restart_dockerd and any(p.kind in ("docker", "docker_mpi") for p in planned):
        globals_.append(PlannedGlobal("restart_dockerd", round(rng.uniform(span * 0.5, span), 2)))
    globals_.sort(key=lambda g: g.at_s)
    return planned, globals_
