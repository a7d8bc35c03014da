"""HyperDriveRun: a sweep's parent run, with its children, their results and the best of them."""
from __future__ import annotations

import json
import time

from ...core.errors import RunError
from ...core.runs import Run
from ...domain.run_state import ACTIVE, RunStatus
from ...store import runs as run_rows
from ...store import sweeps
from . import results
from .config import SweepSettings


_ACTIVE = {s.value for s in ACTIVE}


class HyperDriveRun(Run):
    """Returned by ``Experiment.submit(HyperDriveConfig(...))`` (Azure ML SDK v1's names)."""

    @property
    def settings(self) -> SweepSettings:
        return SweepSettings.from_dict(self.spec["hyperdrive"])

    @property
    def primary_metric_name(self) -> str:
        return self.settings.primary_metric_name

    def _results(self) -> list[results.ChildResult]:
        s = self.settings
        return results.child_results(self.workspace.db.conn, self.id, s.primary_metric_name, s.primary_metric_goal)

    def get_children(self, status: str | None = None) -> list[Run]:
        """The child runs, in submission order (only those in ``status`` when given)."""
        rows = sweeps.children(self.workspace.db.conn, self.id)
        return [Run(self.experiment, r["id"], _row=r) for r in rows if status is None or r["status"] == status]

    def get_status_counts(self) -> dict[str, int]:
        return sweeps.status_counts(self.workspace.db.conn, self.id)

    def get_hyperparameters(self) -> dict[str, dict]:
        """{child run id: its hyperparameters}."""
        return {r.run_id: r.hyperparameters for r in self._results()}

    def get_children_sorted_by_primary_metric(self, top: int = 0, reverse: bool = False,
                                              discard_no_metric: bool = False) -> list[dict]:
        """[{run_id, hyperparameters, best_primary_metric, status, ...}], best first; ``top`` > 0 keeps that many."""
        if not isinstance(top, int) or isinstance(top, bool) or top < 0:
            raise ValueError(f"top must be 0 (all) or a positive integer, got {top!r}")
        ranked = results.sorted_by_value(self._results(), self.settings.primary_metric_goal, reverse)
        if discard_no_metric:
            ranked = [r for r in ranked if r.value is not None]
        return [r.as_dict() for r in (ranked[:top] if top else ranked)]

    def get_best_run_by_primary_metric(self, include_failed: bool = True, include_canceled: bool = True) -> Run | None:
        """The child with the best primary metric (its best logged value), or None when no child logged it."""
        found = results.best(self._results(), self.settings.primary_metric_goal, include_failed, include_canceled)
        return None if found is None else Run(self.experiment, found.run_id)

    def cancel(self, wait_seconds: float = 60.0) -> str:
        """Cancels the sweep and every child: the driver stops them; without a live driver, this does."""
        from ...adapters.process import is_same_process_alive
        conn = self.workspace.db.conn
        run_rows.request_cancel(conn, self.id)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline and not self.is_terminal():
            row = self._require_row()
            if row["supervisor_pid"] not in (None, -1) and not is_same_process_alive(row["supervisor_pid"],
                                                                                      row["supervisor_started"]):
                from .recovery import end_sweep_without_driver
                end_sweep_without_driver(self.workspace, self.id, RunStatus.CANCELED, "canceled by the user")
                break
            time.sleep(0.1)
        while time.monotonic() < deadline and any(r["status"] in _ACTIVE for r in sweeps.children(conn, self.id)):
            time.sleep(0.1)
        return self.get_status()

    def _settle_if_orphaned(self) -> None:
        """A sweep whose driver died gets a new one (or ends, saying why); the driver settles its children."""
        from .recovery import recover_sweeps
        recover_sweeps(self.workspace)

    def wait_for_completion(self, show_output: bool = False, wait_post_processing: bool = False,
                            raise_on_error: bool = True, timeout: float | None = None) -> dict:
        details = super().wait_for_completion(show_output, wait_post_processing, False, timeout)
        if show_output:
            counts = ", ".join(f"{n} {s}" for s, n in sorted(self.get_status_counts().items()))
            print(f"Children: {counts or 'none'}", flush=True)
        if raise_on_error and details["status"] == RunStatus.FAILED:
            raise RunError(f"sweep {self.id} failed: {details.get('error', {}).get('message', '')}")
        return details

    def delete(self) -> None:
        """Removes a finished sweep with all its children; refused (nothing removed) while a child has models."""
        from ...store import models
        if not self.is_terminal():
            raise RunError(f"sweep {self.id} is {self.get_status()}; cancel it before deleting it")
        children = self.get_children()
        kept = [c.id for c in children if models.run_has_models(self.workspace.db.conn, c.id)]
        if kept:
            raise RunError(f"child run(s) {', '.join(kept)} of sweep {self.id} have registered models; their "
                           "lineage needs them, so the sweep is kept (nothing was deleted)")
        for child in children:
            child.delete()
        super().delete()

    def get_details(self) -> dict:
        details = super().get_details()
        details["hyperdrive"] = self.spec["hyperdrive"]
        details["childStatusCounts"] = self.get_status_counts()
        best = self.get_tags().get("best_child_run_id")
        if best:
            details["bestChildRunId"] = best
        return details

    def __repr__(self) -> str:
        return f"HyperDriveRun(experiment={self.experiment.name!r}, id={self.id!r}, status={self.get_status()!r})"


def child_tags(params: dict, trial: int | None) -> dict:
    """A child's tags: its hyperparameters as JSON text (Azure's form) and its trial number (if sampled)."""
    tags = {"hyperparameters": json.dumps(params)}
    if trial is not None:
        tags[results.TRIAL_TAG] = trial
    return tags
