"""The Slurm backend: a run is one sbatch job; squeue/sacct tell its state, scancel stops it.

``prepare`` checks that the workspace is on the target's shared file system, or else that the
target has a ``scratch_dir`` to stage the run into (``slurm_staging``: rsync there before sbatch,
logs back while it runs, outputs and logs back at the end), and refuses the run when neither
holds; it builds the job (``adapters/slurm/job.py``) and checks it against the partition as Slurm
reports it now (unknown partition, node_count above the partition's nodes: refused before
submitting, with the numbers). ``launch`` writes ``runs/<id>/slurm/job.sh`` and submits it with
its output appended to ``logs/driver.log``; the ranks write ``logs/rank_N.log`` and their own
metrics files on the shared folder, which the supervisor reads while the job runs.

The handle asks Slurm at most every ``POLL_INTERVAL_S``: while the job is PENDING it writes
Slurm's reason (``Resources``, ``Priority``) to the driver log whenever it changes; the final
state and exit code come from sacct (NODE_FAIL, TIMEOUT, OUT_OF_MEMORY named with the nodes).
Each change is also written to ``runs/<id>/slurm/state.json`` (Slurm's state and reason, and
the run state it maps to: a PENDING job is Queued there while the run row says Running).
``state()`` is the job id, so a restarted supervisor finds the job again (``reattach``).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from ...adapters.slurm import parse, states
from ...adapters.slurm.commands import Runner, SlurmCommandError, classify
from ...adapters.slurm.job import DoesNotFit, check_fits, slurm_job
from ...adapters.slurm.script import ScriptError, batch_script, sbatch_arguments
from ...adapters.slurm.staging import StagingError
from ...domain.distribution import DistributionError
from ...domain.run_state import RunStatus
from .base import Backend, JobContext, JobHandle, PrepareError
from .slurm_staging import PULL_EVERY_S, StagedRun

POLL_INTERVAL_S = 1.0
VANISHED_AFTER_S = 60.0   # squeue and sacct both without the job this long: it is lost
CANCEL_WAIT_S = 20.0
STATE_FILE = "state.json"

_SBATCH_HINTS = (
    ("invalid partition", "set partition= on the target to one that sinfo lists"),
    ("invalid account", "set account= on the target to an account you belong to (sacctmgr show assoc user=$USER)"),
    ("node configuration is not available", "ask for fewer nodes, processes per node or GPUs than the partition "
                                            "has (sinfo -N -o '%N %c %G')"),
    ("time limit", "lower time_limit on the target to the partition's MaxTime (scontrol show partition)"),
    ("qos", "the job breaks a QOS limit; ask for less or ask the cluster's administrator"),
    ("invalid feature", "a --constraint in sbatch_args names a feature no node has (sinfo -o '%N %f')"),
)


def sbatch_failure(exc: SlurmCommandError) -> PrepareError:
    """sbatch's own message, and what to do about it."""
    low = exc.stderr.lower()
    hint = next((h for key, h in _SBATCH_HINTS if key in low), None)
    text = f"sbatch refused the job: {exc}"
    return PrepareError(text + (f"; {hint}" if hint else ""))


class SlurmJobHandle(JobHandle):
    def __init__(self, runner: Runner, job_id: str, logs_dir: Path, log=print, task_count: int = 1):
        self.runner = runner
        self.job_id = str(job_id)
        self.logs_dir = Path(logs_dir)
        self.log = log
        self.task_count = task_count
        self._next_poll = 0.0
        self._exit: int | None = None
        self._last_seen = time.monotonic()
        self._said = None
        self.slurm = {"state": "PENDING", "reason": "", "nodes": ""}
        self.state_known = False  # Slurm has answered about the job at least once
        self._detail: str | None = None

    @property
    def state_file(self) -> Path:
        """``runs/<id>/slurm/state.json``: Slurm's view of the job as last seen (for the window and the CLI)."""
        return self.logs_dir.parent / "slurm" / STATE_FILE

    def _record(self, found: dict, words: str) -> None:
        """Writes Slurm's state, reason and nodes, and the run state they map to, to ``state_file``."""
        record = {"job_id": self.job_id, "slurm_state": states.base_state(found["state"]),
                  "reason": found.get("reason", ""), "nodes": found.get("nodes", ""),
                  "status": states.run_status(found["state"]).value, "description": words, "at": time.time()}
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(record), encoding="utf-8")
            os.replace(tmp, self.state_file)
        except OSError:  # the record helps the window; the run must not fail for want of it
            pass

    def _query(self) -> dict | None:
        """The job's state now: squeue while the controller has it, else sacct; None when neither knows it."""
        out = self._ask(["squeue", "-h", "-t", "all", "-j", self.job_id, "-o", parse.SQUEUE_FORMAT])
        live = parse.squeue_job(out, self.job_id)
        if live is not None and not states.run_status(live["state"]).is_terminal():
            return live
        try:
            final = parse.sacct_job(self._ask(["sacct", "-n", "-P", "-X", "-j", self.job_id, "-o",
                                               parse.SACCT_FIELDS]), self.job_id)
        except SlurmCommandError:
            if live is None:
                raise
            final = None  # a cluster without accounting: the controller still has the exit code
        if final is not None and states.run_status(final["state"]).is_terminal():
            return final
        if live is not None:
            return parse.scontrol_job(self._ask(["scontrol", "show", "job", "-o", self.job_id]), self.job_id) or live
        return final

    def _ask(self, argv: list[str]) -> str:
        """A command's output; "Invalid job id" (the controller forgot the job) is an empty answer, any
        other failure (login host unreachable, MUNGE, controller down) a SlurmCommandError."""
        done = self.runner.run(argv, check=False)
        if done.returncode != 0 and "invalid job id" not in done.stderr.lower():
            raise classify(self.runner.where, argv, done.returncode, done.stderr, bool(self.runner.login_host))
        return done.stdout

    def poll(self) -> int | None:
        if self._exit is not None:
            return self._exit
        now = time.monotonic()
        if now < self._next_poll:
            return None
        self._next_poll = now + POLL_INTERVAL_S
        try:
            found = self._query()
        except SlurmCommandError as exc:  # the login host may come back: keep asking, say it once
            if self._said != str(exc):
                self.log(f"[mltrain] cannot ask Slurm about job {self.job_id} now: {exc}")
                self._said = str(exc)
            return None
        if found is None:
            if now - self._last_seen > VANISHED_AFTER_S:
                self._detail = (f"Slurm job {self.job_id} is gone from squeue and sacct; it was removed from the "
                                "cluster (scontrol show job, or ask the cluster's administrator)")
                self._exit = -1
            return None if self._exit is None else self._exit
        self._last_seen = now
        self.slurm = found
        self.state_known = True
        words = states.describe(found["state"], found.get("reason", ""), found.get("nodes", ""),
                                found.get("exit_code", ""))
        if words != self._said:
            self.log(f"[mltrain] Slurm job {self.job_id}: {words}")
            self._record(found, words)
            self._said = words
        status = states.run_status(found["state"])
        if status.is_terminal():
            self._exit = states.exit_status(found["state"], found.get("exit_code", ""))
            if status != RunStatus.COMPLETED:
                self._detail = f"Slurm job {self.job_id} ended {words}" + self._down_nodes(found)
        return self._exit

    def pending_reason(self) -> str | None:
        """Slurm's reason while it holds the job (PENDING and the like: ``Resources``, ``Priority``),
        else None (running, or over)."""
        if self._exit is not None or states.run_status(self.slurm["state"]) != RunStatus.QUEUED:
            return None
        return self.slurm.get("reason") or "waiting for the scheduler"

    def _down_nodes(self, found: dict) -> str:
        """For NODE_FAIL: which nodes Slurm now has down, and why (``node2: Not responding``)."""
        if states.base_state(found["state"]) != "NODE_FAIL":
            return ""
        try:
            down = parse.down_nodes(self.runner.run(["sinfo", "-h", "-R", "-o", parse.DOWN_FORMAT]).stdout)
        except SlurmCommandError:
            return ""
        return ("; nodes down now: " + ", ".join(f"{n} ({why})" for n, why in down)) if down else ""

    def cancel(self, grace_seconds: float = 5.0) -> None:
        try:
            self.runner.run(["scancel", self.job_id])
        except SlurmCommandError as exc:
            self.log(f"[mltrain] scancel {self.job_id} failed: {exc}")
            return
        deadline = time.monotonic() + grace_seconds + CANCEL_WAIT_S
        while time.monotonic() < deadline:
            try:
                found = self._query()
            except SlurmCommandError:
                found = None
            if found is None or states.run_status(found["state"]).is_terminal():
                self.log(f"[mltrain] Slurm job {self.job_id} cancelled")
                return
            time.sleep(0.5)
        self.log(f"[mltrain] Slurm job {self.job_id} still not ended {CANCEL_WAIT_S:.0f} s after scancel")

    def state(self) -> dict:
        return {"job_id": self.job_id, "login_host": self.runner.login_host, "task_count": self.task_count,
                "logs_dir": str(self.logs_dir)}

    def failure_detail(self) -> str | None:
        from ..rank_launcher import describe_exit, failure_report, log_file, read_statuses, tail, task_name
        parts = [self._detail] if self._detail else []
        records = read_statuses(self.logs_dir)
        for tag, rec in sorted(records.items()):
            if rec.get("exit_code") not in (0, None):
                how = describe_exit(rec.get("exit_code"), rec.get("signal")) + f" on {rec.get('host', '?')}"
                parts.append(failure_report(task_name(tag), how, log_file(self.logs_dir, tag)))
        if parts and not records:  # one process: its output is in the driver log
            lines = [ln for ln in tail(self.logs_dir / "driver.log", 60) if not ln.startswith("[mltrain]")]
            if lines:
                parts.append("last lines of logs/driver.log:\n" + "\n".join("  " + ln for ln in lines[-20:]))
        return "\n".join(parts) or None

    def metrics_files(self) -> list[Path]:
        try:
            names = os.listdir(self.logs_dir)
        except OSError:
            return []
        return [self.logs_dir / n for n in sorted(names)
                if n.startswith("metrics.") and n.endswith(".jsonl") and n != "metrics.jsonl"]


class StagedSlurmJobHandle(SlurmJobHandle):
    """A job whose run folder is on the cluster's scratch: its logs are copied back while it runs,
    its outputs and logs when it is over (before the supervisor finalizes the run)."""

    def __init__(self, runner: Runner, job_id: str, logs_dir: Path, staged: StagedRun, log=print,
                 task_count: int = 1):
        super().__init__(runner, job_id, logs_dir, log, task_count)
        self.staged = staged
        self._next_pull = 0.0
        self._pull_said: str | None = None
        self._brought_back = False

    def poll(self) -> int | None:
        rc = super().poll()
        if rc is None:
            now = time.monotonic()
            if now >= self._next_pull and states.base_state(self.slurm["state"]) != "PENDING":
                self._next_pull = now + PULL_EVERY_S
                try:
                    self.staged.pull_logs()
                except StagingError as exc:  # the next pull may work: say it once
                    if self._pull_said != str(exc):
                        self.log(f"[mltrain] {exc}")
                        self._pull_said = str(exc)
            return None
        self._bring_back()
        return self._exit

    def _bring_back(self) -> None:
        if self._brought_back:
            return
        self._brought_back = True
        try:
            self.staged.bring_back()
        except StagingError as exc:
            why = (f"the job's files could not be copied back from {self.staged.where}: {exc}; they stay "
                   "there (copy them with rsync, or submit the run again)")
            self.log(f"[mltrain] {why}")
            self._detail = f"{self._detail}; {why}" if self._detail else why
            if self._exit == 0:
                self._exit = 1

    def cancel(self, grace_seconds: float = 5.0) -> None:
        super().cancel(grace_seconds)
        self._bring_back()

    def state(self) -> dict:
        return {**super().state(), "staging": self.staged.state()}


class SlurmBackend(Backend):
    kind = "slurm"

    def __init__(self, target: dict):
        self.target = target
        self.config = target.get("config") or {}
        self.runner = Runner(self.config)
        self.job = None
        self.staged: StagedRun | None = None

    def _is_shared(self, ctx: JobContext) -> bool:
        shared = self.config.get("shared_workspace")
        if not shared:
            return False
        ws = os.path.realpath(ctx.workspace_dir)
        folder = os.path.realpath(os.path.expanduser(shared))
        return os.path.commonpath([ws, folder]) == folder

    def _staging(self, ctx: JobContext) -> StagedRun | None:
        """None for a workspace the nodes see; else the run's staging, or PrepareError when it is refused."""
        if self._is_shared(ctx):
            return None
        ws = os.path.realpath(ctx.workspace_dir)
        shared = self.config.get("shared_workspace")
        scratch = self.config.get("scratch_dir")
        if not scratch:
            raise PrepareError(
                f"the workspace {ws} is not inside the Slurm target's shared_workspace ({shared or 'not set'}), so "
                "the nodes cannot see the run's files, and staging is refused: the target has no scratch_dir to "
                "copy runs to. Create the workspace in a folder every node mounts at the same path (and set "
                "shared_workspace= to it), or create the target with scratch_dir= naming a folder of the "
                "cluster's file system")
        if shutil.which("rsync") is None:
            raise PrepareError("staging the run to the cluster needs rsync on this machine, which is not installed; "
                               "install it (Debian/Ubuntu: apt-get install rsync; scripts/setup.sh does)")
        staged = StagedRun(self.runner, scratch, ctx.run_id, ctx.run_dir, ctx.log)
        ctx.log(f"[mltrain] the workspace is not on the cluster's shared file system: the run is staged to "
                f"{staged.where} (rsync over {self.runner.where})")
        return staged

    def prepare(self, ctx: JobContext) -> None:
        self.staged = self._staging(ctx)
        env = ctx.spec.get("environment") or {}
        if env.get("pip_packages"):
            ctx.log("[mltrain] note: a Slurm target does not install pip_packages "
                    f"({', '.join(env['pip_packages'])}); the nodes' interpreter must have them")
        paths = self.staged.job_paths(ctx) if self.staged else {
            "workdir": str(ctx.snapshot_dir), "logs_dir": str(ctx.logs_dir), "jobkit_dir": str(ctx.jobkit_dir),
            "arguments": list(ctx.arguments), "environment": dict(ctx.environment_variables)}
        try:
            self.job = slurm_job(ctx.spec, self.config, run_id=ctx.run_id, entry_script=ctx.entry_script, **paths)
            self.script = batch_script(self.job)
        except (DistributionError, ScriptError) as exc:
            raise PrepareError(str(exc)) from exc
        try:
            parts = parse.partitions(self.runner.run(["scontrol", "show", "partition", "-o"]).stdout)
            nodes = parse.nodes(self.runner.run(["sinfo", "-h", "-N", "-o", parse.NODE_FORMAT]).stdout)
        except SlurmCommandError as exc:
            raise PrepareError(str(exc)) from exc
        wanted = self.job.partition
        part = next((p for p in parts if (p["name"] == wanted if wanted else p["default"])), None)
        if part is None:
            raise PrepareError(f"partition {wanted!r} does not exist on the cluster (partitions: "
                               f"{', '.join(p['name'] for p in parts) or 'none'}); set partition= on the target "
                               "to one of them" if wanted else "the cluster has no default partition; set partition=")
        try:
            check_fits(self.job, part, nodes, self.config)
        except DoesNotFit as exc:
            raise PrepareError(str(exc)) from exc
        ctx.log(f"[mltrain] Slurm: partition {part['name']}, {self.job.nodes} node(s), {self.job.task_count} task(s)"
                f" via {self.runner.where}")

    def launch(self, ctx: JobContext) -> JobHandle:
        folder = ctx.run_dir / "slurm"
        folder.mkdir(parents=True, exist_ok=True)
        script = folder / "job.sh"
        script.write_text(self.script, encoding="utf-8")
        output, submitted = str(ctx.logs_dir / "driver.log"), str(script)
        if self.staged is not None:
            try:
                self.staged.push(ctx, script)
            except StagingError as exc:
                self.staged.discard()
                raise PrepareError(str(exc)) from exc
            output, submitted = self.staged.remote_path(ctx, Path(output)), self.staged.remote_path(ctx, script)
        args = sbatch_arguments(self.job, output, submitted)
        args[:0] = self.config.get("sbatch_args") or []
        try:
            out = self.runner.run(["sbatch", *args])
            job_id = parse.sbatch_job_id(out.stdout)
        except (SlurmCommandError, ValueError) as exc:
            if self.staged is not None:
                self.staged.discard()
            if isinstance(exc, SlurmCommandError):
                raise sbatch_failure(exc) from exc
            raise PrepareError(str(exc)) from exc
        ctx.log(f"[mltrain] submitted Slurm job {job_id} ({submitted})")
        if self.staged is not None:
            return StagedSlurmJobHandle(self.runner, job_id, ctx.logs_dir, self.staged, ctx.log, self.job.task_count)
        return SlurmJobHandle(self.runner, job_id, ctx.logs_dir, ctx.log, self.job.task_count)

    def reattach(self, ctx: JobContext, state: dict) -> JobHandle | None:
        job_id = state.get("job_id")
        if not job_id:
            return None
        if state.get("staging"):
            staged = StagedRun.from_state(self.runner, state["staging"], ctx.run_dir, ctx.log)
            handle = StagedSlurmJobHandle(self.runner, job_id, ctx.logs_dir, staged, ctx.log,
                                          state.get("task_count", 1))
        else:
            handle = SlurmJobHandle(self.runner, job_id, ctx.logs_dir, ctx.log, state.get("task_count", 1))
        try:
            if handle._query() is None:
                return None
        except SlurmCommandError as exc:
            ctx.log(f"[mltrain] reattach: {exc}; asking again while the run is watched")
        return handle
