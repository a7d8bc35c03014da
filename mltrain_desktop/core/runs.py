"""A run as the driver sees it: submitted, watched, cancelled, its files, metrics and models.

Only the standard library is imported at module level: a training job imports
``from mltrain_desktop.core import Run`` and must not pull in the app's dependencies.
``Run.get_context()`` (inherited from the in-job API) works the same here.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

from .. import run as _job_run
from ..domain.run_state import RunStatus
from .run_logging import DriverLogging

# The store's modules are imported inside the methods: a training job imports this module and
# must not pay for sqlite3 and the store.

SNAPSHOT_IGNORE = shutil.ignore_patterns("outputs", "logs", ".git", "__pycache__", ".mltrain", "*.pyc",
                                         ".ipynb_checkpoints")


class Run(DriverLogging, _job_run.Run):
    """Returned by ``Experiment.submit``; also ``Run.get_context()`` inside a job."""

    def __init__(self, experiment, run_id: str, _row=None):
        if isinstance(experiment, (str, type(None))):  # the in-job constructor's signature
            super().__init__(experiment, run_id if isinstance(run_id, str) else None)
            self.experiment = None
            self.workspace = None
            return
        super().__init__(run_id, None)
        self.experiment = experiment
        self.workspace = experiment.workspace
        self.id = run_id
        if _row is None and self._row() is None:
            from .errors import RunError
            raise RunError(f"no run {run_id!r} in experiment {experiment.name!r}")

    # -- lookup ---------------------------------------------------------------------------
    @staticmethod
    def get(workspace, run_id: str) -> "Run":
        from ..store import runs as run_rows
        from .errors import RunError
        from .experiment import Experiment
        name = run_rows.experiment_of(workspace.db.conn, run_id)
        if name is None:
            raise RunError(f"no run with id {run_id!r} in this workspace; `mltrain run list` shows the runs")
        from ..store import sweeps
        if sweeps.is_sweep(workspace.db.conn, run_id):
            from ..train.hyperdrive.run import HyperDriveRun
            return HyperDriveRun(Experiment(workspace, name, _create=False), run_id)
        return Run(Experiment(workspace, name, _create=False), run_id)

    @staticmethod
    def list(workspace, experiment: str | None = None, status: str | None = None,
             limit: int | None = None) -> list["Run"]:
        """The workspace's runs, newest first: of one experiment, in one status, at most ``limit``."""
        from ..store import runs as run_rows
        from .experiment import Experiment
        found: dict[str, Experiment] = {}
        out = []
        for r in run_rows.summaries(workspace.db.conn, experiment=experiment, status=status, limit=limit):
            exp = found.get(r["experiment"])
            if exp is None:
                exp = found[r["experiment"]] = Experiment(workspace, r["experiment"], _create=False)
            out.append(Run(exp, r["id"], _row=r))
        return out

    @staticmethod
    def count_by_status(workspace) -> dict[str, int]:
        """{status: how many runs of the workspace are in it} (statuses with no run left out)."""
        from ..store import runs as run_rows
        return run_rows.count_by_status(workspace.db.conn)

    def _row(self) -> dict | None:
        from ..store import runs as run_rows
        return run_rows.get(self.workspace.db.conn, self.id)

    def _require_row(self) -> dict:
        row = self._row()
        if row is None:
            from .errors import RunError
            raise RunError(f"run {self.id} no longer exists in the workspace")
        return row

    @property
    def run_dir(self) -> Path:
        return self.workspace.runs_dir / self.id

    @property
    def number(self) -> int:
        return self._require_row()["number"]

    @property
    def status(self) -> str:
        return self.get_status()

    @property
    def spec(self) -> dict:
        return json.loads(self._require_row()["spec"])

    # -- state ----------------------------------------------------------------------------
    def get_status(self) -> str:
        return self._require_row()["status"]

    def is_terminal(self) -> bool:
        return RunStatus(self.get_status()).is_terminal()

    def get_events(self) -> list[dict]:
        from ..store import runs as run_rows
        return run_rows.events(self.workspace.db.conn, self.id)

    def get_details(self) -> dict:
        from ..store import runs as run_rows
        row = self._require_row()
        spec = json.loads(row["spec"])
        inputs = run_rows.inputs(self.workspace.db.conn, self.id)

        def iso(t):
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else None
        details = {
            "runId": self.id,
            "experiment": self.experiment.name,
            "number": row["number"],
            "status": row["status"],
            "target": row["compute"],
            "createdTimeUtc": iso(row["created"]),
            "startTimeUtc": iso(row["started"]),
            "endTimeUtc": iso(row["ended"]),
            "exitCode": row["exit_code"],
            "script": spec.get("entry_script"),
            "arguments": [a if isinstance(a, str) else f"DatasetConsumptionConfig:{a['input']}" for a in spec["arguments"]],
            "runDefinition": spec,
            "inputDatasets": [{"name": i["input"], "mode": i["mode"], "dataset": i["dataset"],
                               "version": i["version"]} for i in inputs],
            "tags": json.loads(row["tags"] or "{}"),
            "events": self.get_events(),
            "logFiles": {p: str(self.run_dir / p) for p in self.get_file_names() if p.startswith("logs/")},
            "environmentHash": row["environment_hash"],
            "backendState": json.loads(row["backend_state"] or "{}"),
        }
        if row["error"]:
            details["error"] = {"message": row["error"]}
        if row.get("parent_id"):
            details["parentRunId"] = row["parent_id"]
            hp = details["tags"].get("hyperparameters")
            details["hyperparameters"] = json.loads(hp) if isinstance(hp, str) else None
            if "hyperdrive.early_termination" in details["tags"]:
                details["earlyTermination"] = details["tags"]["hyperdrive.early_termination"]
        return details

    def get_tags(self) -> dict:
        return json.loads(self._require_row()["tags"] or "{}")

    # -- sweeps ---------------------------------------------------------------------------
    @property
    def parent_id(self) -> str | None:
        """The sweep (HyperDriveRun) this run is a child of, or None."""
        return self._require_row().get("parent_id")

    @property
    def hyperparameters(self) -> dict | None:
        """A sweep child's hyperparameters ({'--batch-size': 64, ...}); None for other runs."""
        text = self.get_tags().get("hyperparameters")
        return json.loads(text) if isinstance(text, str) else None

    def get_parent(self):
        """The HyperDriveRun this run is a child of, or None."""
        return None if self.parent_id is None else Run.get(self.workspace, self.parent_id)

    # -- metrics --------------------------------------------------------------------------
    def get_metrics(self, name: str | None = None, rank: int | None = 0) -> dict:
        """{name: value} for single values, {name: [values...]} for series (the seed's shape)."""
        from ..store import metrics
        conn = self.workspace.db.conn
        out: dict[str, list] = {}
        for n, v in metrics.points(conn, self.id, name, rank):
            out.setdefault(n, []).append(v)
        for n, r in metrics.table_rows(conn, self.id):
            if name is not None and n != name:
                continue
            table = out.setdefault(n, {})
            if isinstance(table, dict):
                for k, v in r.items():
                    table.setdefault(k, []).append(v)
        return {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in out.items()}

    def get_metric_series(self, name: str, rank: int = 0, after_step: int = -1) -> tuple[list, list, list]:
        """(steps, values, wall times) of one metric, optionally only steps after ``after_step``."""
        from ..store import metrics
        rows = metrics.series(self.workspace.db.conn, self.id, name, rank, after_step)
        return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]

    def get_metric_names(self) -> list[tuple[str, int]]:
        from ..store import metrics
        return metrics.series_names(self.workspace.db.conn, self.id)

    # -- files ----------------------------------------------------------------------------
    def get_file_names(self) -> list[str]:
        out = []
        for top in ("outputs", "logs"):
            base = self.run_dir / top
            if base.is_dir():
                out.extend(sorted(p.relative_to(self.run_dir).as_posix() for p in base.rglob("*") if p.is_file()))
        return out

    def _safe_path(self, name: str) -> Path:
        from .errors import RunError
        p = (self.run_dir / name).resolve()
        try:
            p.relative_to(self.run_dir.resolve())
        except ValueError:
            raise RunError(f"{name!r} is outside the run's folder") from None
        if not p.is_file():
            raise RunError(f"run {self.id} has no file {name!r}; run.get_file_names() lists its files")
        return p

    def download_file(self, name: str, output_file_path: str | None = None, _validate_checksum: bool = False) -> str:
        src = self._safe_path(name)
        dest = Path(output_file_path or Path(name).name)
        if dest.is_dir():
            dest = dest / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return str(dest)

    def download_files(self, prefix: str = "", output_directory: str | None = None, append_prefix: bool = True) -> list[str]:
        out_dir = Path(output_directory or ".")
        got = []
        for name in self.get_file_names():
            if name.startswith(prefix):
                rel = name if append_prefix else name[len(prefix):].lstrip("/")
                got.append(self.download_file(name, str(out_dir / rel)))
        return got

    def read_log(self, name: str = "driver.log", offset: int = 0, max_bytes: int = 1 << 20) -> tuple[str, int]:
        """New text of a log from ``offset`` (decoded leniently) and the next offset."""
        path = self.run_dir / "logs" / name
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(max_bytes)
        except FileNotFoundError:
            return "", offset
        return data.decode("utf-8", errors="replace"), offset + len(data)

    # -- control --------------------------------------------------------------------------
    def cancel(self, wait_seconds: float = 30.0) -> str:
        """Asks the supervisor to stop the job (its whole process tree or containers)."""
        from ..adapters.process import is_same_process_alive
        from ..store import runs as run_rows
        conn = self.workspace.db.conn
        run_rows.request_cancel(conn, self.id)
        row = self._require_row()
        if row["status"] == RunStatus.QUEUED and not is_same_process_alive(row["supervisor_pid"],
                                                                            row["supervisor_started"]):
            run_rows.set_status(conn, self.id, RunStatus.CANCELED, "canceled before it started")
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline and not self.is_terminal():
            time.sleep(0.1)
        return self.get_status()

    def wait_for_completion(self, show_output: bool = False, wait_post_processing: bool = False,
                            raise_on_error: bool = True, timeout: float | None = None) -> dict:
        offset = 0
        deadline = time.monotonic() + timeout if timeout else None
        next_check = time.monotonic() + 2.0
        out = sys.stdout
        if show_output:
            print(f"RunId: {self.id}\n", flush=True)
        while True:
            terminal = self.is_terminal()
            if not terminal and time.monotonic() >= next_check:
                next_check = time.monotonic() + 2.0
                self._settle_if_orphaned()
            if show_output:
                text, offset = self.read_log("driver.log", offset)
                while text:
                    out.write(text.encode(out.encoding or "utf-8", errors="replace").decode(out.encoding or "utf-8"))
                    out.flush()
                    text, offset = self.read_log("driver.log", offset)
            if terminal:
                break
            if deadline and time.monotonic() > deadline:
                from .errors import RunError
                raise RunError(f"run {self.id} is still {self.get_status()} after {timeout} s")
            time.sleep(0.2)
        details = self.get_details()
        if show_output:
            print(f"\nExecution Summary\n=================\nRunId: {self.id}\nStatus: {details['status']}", flush=True)
        if raise_on_error and details["status"] == "Failed":
            from .errors import RunError
            raise RunError(f"run {self.id} failed: {details.get('error', {}).get('message', '')}")
        return details

    def _settle_if_orphaned(self) -> None:
        """A run whose supervisor died is settled (reattached or failed), not waited on forever."""
        row = self._row()
        pid = row["supervisor_pid"]
        if pid is None or pid == -1:  # not recorded yet, or another client is starting a new one
            return
        from ..adapters.process import is_same_process_alive
        if not is_same_process_alive(pid, row["supervisor_started"]):
            self.workspace.recover()

    def delete(self) -> None:
        """Removes a finished run: its rows, metrics and folder. Runs with registered models are kept."""
        from ..store import models, runs as run_rows
        from .errors import RunError
        if not self.is_terminal():
            raise RunError(f"run {self.id} is {self.get_status()}; cancel it before deleting it")
        if models.run_has_models(self.workspace.db.conn, self.id):
            raise RunError(f"run {self.id} has registered models; their lineage needs it, so it is kept")
        run_rows.delete(self.workspace.db.conn, self.id)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def resubmit(self, experiment=None) -> "Run":
        """Submits a new run with this run's settings (its snapshot when the source folder is gone)."""
        spec = self.spec
        if not Path(spec["source_directory"]).is_dir():
            spec["source_directory"] = str(self.run_dir / "snapshot")
        return submit_run(experiment or self.experiment, _StoredSpec(spec))

    # -- models ---------------------------------------------------------------------------
    def register_model(self, model_name: str, model_path: str = "outputs/model", tags=None, properties=None,
                       model_framework=None, model_framework_version=None, description: str = "",
                       datasets=None, resource_configuration=None, **_unused):
        from .model import Model
        return Model._register_from_run(self, model_name, model_path, tags=tags, model_framework=model_framework,
                                        model_framework_version=model_framework_version, description=description,
                                        resource_configuration=resource_configuration, properties=properties)

    def __repr__(self) -> str:
        if self.workspace is None:
            return f"Run(id={self.id!r}, offline={self.offline})"
        return f"Run(experiment={self.experiment.name!r}, id={self.id!r}, status={self.get_status()!r})"


class _StoredSpec:
    """A stored run spec, re-validated when submitted again."""

    def __init__(self, spec: dict):
        self.spec = spec

    def to_spec(self) -> dict:
        from .run_spec import build_spec
        s = self.spec
        env = s.get("environment") or {}
        out = build_spec(source_directory=s["source_directory"], entry_script=s["entry_script"],
                         arguments=s["arguments"], compute_target=s["compute_target"], use_gpu=s.get("use_gpu"),
                         pip_packages=env.get("pip_packages"), framework_version=env.get("framework_version"),
                         environment_variables=s.get("environment_variables"), distribution=s.get("distribution"),
                         python=env.get("python"), docker=env.get("docker"),
                         max_run_duration_seconds=s.get("max_run_duration_seconds"))
        out["framework"] = s.get("framework")
        if env.get("notes"):
            out["environment"]["notes"] = list(env["notes"])
        if s.get("compat"):
            out["compat"] = True
        return out


def submit_run(experiment, config, tags: dict | None = None, parent_id: str | None = None) -> Run:
    """Validates ``config``, snapshots the source, records the run and starts its supervisor.

    ``parent_id``: the sweep this run is a child of (recorded with the run, in one transaction)."""
    from .compute import ComputeTarget
    from .compute_target import ComputeTargetException
    from .dataset import Dataset, register_inputs
    from .errors import UserErrorException
    from ..engine import supervisor
    from ..store import runs as run_rows
    ws = experiment.workspace
    if not hasattr(config, "to_spec"):
        raise UserErrorException("submit() takes a ScriptRunConfig or an estimator such as TensorFlow(...)")
    spec = config.to_spec()
    target = ComputeTarget(ws, spec["compute_target"])
    if target.provisioning_state == "Failed":
        target.refresh_state()
        if target.provisioning_state == "Failed":
            raise ComputeTargetException(f"compute target {target.name!r} is not reachable: {target.state_detail}. "
                                         "Fix it (Compute view or `mltrain compute show`) and submit again")
    from ..domain.errors import PrepareError
    from ..engine.backends.mpi import check_node_count
    try:  # node_count above an AmlCompute-made target's max_nodes: refused before anything is stored
        check_node_count(target.as_dict(), spec.get("distribution"))
    except PrepareError as exc:
        raise ComputeTargetException(str(exc)) from exc
    inputs = {}
    for a in spec["arguments"]:
        if isinstance(a, dict):
            if a.get("version_id") is None:  # an unregistered dataset: registered as anonymous-<hash>
                register_inputs(ws, [a])
            Dataset.get_by_id(ws, a["version_id"])  # still there?
            inputs[a["input"]] = a
    spec["experiment"] = experiment.name
    run_id = f"{experiment.name}_{int(time.time())}_{uuid.uuid4().hex[:8]}"
    spec["run_id"] = run_id
    run_dir = ws.runs_dir / run_id
    try:
        shutil.copytree(spec["source_directory"], run_dir / "snapshot", ignore=SNAPSHOT_IGNORE, symlinks=True)
        for sub in ("outputs", "logs"):
            (run_dir / sub).mkdir(parents=True, exist_ok=True)
            os.symlink(f"../{sub}", run_dir / "snapshot" / sub)
        (run_dir / "run.json").write_text(json.dumps(spec, indent=2))
    except OSError as exc:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise UserErrorException(f"could not snapshot {spec['source_directory']} into the run folder: {exc}") from exc
    from ..store import sweeps
    from ..store.transaction import write_transaction
    with write_transaction(ws.db.conn):
        run_rows.insert(ws.db.conn, run_id, experiment.id, target.name, spec, tags or {},
                        f"source snapshot of {spec['source_directory']}", inputs)
        if parent_id is not None:
            sweeps.set_parent(ws.db.conn, run_id, parent_id)
    pid, created = supervisor.spawn(ws.path, run_id)
    run_rows.record_first_supervisor(ws.db.conn, run_id, pid, created)
    return Run(experiment, run_id)
