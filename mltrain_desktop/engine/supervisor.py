"""The supervisor: one detached process per run that drives it from Queued to a final state.

``python -m mltrain_desktop.engine.supervisor WORKSPACE RUN_ID [--reattach]``

It waits for a slot on the compute target, prepares inputs and the environment, launches the
backend, tails metrics into SQLite while the job runs, honours cancel requests, and finalizes.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from ..store import environments, targets
from ..store import runs as run_rows
from ..store.db import DB_FILE, connect
from ..store.metrics import ingest_file
from ..store.runs import get_status, set_status, update_fields
from .backends import backend_for
from .backends.base import JobContext, JobHandle, PrepareError
from .jobkit import jobkit_dir
from ..adapters.process import process_identity
from ..domain.run_state import RunStatus

POLL_SECONDS = 0.25
_SAVED_PYTHONPATH = "MLTRAIN_SUBMITTER_PYTHONPATH"  # JSON: the submitter's PYTHONPATH or null
ERROR_TAIL_LINES = 25


class Canceled(Exception):
    pass


class DriverLog:
    """Appends the supervisor's own lines (environment builds, stage messages) to driver.log."""

    def __init__(self, path: Path):
        self.path = path
        self.fh = open(path, "a", encoding="utf-8", errors="replace", buffering=1)

    def __call__(self, line: str) -> None:
        self.fh.write(line.rstrip("\n") + "\n")
        self.fh.flush()


def error_tail(log_path: Path, lines: int = ERROR_TAIL_LINES) -> str:
    """The traceback (or last lines) at the end of a log, decoded leniently."""
    try:
        with open(log_path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    all_lines = [l[:2000] for l in text.splitlines() if not l.startswith("[mltrain]")]
    tb = max((i for i, l in enumerate(all_lines) if "Traceback (most recent call last)" in l), default=None)
    picked = all_lines[tb:] if tb is not None and len(all_lines) - tb <= 200 else all_lines[-lines:]
    return "\n".join(picked[-200:])


class Supervisor:
    def __init__(self, workspace_dir: str, run_id: str):
        self.workspace_dir = Path(workspace_dir).expanduser().resolve()
        self.db = connect(self.workspace_dir / DB_FILE)
        self.conn = self.db.conn
        self.run_id = run_id
        self.run_dir = self.workspace_dir / "runs" / run_id
        self.logs_dir = self.run_dir / "logs"
        self.log = DriverLog(self.logs_dir / "driver.log")
        row = run_rows.get(self.conn, run_id)
        if row is None:
            raise SystemExit(f"no run {run_id} in {workspace_dir}")
        self.spec = json.loads(row["spec"])
        self.compute = row["compute"]
        self.saved_state = json.loads(row["backend_state"] or "{}")
        self.handle: JobHandle | None = None
        self.ctx: JobContext | None = None

    # -- helpers -------------------------------------------------------------------------------
    def claim(self, started: bool = True) -> None:
        """Records this process as the run's supervisor. Its create time (psutil, ~20 ms to load)
        is recorded at once only when reattaching; a new run records it once the job is started."""
        fields = {"supervisor_pid": os.getpid()}
        if started:
            fields["supervisor_started"] = process_identity(os.getpid())
        update_fields(self.conn, self.run_id, **fields)

    def cancel_requested(self) -> bool:
        return run_rows.cancel_requested(self.conn, self.run_id)

    def move(self, status: RunStatus, detail: str = "", **fields) -> bool:
        ok = set_status(self.conn, self.run_id, status, detail, **fields)
        if ok:
            self.log(f"[mltrain] {status.value}" + (f": {detail}" if detail else ""))
        return ok

    def metric_files(self) -> list[Path]:
        files = [self.logs_dir / "metrics.jsonl"]
        if self.handle is not None:
            files += [Path(p) for p in self.handle.metrics_files()]
        return files

    def ingest(self) -> None:
        for f in self.metric_files():
            try:
                ingest_file(self.conn, self.run_id, f)
            except Exception as exc:  # noqa: BLE001 - ingestion must never kill the run
                self.log(f"[mltrain] metric ingestion from {f.name} failed once: {exc}")

    def target(self) -> dict:
        row = targets.get(self.conn, self.compute)
        if row is None:
            raise PrepareError(f"compute target {self.compute!r} no longer exists; submit to another target")
        return {k: row[k] for k in ("name", "kind", "config", "probe", "state", "detail")}

    # -- stages --------------------------------------------------------------------------------
    def wait_for_slot(self, target: dict) -> None:
        limit = int(target["config"].get("max_concurrent_runs", 1) or 1)
        announced = False
        while True:
            if self.cancel_requested():
                raise Canceled()
            taken, status = run_rows.take_slot(self.conn, self.run_id, self.compute, limit)
            if taken:
                self.log("[mltrain] Preparing")
                return
            if status == RunStatus.CANCELED:
                raise Canceled()
            if status != RunStatus.QUEUED:
                raise PrepareError(f"run is {status or 'gone from the workspace'}, not Queued")
            if not announced:
                self.log(f"[mltrain] waiting: compute target {self.compute} runs {limit} run(s) at a time")
                announced = True
            time.sleep(0.5)

    def build_context(self, target: dict) -> JobContext:
        spec = self.spec
        inputs: dict[str, dict] = {}
        arguments: list[str] = []
        for item in spec["arguments"]:
            if isinstance(item, dict):
                name = item["input"]
                if name not in inputs:
                    path, ds_name, ds_version = self.dataset_input(name, item)
                    self.log(f"[mltrain] input {name}: dataset {ds_name} version {ds_version} "
                             f"({item.get('mode', 'mount')}) at {path}")
                    inputs[name] = {"path": str(path), "mode": item.get("mode", "mount"),
                                    "dataset": ds_name, "version": ds_version}
                arguments.append(inputs[name]["path"])
            else:
                arguments.append(str(item))
        env = dict(spec.get("environment_variables") or {})
        env.update({
            "MLTRAIN_RUN_ID": self.run_id,
            "MLTRAIN_METRICS_FILE": str(self.logs_dir / "metrics.jsonl"),
            "MLTRAIN_EXPERIMENT": spec.get("experiment", ""),
            "MLTRAIN_OUTPUTS_DIR": str(self.run_dir / "outputs"),
        })
        for name, info in inputs.items():
            env[f"AZUREML_DATAREFERENCE_{name}"] = info["path"]
            env[f"MLTRAIN_INPUT_{name}"] = info["path"]
        return JobContext(
            run_id=self.run_id, workspace_dir=self.workspace_dir, run_dir=self.run_dir,
            snapshot_dir=self.run_dir / "snapshot", outputs_dir=self.run_dir / "outputs", logs_dir=self.logs_dir,
            jobkit_dir=jobkit_dir(self.workspace_dir), entry_script=spec["entry_script"], arguments=arguments,
            environment_variables=env, target=target, spec=spec, inputs=inputs, raw_arguments=spec["arguments"],
            log=self.log, cancel_requested=self.cancel_requested)

    def dataset_input(self, name: str, item: dict) -> tuple[Path, str, int]:
        """The folder a dataset input is read from: the version's read-only folder, or a private copy."""
        from ..domain.errors import DatasetError
        from ..store import catalog
        try:
            vid, ds_name, version = catalog.dataset_version(self.conn, item["version_id"])[:3]
            files = catalog.dataset_files(self.conn, vid)
            path = catalog.dataset_folder(self.workspace_dir, vid, f"{ds_name}:{version}", files)
            if item.get("mode") == "download":
                dest = self.run_dir / "inputs" / name
                if dest.parent.resolve() != (self.run_dir / "inputs").resolve() or dest.name != name \
                        or name in ("", ".", ".."):
                    raise DatasetError("its name must be letters, digits and '_' (it names a folder of the run)")
                if not dest.exists():
                    catalog.copy_dataset(path, files, dest)
                path = dest
        except DatasetError as exc:
            raise PrepareError(f"dataset input {name!r}: {exc}") from exc
        return path, ds_name, version

    def check_gpu(self, target: dict) -> None:
        if not self.spec.get("use_gpu") or target["kind"] != "local":
            return
        from ..adapters.gpus import list_gpus
        gpus = list_gpus()
        if not gpus:
            raise PrepareError(
                f"use_gpu=True but compute target {target['name']!r} has no GPU (nvidia-smi lists none; "
                "GPUs it has: none). Submit with use_gpu=False, or to a target with GPUs.")
        self.log("[mltrain] GPUs: " + ", ".join(f"{g['index']}: {g['name']}" for g in gpus))

    def prepare(self) -> tuple[JobContext, object]:
        target = self.target()
        self.wait_for_slot(target)
        self.check_gpu(target)
        ctx = self.build_context(target)
        for n in (self.spec.get("environment") or {}).get("notes") or []:
            self.log("[mltrain] " + n)
        if target["kind"] == "local":
            from .local_env import resolve_interpreter
            env = self.spec.get("environment") or {}
            interpreter, env_hash = resolve_interpreter(
                self.workspace_dir, self.conn, env.get("python") or target["config"].get("python"),
                env.get("pip_packages") or [], self.log, self.cancel_requested)
            ctx.interpreter = interpreter
            if env_hash:
                update_fields(self.conn, self.run_id, environment_hash=env_hash)
        backend = backend_for(target, self.spec)
        backend.prepare(ctx)
        self.record_environment(backend)
        if self.cancel_requested():
            raise Canceled()
        self.ctx = ctx
        return ctx, backend

    def record_environment(self, backend) -> None:
        """Stores the environment a backend built or found (e.g. a Docker image) and links the run to it."""
        rec = getattr(backend, "environment_record", lambda: None)()
        if not rec:
            return
        environments.record(self.conn, rec["hash"], rec["kind"], rec["spec"], rec["location"],
                            rec.get("state", "Ready"))
        update_fields(self.conn, self.run_id, environment_hash=rec["hash"])

    def wait_while_held(self) -> None:
        """A job a cluster's scheduler holds (Slurm's PENDING): the run is Queued, with the
        scheduler's reason, until the job starts or ends (``watch`` then sees its end)."""
        reason_of = getattr(self.handle, "pending_reason", None)
        if reason_of is None:
            return
        queued = get_status(self.conn, self.run_id) == RunStatus.QUEUED  # a reattach finds it so
        while self.handle.poll() is None:
            if getattr(self.handle, "state_known", True):  # before the scheduler's first answer: ask again
                reason = reason_of()
                if reason is None:
                    return  # started
                if not queued:
                    queued = self.move(RunStatus.QUEUED, f"held by the cluster's scheduler: {reason}")
            if self.cancel_requested():
                self.log("[mltrain] cancel requested: stopping the job")
                self.handle.cancel()
                raise Canceled()
            time.sleep(POLL_SECONDS)

    def watch(self) -> int:
        assert self.handle is not None
        deadline = None
        if self.spec.get("max_run_duration_seconds"):
            deadline = time.monotonic() + float(self.spec["max_run_duration_seconds"])
        while True:
            rc = self.handle.poll()
            self.ingest()
            if rc is not None:
                return rc
            if self.cancel_requested():
                self.log("[mltrain] cancel requested: stopping the job")
                self.handle.cancel()
                raise Canceled()
            if deadline and time.monotonic() > deadline:
                self.handle.cancel()
                raise PrepareError(f"the run exceeded max_run_duration_seconds={self.spec['max_run_duration_seconds']}"
                                   " and was stopped")
            time.sleep(POLL_SECONDS)

    def finalize(self, rc: int) -> None:
        self.move(RunStatus.FINALIZING, f"exit code {rc}", exit_code=rc)
        self.ingest()
        outputs = sorted(str(p.relative_to(self.run_dir)) for p in (self.run_dir / "outputs").rglob("*") if p.is_file())
        self.log(f"[mltrain] outputs kept: {len(outputs)} file(s)")
        t = os.times()
        self.log(f"[mltrain] supervisor CPU time: {t.user + t.system:.2f} s")
        if rc == 0:
            self.move(RunStatus.COMPLETED)
        else:
            from .rank_launcher import describe_exit  # "exited with code 3" / "was killed by signal 9 (SIGKILL)"
            detail = self.handle.failure_detail() if self.handle else None
            tail = error_tail(self.logs_dir / "driver.log")
            error = detail or f"the script {describe_exit(rc)}" + (f":\n{tail}" if tail else "")
            self.move(RunStatus.FAILED, f"exit code {rc}", error=error)

    def run(self, reattach: bool = False) -> int:
        status = get_status(self.conn, self.run_id)
        if status is None or RunStatus(status).is_terminal():
            return 0
        try:
            if reattach and (status == RunStatus.RUNNING or (status == RunStatus.QUEUED and self.saved_state)):
                target = self.target()
                self.ctx = self.build_context(target)
                backend = backend_for(target, self.spec)
                self.handle = backend.reattach(self.ctx, self.saved_state)
                if self.handle is None:
                    self.move(RunStatus.FAILED, "job lost", error="the supervisor ended unexpectedly and the "
                              "job could not be found again (its process or container is gone)")
                    return 1
                self.log("[mltrain] supervisor restarted: reattached to the running job")
                if status == RunStatus.QUEUED:  # still held by the cluster's scheduler when it died
                    self.wait_while_held()
                    if not self.move(RunStatus.RUNNING):
                        self.handle.cancel()
                        return 1
            else:
                ctx, backend = self.prepare()
                self.handle = backend.launch(ctx)
                self.claim()
                update_fields(self.conn, self.run_id, backend_state=json.dumps(self.handle.state()))
                self.wait_while_held()
                if not self.move(RunStatus.RUNNING):
                    self.handle.cancel()
                    return 1
            rc = self.watch()
            self.finalize(rc)
            return 0
        except Canceled:
            if self.handle is not None:
                self.handle.cancel()
            self.ingest()
            self.move(RunStatus.CANCELED, "canceled by the user")
            return 0
        except PrepareError as exc:
            if self.handle is not None:
                self.handle.cancel()
            self.ingest()
            self.log(f"[mltrain] error: {exc}")
            self.move(RunStatus.FAILED, str(exc).splitlines()[0][:200], error=str(exc))
            return 1
        except Exception as exc:  # noqa: BLE001 - any crash must end in a recorded failure
            if self.handle is not None:
                try:
                    self.handle.cancel()
                except Exception:  # noqa: BLE001
                    pass
            import traceback
            tb = traceback.format_exc()
            self.log(f"[mltrain] internal error: {exc}\n{tb}")
            self.move(RunStatus.FAILED, f"internal error: {exc}", error=f"{type(exc).__name__}: {exc}\n{tb}")
            return 1


USAGE = "usage: mltrain-supervisor WORKSPACE RUN_ID [--reattach]"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    reattach = "--reattach" in args
    positional = [a for a in args if a != "--reattach"]
    if len(positional) != 2 or any(a.startswith("-") for a in positional):
        print(USAGE, file=sys.stderr)
        return 2
    _restore_child_environment()
    sup = Supervisor(*positional)
    sup.claim(started=reattach)
    return sup.run(reattach=reattach)


def _restore_child_environment() -> None:
    """Gives the jobs this supervisor starts the environment its submitter had (see ``spawn``)."""
    saved = os.environ.pop(_SAVED_PYTHONPATH, None)
    if saved is None:
        return
    value = json.loads(saved)
    if value is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = value


def supervisor_argv(workspace_dir: Path, run_id: str, reattach: bool = False) -> list[str]:
    if getattr(sys, "frozen", False):  # a packaged app: the bundle's own entry point runs supervisors
        argv = [sys.executable, "--supervisor", str(workspace_dir), run_id]
    else:
        # -c rather than -m: runpy would add ~8 ms of imports to each run's start
        argv = [sys.executable, "-c", "from mltrain_desktop.engine.supervisor import main; raise SystemExit(main())",
                str(workspace_dir), run_id]
    return argv + (["--reattach"] if reattach else [])


def _fast_start(argv: list[str], env: dict[str, str]) -> list[str]:
    """Starts the supervisor's interpreter with ``-S`` and the submitter's import path.

    Skipping ``site`` (the .pth files of every installed package, an editable install's import
    hook) saves ~25 ms of each run's start. The submitter's ``sys.path``, with this package's
    folder first, goes into PYTHONPATH so the supervisor imports exactly what its submitter
    would; ``main`` puts the submitter's own PYTHONPATH back before any job is started.
    """
    import mltrain_desktop
    package_parent = str(Path(mltrain_desktop.__file__).resolve().parent.parent)
    paths = [package_parent] + [p for p in sys.path if p and os.path.isabs(p) and os.path.exists(p)]
    env[_SAVED_PYTHONPATH] = json.dumps(os.environ.get("PYTHONPATH"))
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return [argv[0], "-S", *argv[1:]]


def spawn(workspace_dir: Path, run_id: str, reattach: bool = False) -> tuple[int, float | None]:
    """Starts a detached supervisor for ``run_id``; returns (pid, create_time)."""
    from ..adapters.process import start_process
    logs = Path(workspace_dir) / "runs" / run_id / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    argv = supervisor_argv(workspace_dir, run_id, reattach)
    if not getattr(sys, "frozen", False):
        argv = _fast_start(argv, env)
    proc = start_process(argv, cwd=logs.parent, env=env,
                         log_path=logs / "supervisor.log")
    return proc.pid, process_identity(proc.pid)


if __name__ == "__main__":
    sys.exit(main())
