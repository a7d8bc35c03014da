"""Run states and the transitions the store allows between them.

Queued → Preparing → Running → Finalizing → Completed is the usual path. A job handed to a
cluster's scheduler that holds it (Slurm's PENDING) goes Preparing → Queued, with the scheduler's
reason, and Queued → Running when the scheduler starts it.
"""
from __future__ import annotations

import enum


class RunStatus(str, enum.Enum):
    QUEUED = "Queued"
    PREPARING = "Preparing"
    RUNNING = "Running"
    FINALIZING = "Finalizing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"

    def is_terminal(self) -> bool:
        return self in TERMINAL

    def __str__(self) -> str:  # so f-strings print "Running", not "RunStatus.RUNNING"
        return self.value


TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED})
# The unfinished states, in the order a run passes them (every list of them derives from this).
ACTIVE = (RunStatus.QUEUED, RunStatus.PREPARING, RunStatus.RUNNING, RunStatus.FINALIZING)

ALLOWED = {
    RunStatus.QUEUED: {RunStatus.PREPARING, RunStatus.RUNNING, RunStatus.FAILED, RunStatus.CANCELED},
    RunStatus.PREPARING: {RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FAILED, RunStatus.CANCELED},
    RunStatus.RUNNING: {RunStatus.FINALIZING, RunStatus.FAILED, RunStatus.CANCELED},
    RunStatus.FINALIZING: {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED},
    RunStatus.COMPLETED: set(),
    RunStatus.FAILED: set(),
    RunStatus.CANCELED: set(),
}


def can_move(src: RunStatus | str, dst: RunStatus | str) -> bool:
    return RunStatus(dst) in ALLOWED[RunStatus(src)]
