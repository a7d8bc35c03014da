"""The rules of a distributed run, decided from what its tasks are seen doing (no I/O, no clock).

A task runtime (ranks under mpirun, one process per parameter-server task, one container per
task) looks at its tasks on every poll, hands the looks to its policy with the time, and acts
on the answer: stop the tasks, end the run with the result and message. The policy holds the
start-up watchdog's memory (which tasks were seen listening, since when one left early).

MPI: the first rank that fails (ends non-zero, or vanishes) fails the run with its exit code;
the run succeeds when every rank ended with 0. Parameter server: the chief decides: the first
task to end gives the result, a chief that ends with 0 succeeds, anything else ending first
(a ps or worker task, even with 0) fails the run; the others are stopped either way.

The start-up watchdog runs where the runtime can see sockets (``listening`` in a look). MPI:
once a rank listens on its TF_CONFIG port, a rank that left with 0 without ever listening fails
the run (after being seen so for a second), and every watched rank must listen by the startup
deadline; when none listens by then the job does not use TF_CONFIG (Horovod, mpi4py) and the
watchdog stops. Parameter server: every ps and worker task must listen by the deadline.
Standard library only.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Iterable

STOP_GRACE_S = 2.0          # how long stopped tasks get between SIGTERM and SIGKILL
PORT_CHECK_EVERY_S = 0.5    # how often a runtime looks at the tasks' sockets
EARLY_EXIT_CONFIRM_S = 1.0  # how long a rank must be seen gone without joining before it fails the run
CHIEF = "chief_0"
_UNKNOWN_CODE = -1          # the run's exit code when the task's own is unknown (e.g. its container vanished)


def task_name(tag: str) -> str:
    """``rank_1`` -> ``rank 1``."""
    return tag.replace("_", " ")


def task_names(tags: Iterable[str]) -> str:
    """``rank 1`` / ``ranks 0, 2`` / ``ps 0, worker 1``."""
    tags = list(tags)
    if len(tags) > 1 and all(t.startswith("rank_") for t in tags):
        return "ranks " + ", ".join(t.split("_", 1)[1] for t in tags)
    return ", ".join(task_name(t) for t in tags)


@dataclasses.dataclass(frozen=True)
class TaskObservation:
    """One look at one task. The runtime's words (``how``, ``address``, ``where``) go into messages.

    ``exit_code``: the task's code as its launcher reports it (128 + N when killed by signal N);
    None for a task that ended with no code known (its container vanished). ``ended_at``: when it
    ended (seconds, the clock the policy is given). ``stopped``: it ended because it was told to
    stop, so its end is not its own failure. ``listening``: its server listens on its TF_CONFIG
    port; None when the sockets were not looked at on this poll.
    """

    tag: str
    ended: bool = False
    exit_code: int | None = None
    ended_at: float | None = None
    how: str = ""
    stopped: bool = False
    listening: bool | None = None
    address: str = ""
    where: str = ""

    @property
    def task_type(self) -> str:
        return self.tag.rsplit("_", 1)[0]

    @property
    def index(self) -> int:
        return int(self.tag.rsplit("_", 1)[1])

    @property
    def name(self) -> str:
        return task_name(self.tag)

    def how_it_ended(self) -> str:
        if self.how:
            return self.how
        return "ended (exit code unknown)" if self.exit_code is None else f"exited with code {self.exit_code}"


class Outcome(str, enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class Decision:
    """The run's end: its outcome and exit code, the tasks to stop, and (failed) what to say.

    The message is ``subject how; hint``; ``task`` is the tag whose log the report shows, so a
    runtime writes ``failure_report(d.subject, d.how, log_of(d.task), hint=d.hint)``.
    """

    outcome: Outcome
    exit_code: int
    stop: tuple[str, ...] = ()
    grace_s: float = STOP_GRACE_S
    task: str | None = None
    subject: str = ""
    how: str = ""
    hint: str = ""

    @property
    def succeeded(self) -> bool:
        return self.outcome is Outcome.SUCCEEDED

    @property
    def message(self) -> str | None:
        if self.succeeded:
            return None
        return f"{self.subject} {self.how}" + (f"; {self.hint}" if self.hint else "")


def _first_ended(ended: list[TaskObservation], order: list[str]) -> TaskObservation:
    """The task that ended first (by ``ended_at``; a tie, or no time, by the runtime's task order)."""
    inf = float("inf")
    return min(ended, key=lambda o: (inf if o.ended_at is None else o.ended_at, order.index(o.tag)))


class _Policy:
    def __init__(self, tags: Iterable[str], startup_timeout_s: float, started_at: float, *, watch: bool = True,
                 watched: Iterable[str] | None = None):
        self.tags = list(tags)
        if not self.tags or len(set(self.tags)) != len(self.tags):
            raise ValueError(f"a distributed run needs distinct task tags, got {self.tags!r}")
        self.startup_timeout_s = float(startup_timeout_s)
        self.started_at = float(started_at)
        self.watched = [t for t in self.tags if watched is None or t in set(watched)]
        self.watching = bool(watch and self.watched)
        self.joined: set[str] = set()   # watched tasks seen listening
        self._last_check: float | None = None

    def port_check_due(self, now: float) -> bool:
        """Whether the runtime should look at the sockets on this poll; a True answer counts as the look."""
        if not self.watching or (self._last_check is not None and now - self._last_check < PORT_CHECK_EVERY_S):
            return False
        self._last_check = now
        return True

    def stop_watching(self) -> None:
        """The runtime cannot see the tasks' sockets: the exits alone decide from now on."""
        self.watching = False

    def _table(self, observations: Iterable[TaskObservation]) -> dict[str, TaskObservation]:
        table = {t: TaskObservation(t) for t in self.tags}  # a task not looked at counts as running
        for o in observations:
            if o.tag not in table:
                raise ValueError(f"{o.tag!r} is not a task of this run ({', '.join(self.tags)})")
            table[o.tag] = o
        return table

    def _note_listeners(self, table: dict[str, TaskObservation]) -> bool:
        """Adds the watched tasks listening now to ``joined``; False when there is nothing to watch with."""
        looks = [table[t] for t in self.watched]
        if not self.watching or all(o.listening is None for o in looks):
            return False
        self.joined |= {o.tag for o in looks if o.listening and not o.ended}
        return True

    def _running(self, table: dict[str, TaskObservation], but: str | None = None) -> tuple[str, ...]:
        return tuple(t for t in self.tags if t != but and not table[t].ended)

    def _addresses(self, table, tags) -> str:
        return ", ".join(table[t].address for t in tags)


class MpiPolicy(_Policy):
    """The first bad rank fails the run; all ranks ending with 0 succeed; the start-up watchdog.

    ``under_mpirun``: the ranks run under mpirun (which also stops the others, and lets Horovod
    work); False for one container per rank. ``watched``: the ranks whose sockets the runtime can
    see (default all).
    """

    def __init__(self, tags, startup_timeout_s, started_at, *, watch=True, watched=None, under_mpirun=False):
        super().__init__(tags, startup_timeout_s, started_at, watch=watch, watched=watched)
        self.under_mpirun = under_mpirun
        self._early_exit_since: float | None = None

    def decide(self, observations: Iterable[TaskObservation], now: float) -> Decision | None:
        table = self._table(observations)
        failure = self.first_failure(table.values())
        if failure is not None:
            return failure
        if all(o.ended and o.exit_code == 0 for o in table.values()):
            return Decision(Outcome.SUCCEEDED, 0, grace_s=0.0)
        return self._watchdog(table, now)

    def first_failure(self, observations: Iterable[TaskObservation]) -> Decision | None:
        """The rank that failed first (a stopped rank is not a failure), as a Decision; None if none failed."""
        table = self._table(observations)
        failed = [o for o in table.values() if o.ended and not o.stopped and o.exit_code != 0]
        if not failed:
            return None
        first = _first_ended(failed, self.tags)
        others = [t for t in self.tags if t != first.tag]
        if self.under_mpirun:
            hint = "the other rank(s) were stopped"
        else:
            hint = f"the engine stopped {task_names(others)}" if others else ""
        code = _UNKNOWN_CODE if first.exit_code is None else first.exit_code
        return Decision(Outcome.FAILED, code, stop=self._running(table, first.tag), task=first.tag,
                        subject=first.name, how=first.how_it_ended(), hint=hint)

    def _watchdog(self, table: dict[str, TaskObservation], now: float) -> Decision | None:
        if not self._note_listeners(table):
            return None
        if len(self.joined) == len(self.watched):
            self.watching = False  # everyone joined: the start-up phase is over
            return None
        late = now - self.started_at > self.startup_timeout_s
        if not self.joined:
            if late:
                self.watching = False  # nobody uses TF_CONFIG (Horovod, mpi4py): the exits decide alone
            return None
        waiting = [t for t in self.watched if t in self.joined and not table[t].ended]
        left = [t for t in self.watched if t not in self.joined and table[t].ended and table[t].exit_code == 0]
        if left and waiting:
            if self._early_exit_since is None:
                self._early_exit_since = now
            elif now - self._early_exit_since >= EARLY_EXIT_CONFIRM_S:
                return self._left_early(table, left[0], waiting)
        else:
            self._early_exit_since = None
        if late:
            missing = [t for t in self.watched if t not in self.joined]
            return Decision(
                Outcome.FAILED, 1, stop=self._running(table), task=missing[0], subject=task_names(missing),
                how=f"did not join the TensorFlow cluster within the startup deadline ({self.startup_timeout_s:.0f} s)",
                hint=(f"no listener on {self._addresses(table, missing)} while {task_names(waiting)} waited; raise "
                      "startup_timeout_s in the compute target's config if the script does long work before "
                      "creating its strategy"))
        return None

    def _left_early(self, table, tag: str, waiting: list[str]) -> Decision:
        o = table[tag]
        horovod = "(or use Horovod)" if self.under_mpirun else "(Horovod needs a local target)"
        return Decision(
            Outcome.FAILED, 1, stop=self._running(table), task=tag, subject=o.name,
            how="exited with code 0 without joining the TensorFlow cluster" + (f" ({o.where})" if o.where else ""),
            hint=(f"it never listened on its TF_CONFIG address {o.address}, and {task_names(waiting)} waited for "
                  f"it; every rank must create tf.distribute.MultiWorkerMirroredStrategy() {horovod}. The engine "
                  "stopped the job."))


class PsPolicy(_Policy):
    """The chief decides: the first task to end gives the result; the ps and worker tasks must serve in time."""

    def __init__(self, tags, startup_timeout_s, started_at, *, watch=True, chief: str = CHIEF):
        tags = list(tags)
        if chief not in tags:
            raise ValueError(f"a parameter-server run needs a chief ({chief}), got {tags!r}")
        super().__init__(tags, startup_timeout_s, started_at, watch=watch, watched=[t for t in tags if t != chief])
        self.chief = chief

    def decide(self, observations: Iterable[TaskObservation], now: float) -> Decision | None:
        table = self._table(observations)
        ended = [o for o in table.values() if o.ended]
        if not ended:
            return self._watchdog(table, now)
        first = _first_ended(ended, self.tags)
        code = _UNKNOWN_CODE if first.exit_code is None else first.exit_code
        stop = self._running(table, first.tag)
        if first.tag == self.chief and code == 0:
            return Decision(Outcome.SUCCEEDED, 0, stop=stop)
        early = "" if first.tag == self.chief or code != 0 else (
            "before the chief finished; ps and worker tasks must serve until the chief ends "
            "(tf.distribute.Server(...).join())")
        stopped = f"the engine stopped {task_names(t for t in self.tags if t != first.tag)}" + (
            " (they serve only while the chief runs)" if first.tag == self.chief else "")
        return Decision(Outcome.FAILED, code if code != 0 else 1, stop=stop, task=first.tag, subject=first.name,
                        how=first.how_it_ended(), hint="; ".join(x for x in (early, stopped) if x))

    def _watchdog(self, table: dict[str, TaskObservation], now: float) -> Decision | None:
        if not self._note_listeners(table):
            return None
        if len(self.joined) == len(self.watched):
            self.watching = False
            return None
        if now - self.started_at <= self.startup_timeout_s:
            return None
        missing = [t for t in self.watched if t not in self.joined]
        return Decision(
            Outcome.FAILED, 1, stop=self._running(table), task=missing[0], subject=task_names(missing),
            how=f"did not start serving within the startup deadline ({self.startup_timeout_s:.0f} s)",
            hint=(f"no listener on {self._addresses(table, missing)}; a ps or worker task must start "
                  "tf.distribute.Server with its TF_CONFIG and join() it; raise startup_timeout_s in the compute "
                  "target's config if it needs longer"))


__all__ = ["CHIEF", "EARLY_EXIT_CONFIRM_S", "PORT_CHECK_EVERY_S", "STOP_GRACE_S", "Decision", "MpiPolicy",
           "Outcome", "PsPolicy", "TaskObservation", "task_name", "task_names"]
