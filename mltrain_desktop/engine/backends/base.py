"""The small interface every backend implements, and the job context the supervisor hands it.

A backend turns a prepared ``JobContext`` into a running job and returns a ``JobHandle`` at
once. The supervisor polls the handle, asks it to cancel, and stores ``handle.state()`` in the
database so that a later supervisor can ``reattach`` after a crash.
"""
from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import Callable


class PrepareError(RuntimeError):
    """The job cannot start: the message says what was wrong and what to do."""


@dataclasses.dataclass
class JobContext:
    run_id: str
    workspace_dir: Path
    run_dir: Path                 # runs/<run_id>
    snapshot_dir: Path            # runs/<run_id>/snapshot (the job's working directory)
    outputs_dir: Path             # runs/<run_id>/outputs
    logs_dir: Path                # runs/<run_id>/logs
    jobkit_dir: Path              # folder holding the mltrain_desktop package, for PYTHONPATH
    entry_script: str             # path relative to snapshot_dir
    arguments: list[str]          # script arguments, dataset inputs already resolved to host paths
    environment_variables: dict[str, str]  # user's variables plus MLTRAIN_* ones
    target: dict                  # the compute target row: name, kind, config (dict)
    spec: dict                    # the whole resolved run spec (run.json)
    interpreter: str | None = None          # python for local jobs (env built or current)
    inputs: dict[str, dict] = dataclasses.field(default_factory=dict)  # name -> {path (host folder), mode: mount|download}
    raw_arguments: list = dataclasses.field(default_factory=list)  # str items, or {"input": name} for a dataset input
    log: Callable[[str], None] = print      # writes a line to the driver log (Preparing output)
    cancel_requested: Callable[[], bool] = lambda: False  # True once the user asked to cancel

    @property
    def use_gpu(self) -> bool:
        return bool(self.spec.get("use_gpu"))

    @property
    def distribution(self) -> dict | None:
        return self.spec.get("distribution")


class JobHandle(abc.ABC):
    """A running job. ``poll`` returns None while running, else the exit code."""

    @abc.abstractmethod
    def poll(self) -> int | None: ...

    @abc.abstractmethod
    def cancel(self, grace_seconds: float = 5.0) -> None:
        """Stops every process/container of the job: TERM, grace period, then KILL."""

    @abc.abstractmethod
    def state(self) -> dict:
        """JSON-serialisable facts needed to find the job again (pids, container ids)."""

    def failure_detail(self) -> str | None:
        """For distributed jobs: which rank/task failed, its exit code and last lines."""
        return None

    def metrics_files(self) -> list[Path]:
        """Extra metric files to ingest besides logs/metrics.jsonl (e.g. per rank)."""
        return []


class Backend(abc.ABC):
    kind: str = "abstract"

    def prepare(self, ctx: JobContext) -> None:
        """Builds or finds the environment; raises PrepareError with a clear message."""

    @abc.abstractmethod
    def launch(self, ctx: JobContext) -> JobHandle: ...

    def reattach(self, ctx: JobContext, state: dict) -> JobHandle | None:
        """Finds a job started by an earlier supervisor, or None when it is gone."""
        return None
