"""The small interface every backend implements, and the job context the supervisor hands it.

A backend turns a prepared ``JobContext`` into a running job and returns a ``JobHandle`` at
once. The supervisor polls the handle, asks it to cancel, and stores ``handle.state()`` in the
database so that a later supervisor can ``reattach`` after a crash.
"""
from __future__ import annotations

import abc
from pathlib import Path
from typing import Callable

from ...domain.errors import PrepareError  # noqa: F401 - backends raise it from here


class JobContext:
    """What a backend needs to start a job. (A plain class: ``dataclasses`` costs each run's
    supervisor ~10 ms of imports before its job can start.)"""

    def __init__(self, run_id: str, workspace_dir: Path, run_dir: Path, snapshot_dir: Path, outputs_dir: Path,
                 logs_dir: Path, jobkit_dir: Path, entry_script: str, arguments: list[str],
                 environment_variables: dict[str, str], target: dict, spec: dict, interpreter: str | None = None,
                 inputs: dict[str, dict] | None = None, raw_arguments: list | None = None,
                 log: Callable[[str], None] = print, cancel_requested: Callable[[], bool] = lambda: False):
        self.run_id = run_id
        self.workspace_dir = workspace_dir
        self.run_dir = run_dir                  # runs/<run_id>
        self.snapshot_dir = snapshot_dir        # runs/<run_id>/snapshot (the job's working directory)
        self.outputs_dir = outputs_dir          # runs/<run_id>/outputs
        self.logs_dir = logs_dir                # runs/<run_id>/logs
        self.jobkit_dir = jobkit_dir            # folder holding the mltrain_desktop package, for PYTHONPATH
        self.entry_script = entry_script        # path relative to snapshot_dir
        self.arguments = arguments              # script arguments, dataset inputs resolved to host paths
        self.environment_variables = environment_variables  # user's variables plus MLTRAIN_* ones
        self.target = target                    # the compute target row: name, kind, config (dict)
        self.spec = spec                        # the whole resolved run spec (run.json)
        self.interpreter = interpreter          # python for local jobs (env built or current)
        self.inputs = {} if inputs is None else inputs  # name -> {path (host folder), mode: mount|download}
        self.raw_arguments = [] if raw_arguments is None else raw_arguments  # str, or {"input": name}
        self.log = log                          # writes a line to the driver log (Preparing output)
        self.cancel_requested = cancel_requested  # True once the user asked to cancel

    def replace(self, **changes) -> JobContext:
        """A copy with ``changes`` applied (the original is left as it is)."""
        new = object.__new__(JobContext)
        new.__dict__.update(self.__dict__)
        for name, value in changes.items():
            if name not in new.__dict__:
                raise TypeError(f"JobContext has no field {name!r}")
            setattr(new, name, value)
        return new

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
