"""What each fault must lead to, per run kind (the issue's expectations, as the suite checks them).

==================  ===========  ==========================================================
fault               kinds        expected outcome
==================  ===========  ==========================================================
(none)              all          Completed
kill_supervisor     local, mpi,  Failed, the error naming the supervisor (a local job cannot
                    ps           outlive its supervisor: the next client stops it)
kill_supervisor     docker,      the supervisor is replaced (driver.log: "reattached") and
                    docker_mpi   the run goes on to Completed
kill_main           all          Failed
kill_rank           mpi          Failed within 5 s of the kill, the error naming "rank 1"
kill_ps_worker      ps           Failed within 5 s, naming "worker 0"
kill_ps_task        ps           Failed within 5 s, naming "ps 0"
docker_kill         docker       Failed, the error saying the container was stopped from outside
docker_kill_rank    docker_mpi   Failed within 5 s, naming "rank 1"
restart_dockerd     docker,      Failed with "Docker engine restarted" (a run still preparing:
                    docker_mpi   "the Docker engine is not running"), or Completed when the
                                 run's containers survived (they do not: live-restore is off
                                 by default, so dockerd stops every container when it stops)
==================  ===========  ==========================================================

"Recovery time" is fault -> the run's state saying what happened: the run terminal, or (for a
replaced supervisor) the new supervisor's "reattached" line in driver.log.
"""
from __future__ import annotations

import dataclasses

FAIL_FAST_S = 5.0
REATTACH_KINDS = ("docker", "docker_mpi")


@dataclasses.dataclass(frozen=True)
class Expectation:
    statuses: tuple[str, ...]         # acceptable final statuses
    error_has: tuple[str, ...] = ()   # when Failed, the error must contain one of these (lower case)
    within_s: float | None = None     # fault -> terminal at most this long
    reattach: bool = False            # a "reattached" line must appear before the end


def expectation(fault: str | None, kind: str) -> Expectation:
    if fault is None:
        return Expectation(("Completed",))
    if fault == "kill_supervisor":
        if kind in REATTACH_KINDS:
            return Expectation(("Completed",), reattach=True)
        return Expectation(("Failed",), ("supervisor",))
    if fault == "kill_main":
        return Expectation(("Failed",))
    if fault in ("kill_rank", "docker_kill_rank"):
        return Expectation(("Failed",), ("rank 1",), FAIL_FAST_S)
    if fault == "kill_ps_worker":
        return Expectation(("Failed",), ("worker 0",), FAIL_FAST_S)
    if fault == "kill_ps_task":
        return Expectation(("Failed",), ("ps 0",), FAIL_FAST_S)
    if fault == "docker_kill":
        return Expectation(("Failed",), ("stopped from outside", "docker kill"))
    if fault == "restart_dockerd":
        # a run still preparing when the engine went away may say that instead
        return Expectation(("Failed", "Completed"), ("docker engine restarted", "docker engine is not running"))
    raise ValueError(f"no expectation for fault {fault!r}")


def killed_job(fault: str | None, kind: str) -> bool:
    """Whether the fault killed (part of) the job, so that Completed would be a wrong final state."""
    if fault is None or fault == "restart_dockerd":
        return False
    return not (fault == "kill_supervisor" and kind in REATTACH_KINDS)


def judge(fault: str | None, kind: str, status: str, error: str, fault_to_end_s: float | None,
          reattached: bool) -> list[str]:
    """What is wrong with a run's outcome (empty when it is as expected)."""
    exp = expectation(fault, kind)
    problems = []
    if status not in exp.statuses:
        problems.append(f"ended {status}, expected {' or '.join(exp.statuses)}")
    if status == "Failed" and exp.error_has and not any(s in error.lower() for s in exp.error_has):
        problems.append(f"error does not say {' / '.join(repr(s) for s in exp.error_has)}: {error[:200]!r}")
    if exp.within_s is not None and fault_to_end_s is not None and fault_to_end_s > exp.within_s:
        problems.append(f"failed {fault_to_end_s:.1f} s after the fault (at most {exp.within_s:.0f} s)")
    if exp.reattach and not reattached:
        problems.append("no new supervisor reattached to the job")
    return problems
