"""Slurm job states mapped onto run states, with the reason Slurm gives.

``squeue`` reports PENDING/RUNNING/... with a reason (``Resources``, ``Priority``,
``PartitionNodeLimit``); ``sacct`` reports the final state (``CANCELLED by 0``) and exit code.
"""
from __future__ import annotations

from ...domain.run_state import RunStatus

# Slurm state (first word, without "+" suffix) -> our state
_MAP = {
    "PENDING": RunStatus.QUEUED, "CONFIGURING": RunStatus.QUEUED, "REQUEUED": RunStatus.QUEUED,
    "REQUEUE_HOLD": RunStatus.QUEUED, "REQUEUE_FED": RunStatus.QUEUED, "RESV_DEL_HOLD": RunStatus.QUEUED,
    "SUSPENDED": RunStatus.RUNNING, "RUNNING": RunStatus.RUNNING, "COMPLETING": RunStatus.RUNNING,
    "STAGE_OUT": RunStatus.RUNNING, "SIGNALING": RunStatus.RUNNING, "RESIZING": RunStatus.RUNNING,
    "STOPPED": RunStatus.RUNNING,
    "COMPLETED": RunStatus.COMPLETED,
    "CANCELLED": RunStatus.CANCELED,
    "FAILED": RunStatus.FAILED, "TIMEOUT": RunStatus.FAILED, "NODE_FAIL": RunStatus.FAILED,
    "OUT_OF_MEMORY": RunStatus.FAILED, "PREEMPTED": RunStatus.FAILED, "BOOT_FAIL": RunStatus.FAILED,
    "DEADLINE": RunStatus.FAILED, "SPECIAL_EXIT": RunStatus.FAILED, "REVOKED": RunStatus.FAILED,
}
# What each failure means, in words a user acts on
_WHY = {
    "TIMEOUT": "the job reached its time limit; raise time_limit on the target or shorten the run",
    "NODE_FAIL": "a node of the job failed",
    "OUT_OF_MEMORY": "the job ran out of memory; ask for fewer ranks per node or a node with more memory",
    "PREEMPTED": "the job was preempted by a job of higher priority; submit it again",
    "BOOT_FAIL": "a node of the job failed to boot",
    "DEADLINE": "the job reached its deadline before it could run",
    "FAILED": "the job's script exited with an error",
    "CANCELLED": "the job was cancelled",
}


def base_state(slurm_state: str) -> str:
    """``CANCELLED by 0`` -> ``CANCELLED``; ``COMPLETED+`` -> ``COMPLETED``."""
    word = (slurm_state or "").strip().split(" ")[0]
    return word.rstrip("+").upper()


def run_status(slurm_state: str) -> RunStatus:
    """Our state for a Slurm state; an unknown state counts as still running (Slurm has the job)."""
    return _MAP.get(base_state(slurm_state), RunStatus.RUNNING)


def describe(slurm_state: str, reason: str = "", nodes: str = "", exit_code: str = "") -> str:
    """One line for the run's log or error: ``PENDING (Resources)``, ``NODE_FAIL on node2: ...``."""
    state = base_state(slurm_state)
    text = state
    if nodes and nodes not in ("None assigned", "(null)") and state not in ("PENDING",):
        text += f" on {nodes}"
    if reason and reason not in ("None", "(null)"):
        text += f" ({reason})"
    if exit_code and exit_code not in ("0:0",) and state not in ("PENDING", "RUNNING"):
        text += f", exit code {exit_code}"
    why = _WHY.get(state)
    if why and run_status(state) != RunStatus.COMPLETED:
        text += f": {why}"
    return text


def exit_status(slurm_state: str, exit_code: str) -> int:
    """The job's exit code from sacct's ``ExitCode`` (``3:0``; ``0:9`` = killed by signal 9)."""
    try:
        code, _, sig = (exit_code or "0:0").partition(":")
        code_i, sig_i = int(code), int(sig or 0)
    except ValueError:
        code_i, sig_i = 0, 0
    state = base_state(slurm_state)
    if state == "COMPLETED":
        return 0
    if code_i:
        return code_i
    if sig_i:
        return 128 + sig_i
    return 1  # failed without an exit code (TIMEOUT, NODE_FAIL, CANCELLED before start)
