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
from ..engine.status import RunStatus

SNAPSHOT_IGNORE = shutil.ignore_patterns("outputs", "logs", ".git", "__pycache__", ".mltrain", "*.pyc",
                                         ".ipynb_checkpoints")


class Run(_job_run.Run):
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
        from .errors import RunError
        from .experiment import Experiment
        row = workspace.db.execute("SELECT e.name FROM runs r JOIN experiments e ON e.id=r.experiment_id "
                                   "WHERE r.id=?", [run_id]).fetchone()
        if row is None:
            raise RunError(f"no run with id {run_id!r} in this workspace; `mltrain run list` shows the runs")
        return Run(Experiment(workspace, row[0]), run_id)

    def _row(self) -> dict | None:
        cur = self.workspace.db.execute("SELECT * FROM runs WHERE id=?", [self.id])
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([c[0] for c in cur.description], row))

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
        rows = self.workspace.db.execute("SELECT status, at, detail FROM run_events WHERE run_id=? ORDER BY id",
                                         [self.id]).fetchall()
        return [{"status": s, "at": a, "detail": d} for s, a, d in rows]

    def get_details(self) -> dict:
        row = self._require_row()
        spec = json.loads(row["spec"])
        inputs = self.workspace.db.execute(
            "SELECT i.name, i.mode, d.name, v.version FROM run_inputs i JOIN dataset_versions v ON v.id=i.dataset_version_id "
            "JOIN datasets d ON d.id=v.dataset_id WHERE i.run_id=? ORDER BY i.name", [self.id]).fetchall()

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
            "inputDatasets": [{"name": n, "mode": m, "dataset": d, "version": v} for n, m, d, v in inputs],
            "tags": json.loads(row["tags"] or "{}"),
            "events": self.get_events(),
            "logFiles": {p: str(self.run_dir / p) for p in self.get_file_names() if p.startswith("logs/")},
            "environmentHash": row["environment_hash"],
            "backendState": json.loads(row["backend_state"] or "{}"),
        }
        if row["error"]:
            details["error"] = {"message": row["error"]}
        return details

    def get_tags(self) -> dict:
        return json.loads(self._require_row()["tags"] or "{}")

    # -- metrics --------------------------------------------------------------------------
    def get_metrics(self, name: str | None = None, rank: int | None = 0) -> dict:
        """{name: value} for single values, {name: [values...]} for series (the seed's shape)."""
        from .metrics_ingest import decode_value
        sql = ("SELECT s.name, m.value, m.text FROM metric_series s JOIN metrics m ON m.series_id = s.id "
               "WHERE s.run_id=?")
        args: list = [self.id]
        if name is not None:
            sql += " AND s.name=?"
            args.append(name)
        if rank is not None:
            sql += " AND s.rank=?"
            args.append(rank)
        sql += " ORDER BY s.name, s.rank, m.step, m.rowid"
        out: dict[str, list] = {}
        for n, v, t in self.workspace.db.execute(sql, args):
            out.setdefault(n, []).append(decode_value(v, t))
        rows = self.workspace.db.execute("SELECT name, row FROM metric_rows WHERE run_id=? ORDER BY name, step",
                                         [self.id]).fetchall()
        for n, r in rows:
            if name is not None and n != name:
                continue
            table = out.setdefault(n, {})
            if isinstance(table, dict):
                for k, v in json.loads(r).items():
                    table.setdefault(k, []).append(v)
        return {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in out.items()}

    def get_metric_series(self, name: str, rank: int = 0, after_step: int = -1) -> tuple[list, list, list]:
        """(steps, values, wall times) of one metric, optionally only steps after ``after_step``."""
        rows = self.workspace.db.execute(
            "SELECT m.step, m.value, m.wall FROM metrics m WHERE m.series_id = (SELECT id FROM metric_series "
            "WHERE run_id=? AND name=? AND rank=?) AND m.step>? ORDER BY m.step",
            [self.id, name, rank, after_step]).fetchall()
        return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]

    def get_metric_names(self) -> list[tuple[str, int]]:
        return [tuple(r) for r in self.workspace.db.execute(
            "SELECT name, rank FROM metric_series WHERE run_id=? ORDER BY rank, name", [self.id])]

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
        from .run_store import set_status
        conn = self.workspace.db.conn
        conn.execute("UPDATE runs SET cancel_requested=1 WHERE id=?", [self.id])
        row = self._require_row()
        from ..engine.process import is_same_process_alive
        if row["status"] == "Queued" and not is_same_process_alive(row["supervisor_pid"], row["supervisor_started"]):
            set_status(conn, self.id, RunStatus.CANCELED, "canceled before it started")
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline and not self.is_terminal():
            time.sleep(0.1)
        return self.get_status()

    def wait_for_completion(self, show_output: bool = False, wait_post_processing: bool = False,
                            raise_on_error: bool = True, timeout: float | None = None) -> dict:
        offset = 0
        deadline = time.monotonic() + timeout if timeout else None
        out = sys.stdout
        if show_output:
            print(f"RunId: {self.id}\n", flush=True)
        while True:
            terminal = self.is_terminal()
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

    def delete(self) -> None:
        """Removes a finished run: its rows, metrics and folder. Runs with registered models are kept."""
        from .errors import RunError
        if not self.is_terminal():
            raise RunError(f"run {self.id} is {self.get_status()}; cancel it before deleting it")
        if self.workspace.db.execute("SELECT 1 FROM models WHERE run_id=?", [self.id]).fetchone():
            raise RunError(f"run {self.id} has registered models; their lineage needs it, so it is kept")
        with self.workspace.transaction() as conn:
            conn.execute("DELETE FROM metrics WHERE series_id IN (SELECT id FROM metric_series WHERE run_id=?)",
                         [self.id])
            for table in ("metric_series", "metric_rows", "ingest_offsets", "run_inputs", "run_events"):
                conn.execute(f"DELETE FROM {table} WHERE run_id=?", [self.id])
            conn.execute("DELETE FROM runs WHERE id=?", [self.id])
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
        return out


def submit_run(experiment, config, tags: dict | None = None) -> Run:
    """Validates ``config``, snapshots the source, records the run and starts its supervisor."""
    from .compute import ComputeTarget
    from .compute_target import ComputeTargetException
    from .dataset import Dataset
    from .errors import UserErrorException
    from ..engine import supervisor
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
    inputs = {}
    for a in spec["arguments"]:
        if isinstance(a, dict):
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
    now = time.time()
    with ws.transaction() as conn:
        number = conn.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM runs WHERE experiment_id=?",
                              [experiment.id]).fetchone()[0]
        conn.execute("INSERT INTO runs (id, experiment_id, number, status, compute, created, spec, tags) "
                     "VALUES (?,?,?,?,?,?,?,?)",
                     [run_id, experiment.id, number, "Queued", target.name, now, json.dumps(spec),
                      json.dumps(tags or {})])
        conn.execute("INSERT INTO run_events (run_id, status, at, detail) VALUES (?, 'Queued', ?, ?)",
                     [run_id, now, f"source snapshot of {spec['source_directory']}"])
        conn.executemany("INSERT INTO run_inputs (run_id, name, dataset_version_id, mode) VALUES (?,?,?,?)",
                         [(run_id, n, a["version_id"], a["mode"]) for n, a in inputs.items()])
    pid, created = supervisor.spawn(ws.path, run_id)
    ws.db.conn.execute("UPDATE runs SET supervisor_pid=COALESCE(supervisor_pid, ?), "
                       "supervisor_started=COALESCE(supervisor_started, ?) WHERE id=?", [pid, created, run_id])
    return Run(experiment, run_id)
