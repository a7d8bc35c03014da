"""The sweep driver: one detached process per sweep that runs its children from start to end.

``python -c "from mltrain_desktop.train.hyperdrive.driver import main; raise SystemExit(main())" WORKSPACE RUN_ID [--resume]``

It asks the Optuna sampler (its journal in the parent run's folder) for hyperparameters, submits
child runs through the ordinary submit path (each gets its own supervisor), keeps at most
``max_concurrent_runs`` of them unfinished (and no more than the target runs at once), reads the
children's primary metric from the store, stops children the early-termination policy picks (the
reason goes into the child's tags and events), tells the sampler each outcome, and ends the parent:
Completed when the budget is spent, Failed when every child failed or none logged the primary
metric, Canceled on cancel (every child is cancelled too). ``--resume`` continues a sweep whose
driver died: the children and the journal say where it was.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback

from ...core.errors import MLTrainError
from ...core.experiment import Experiment
from ...core.runs import Run, _StoredSpec, submit_run
from ...core.workspace import Workspace
from ...domain.run_state import ACTIVE, RunStatus
from ...engine.supervisor import DriverLog
from ...store import runs as run_rows
from ...store import sweeps
from . import results
from .config import SweepSettings
from .run import child_tags
from .sampling import CANCELED, COMPLETED, EARLY_TERMINATED, FAILED, SweepExhausted
from .submit import SAVED_PYTHONPATH

POLL_SECONDS = 0.2
CHILD_CHECK_SECONDS = 5.0
STOP_WAIT_SECONDS = 120.0
_ACTIVE = {s.value for s in ACTIVE}
_TEMPLATE_ONLY = ("hyperdrive", "run_id", "experiment")


class SweepDriver:
    def __init__(self, workspace_dir: str, run_id: str):
        self.ws = Workspace(workspace_dir)
        self.conn = self.ws.db.conn
        self.run_id = run_id
        row = run_rows.get(self.conn, run_id)
        if row is None or not sweeps.is_sweep(self.conn, run_id):
            raise SystemExit(f"no sweep {run_id} in {workspace_dir}")
        self.spec = json.loads(row["spec"])
        self.tags = json.loads(row["tags"] or "{}")
        self.settings = SweepSettings.from_dict(self.spec["hyperdrive"])
        self.metric, self.goal = self.settings.primary_metric_name, self.settings.primary_metric_goal
        self.experiment = Experiment(self.ws, self.spec["experiment"], _create=False)
        self.run_dir = self.ws.runs_dir / run_id
        self.log = DriverLog(self.run_dir / "logs" / "driver.log")
        self.target = self.tags.get("hyperdrive.target") or self.spec["compute_target"]
        self.sampler = None
        self.told: set[str] = set()
        self.stopping: str | None = None  # why no more children are started
        self.next_child_check = 0.0

    # -- helpers -------------------------------------------------------------------------------
    def say(self, line: str) -> None:
        self.log(f"[hyperdrive] {line}")

    def move(self, status: RunStatus, detail: str = "", **fields) -> bool:
        ok = run_rows.set_status(self.conn, self.run_id, status, detail, **fields)
        if ok:
            self.log(f"[mltrain] {status.value}" + (f": {detail}" if detail else ""))
        return ok

    def concurrency(self) -> int:
        """max_concurrent_runs, bounded by how many runs the compute target runs at once."""
        from ...core.compute import ComputeTarget
        try:
            limit = ComputeTarget(self.ws, self.target).max_concurrent_runs
        except MLTrainError:
            limit = self.settings.max_concurrent_runs
        return max(1, min(self.settings.max_concurrent_runs, limit))

    def children(self) -> list[results.ChildResult]:
        return results.child_results(self.conn, self.run_id, self.metric, self.goal)

    # -- stages --------------------------------------------------------------------------------
    def start(self, resume: bool) -> None:
        from ...adapters.process import process_identity
        run_rows.update_fields(self.conn, self.run_id, supervisor_pid=os.getpid(),
                               supervisor_started=process_identity(os.getpid()))
        self.sampler = self.settings.sampler(self.run_dir)
        status = run_rows.get_status(self.conn, self.run_id)
        if status == RunStatus.QUEUED:
            self.move(RunStatus.PREPARING, "sweep driver started")
            status = RunStatus.PREPARING.value
        if status == RunStatus.PREPARING:  # (again, after a restart: seeding is idempotent)
            if resume:
                self.say(f"driver restarted (pid {os.getpid()}) before the sweep had started")
            self.warm_start()
            s = self.settings
            self.move(RunStatus.RUNNING, f"{s.sampling.sampling_method_name} sampling, {s.max_total_runs} run(s), "
                                         f"{self.concurrency()} at once, policy {s.policy!r}")
        else:
            self.say(f"driver restarted (pid {os.getpid()}): continuing the sweep")
            self.reconcile()

    def warm_start(self) -> None:
        """resume_from: the earlier sweeps' children seed the sampler (idempotent by child run id)."""
        for parent in self.settings.resume_from:
            spec = json.loads(run_rows.get(self.conn, parent)["spec"])
            earlier = SweepSettings.from_dict(spec["hyperdrive"])
            found = results.child_results(self.conn, parent, earlier.primary_metric_name, earlier.primary_metric_goal)
            report = self.sampler.seed_trials([(c.hyperparameters, c.value, c.run_id) for c in found])
            self.say(f"warm start from sweep {parent}: {report.seeded} trial(s) seeded, "
                     f"{len(report.skipped)} skipped")

    def reconcile(self) -> None:
        """After a restart: trials asked but never given a child are told Canceled."""
        have = {c.trial for c in self.children()}
        for trial in self.sampler.running():
            if trial.number not in have:
                self.sampler.tell(trial.number, state=CANCELED)
                self.say(f"trial {trial.number} had no child run when the driver stopped; told Canceled")

    def tell_finished(self, children) -> None:
        for c in children:
            if c.status in _ACTIVE or c.run_id in self.told or c.trial is None:
                continue
            self.told.add(c.run_id)
            if c.status == RunStatus.COMPLETED:
                state = COMPLETED
            elif c.status == RunStatus.CANCELED:
                state = EARLY_TERMINATED if c.early_termination else CANCELED
            else:
                state = FAILED
            try:
                self.sampler.tell(c.trial, c.value, state=state, interval=len(c.points))
            except ValueError:  # told before a restart
                continue
            shown = "no value" if c.value is None else f"{self.metric}={c.value:.6g}"
            self.say(f"child {c.number} ({c.run_id}) {c.status}: {shown}")

    def apply_policy(self, children) -> None:
        table = {c.run_id: list(c.points) for c in children}
        finished = {c.run_id for c in children if c.status not in _ACTIVE}
        for decision in self.settings.decide(table, finished):
            if sweeps.note_early_termination(self.conn, decision.child_id, decision.reason):
                self.say(f"{decision.child_id}: {decision.reason}")

    def check_metric(self, children) -> None:
        """A child that completed while no child has logged the primary metric: stop the sweep, saying so."""
        if self.stopping or any(c.value is not None for c in children):
            return
        done = [c for c in children if c.status == RunStatus.COMPLETED]
        if done:
            logged = sweeps.metric_names_of_children(self.conn, self.run_id)
            self.stopping = (f"child {done[0].run_id} completed without logging the primary metric {self.metric!r} "
                             f"(the children logged: {', '.join(logged) or 'no metrics'}); set primary_metric_name "
                             "to a metric the script logs with run.log()")
            self.say(self.stopping)
            self.stop_children(children, "the sweep is ending: " + self.stopping)

    def pending_resumed(self, children) -> list[str]:
        """resume_child_runs not yet submitted again."""
        done = {c.resumed_from for c in children}
        return [r for r in self.settings.resume_child_runs if r not in done]

    def submit_resumed(self, earlier_id: str, number_of_children: int) -> None:
        """An earlier child again, with its hyperparameters and ``--resume-from`` its outputs folder."""
        earlier = Run.get(self.ws, earlier_id)
        params = earlier.hyperparameters or {}
        child = {k: v for k, v in self.spec.items() if k not in _TEMPLATE_ONLY}
        child["arguments"] = (self.settings.child_arguments(self.spec["arguments"], params)
                              + ["--resume-from", str(earlier.run_dir / "outputs")])
        tags = {**child_tags(params, None), results.RESUMED_TAG: earlier_id}
        try:
            run = submit_run(self.experiment, _StoredSpec(child), tags=tags, parent_id=self.run_id)
        except MLTrainError as exc:
            self.stopping = f"child {earlier_id} could not be resumed: {exc}"
            self.say(self.stopping)
            return
        self.say(f"child {number_of_children + 1} ({run.id}) resumes {earlier_id}: {params}")

    def submit_child(self, number_of_children: int) -> None:
        try:
            trial, params = self.sampler.ask()
        except SweepExhausted as exc:
            self.stopping = str(exc)
            return
        child = {k: v for k, v in self.spec.items() if k not in _TEMPLATE_ONLY}
        child["arguments"] = self.settings.child_arguments(self.spec["arguments"], params)
        try:
            run = submit_run(self.experiment, _StoredSpec(child), tags=child_tags(params, trial),
                             parent_id=self.run_id)
        except MLTrainError as exc:
            self.sampler.tell(trial, state=FAILED)
            self.stopping = f"child {number_of_children + 1} could not be submitted: {exc}"
            self.say(self.stopping)
            return
        self.say(f"child {number_of_children + 1} ({run.id}) submitted, trial {trial}: {params}")

    def stop_children(self, children, why: str) -> None:
        """Cancels every unfinished child and waits (a while) until they have ended."""
        pending = [c.run_id for c in children if c.status in _ACTIVE]
        for run_id in pending:
            Run(self.experiment, run_id).cancel(wait_seconds=0)
        if pending:
            self.say(f"cancelling {len(pending)} child run(s): {why}")
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while pending and time.monotonic() < deadline:
            pending = [r for r in pending if run_rows.get_status(self.conn, r) in _ACTIVE]
            time.sleep(0.2)

    def settle_children(self, children) -> None:
        """Children whose supervisor died are settled by the ordinary recovery (this sweep's driver is alive)."""
        if time.monotonic() < self.next_child_check:
            return
        self.next_child_check = time.monotonic() + CHILD_CHECK_SECONDS
        from ...adapters.process import is_same_process_alive
        for c in children:
            if c.status in _ACTIVE:
                row = run_rows.get(self.conn, c.run_id)
                pid = row["supervisor_pid"]
                if pid not in (None, -1) and not is_same_process_alive(pid, row["supervisor_started"]):
                    self.ws.recover()
                    return

    # -- the loop ------------------------------------------------------------------------------
    def loop(self) -> None:
        row = run_rows.get(self.conn, self.run_id)
        deadline = (row["started"] or time.time()) + self.settings.max_duration_minutes * 60
        while True:
            if run_rows.cancel_requested(self.conn, self.run_id):
                self.stop_children(self.children(), "the sweep was canceled")
                self.tell_finished(self.children())
                self.move(RunStatus.CANCELED, "canceled by the user")
                return
            children = self.children()
            self.tell_finished(children)
            self.apply_policy(children)
            self.check_metric(children)
            self.settle_children(children)
            active = [c for c in children if c.status in _ACTIVE]
            if self.stopping is None and time.time() > deadline:
                self.stopping = f"max_duration_minutes={self.settings.max_duration_minutes} reached"
                self.say(self.stopping)
                self.stop_children(children, self.stopping)
                continue
            if self.stopping is None and len(children) < self.settings.max_total_runs:
                if len(active) < self.concurrency():
                    resumed = self.pending_resumed(children)
                    if resumed:
                        self.submit_resumed(resumed[0], len(children))
                    else:
                        self.submit_child(len(children))
                    continue
            elif not active:
                self.finish(children)
                return
            time.sleep(POLL_SECONDS)

    def finish(self, children) -> None:
        counts: dict[str, int] = {}
        for c in children:
            counts[c.status] = counts.get(c.status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no children"
        if not children:
            why = f"no child run was started: {self.stopping or 'unknown reason'}"
            self.move(RunStatus.FAILED, why, error=why)
            return
        if all(c.status == RunStatus.FAILED for c in children):
            first = run_rows.get(self.conn, children[0].run_id)["error"] or ""
            why = f"every child run failed ({len(children)}); the first one's error:\n{first}"
            self.move(RunStatus.FAILED, f"every child run failed ({len(children)})", error=why)
            return
        best = results.best(children, self.goal)
        if best is None:
            why = self.stopping or (f"no child logged the primary metric {self.metric!r}; set primary_metric_name to "
                                    "a metric the script logs with run.log()")
            self.move(RunStatus.FAILED, "no child logged the primary metric", error=why)
            return
        sweeps.set_tags(self.conn, self.run_id, best_child_run_id=best.run_id,
                        **{"hyperdrive.best_metric": best.value})
        self.say(f"children: {summary}; best: {best.run_id} with {self.metric}={best.value:.6g} "
                 f"({best.hyperparameters})")
        self.move(RunStatus.FINALIZING, summary)
        self.move(RunStatus.COMPLETED, self.stopping or "the sweep's budget is spent")

    def run(self, resume: bool = False) -> int:
        status = run_rows.get_status(self.conn, self.run_id)
        if status is None or RunStatus(status).is_terminal():
            return 0
        try:
            self.start(resume)
            self.loop()
            return 0
        except Exception as exc:  # noqa: BLE001 - any crash must end in a recorded failure
            tb = traceback.format_exc()
            self.log(f"[hyperdrive] internal error: {exc}\n{tb}")
            try:
                self.stop_children(self.children(), f"the sweep driver failed: {exc}")
            finally:
                self.move(RunStatus.FAILED, f"internal error: {exc}", error=f"{type(exc).__name__}: {exc}\n{tb}")
            return 1


USAGE = "usage: mltrain-sweep-driver WORKSPACE RUN_ID [--resume]"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    resume = "--resume" in args
    positional = [a for a in args if a != "--resume"]
    if len(positional) != 2 or any(a.startswith("-") for a in positional):
        print(USAGE, file=sys.stderr)
        return 2
    saved = os.environ.pop(SAVED_PYTHONPATH, None)
    if saved is not None:  # the children's supervisors get the submitter's own PYTHONPATH
        value = json.loads(saved)
        if value is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = value
    return SweepDriver(*positional).run(resume=resume)


if __name__ == "__main__":
    sys.exit(main())
