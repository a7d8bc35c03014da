"""A Slurm run staged to the cluster's scratch folder: what goes there, what comes back, and when.

When the workspace is not on a file system the nodes see, the run lives on the cluster at
``<scratch_dir>/mltrain/<run id>/`` (``R``), laid out like the run folder here: ``R/snapshot``
(the job's working folder), ``R/.jobkit``, ``R/inputs/<name>`` for each dataset input,
``R/slurm/job.sh``, ``R/logs`` and ``R/outputs``. The batch script, the script's arguments and
the run's environment variables name those paths (``paths.map_path``).

- before sbatch: everything but ``logs`` and ``outputs`` is copied there (``push``);
- while the job runs: ``R/logs`` is copied back every ``PULL_EVERY_S`` into
  ``<run>/slurm/remote-logs`` and merged into ``<run>/logs``: the ranks' logs, metrics files and
  records as they are, and the new bytes of the job's output and of the primary metrics file
  appended to ``driver.log`` and ``metrics.jsonl`` (which here also hold the engine's lines),
  so the window's live log and loss curves follow the job as for a shared workspace;
- when the job is over (or cancelled): ``R/outputs`` and ``R/logs`` come back, then ``R`` is
  removed. If that copy fails, the run fails saying where its files stay on the cluster.
"""
from __future__ import annotations

import json
import os
import posixpath
import shutil
import time
from pathlib import Path

from ...adapters.slurm import staging as st
from ...adapters.slurm.commands import Runner, SlurmCommandError
from .base import JobContext
from .paths import map_path, mapped_arguments, path_pairs

PULL_EVERY_S = 2.0
MIRROR = "remote-logs"          # <run>/slurm/remote-logs: R/logs as last copied
OFFSETS = "pulled.json"         # <run>/slurm/pulled.json: bytes of the appended files already merged
APPENDED = ("driver.log", "metrics.jsonl")


class StagedRun:
    """One run's folder on the cluster, and the copies to and from it."""

    def __init__(self, runner: Runner, scratch_dir: str, run_id: str, run_dir: Path, log=print):
        self.runner = runner
        self.scratch_dir = scratch_dir
        self.remote = st.remote_run_dir(scratch_dir, run_id)
        self.run_dir = Path(run_dir)
        self.log = log
        self.where = f"{runner.login_host}:{self.remote}" if runner.login_host else self.remote

    @classmethod
    def from_state(cls, runner: Runner, state: dict, run_dir: Path, log=print) -> "StagedRun":
        run = cls(runner, state["scratch_dir"], Path(run_dir).name, run_dir, log)
        run.remote = state["remote_dir"]
        return run

    def state(self) -> dict:
        return {"scratch_dir": self.scratch_dir, "remote_dir": self.remote}

    # -- the paths the job sees -------------------------------------------------------------------
    def mapping(self, ctx: JobContext) -> list[tuple[str, str]]:
        return path_pairs(ctx, self.remote, posixpath.join(self.remote, ".jobkit"),
                          posixpath.join(self.remote, "inputs"))

    def job_paths(self, ctx: JobContext) -> dict:
        """``slurm_job``'s path arguments as the nodes see them."""
        m = self.mapping(ctx)
        return {"workdir": map_path(str(ctx.snapshot_dir), m), "logs_dir": map_path(str(ctx.logs_dir), m),
                "jobkit_dir": map_path(str(ctx.jobkit_dir), m),
                "arguments": mapped_arguments(ctx, m, posixpath.join(self.remote, "inputs")),
                "environment": {k: map_path(str(v), m) for k, v in ctx.environment_variables.items()}}

    def remote_path(self, ctx: JobContext, local: Path) -> str:
        return map_path(str(local), self.mapping(ctx))

    # -- the copies -------------------------------------------------------------------------------
    def push(self, ctx: JobContext, script: Path) -> None:
        """Snapshot, job kit, inputs and the batch script to the cluster; StagingError when one fails."""
        t0 = time.monotonic()
        r = self.remote
        st.push(self.runner, f"{ctx.snapshot_dir}/", f"{r}/snapshot/", "copying the snapshot to the cluster",
                delete=True)
        st.push(self.runner, f"{ctx.jobkit_dir}/", f"{r}/.jobkit/", "copying the job kit to the cluster",
                delete=True, excludes=("__pycache__",))
        for name, info in sorted(ctx.inputs.items()):
            st.push(self.runner, f"{info['path']}/", f"{r}/inputs/{name}/",
                    f"copying dataset input {name!r} to the cluster")
        st.push(self.runner, str(script), f"{r}/slurm/job.sh", "copying the batch script to the cluster")
        try:
            self.runner.run(["mkdir", "-p", "--", f"{r}/logs", f"{r}/outputs"])
        except SlurmCommandError as exc:
            raise st.StagingError(f"making {r}/logs and {r}/outputs on the cluster failed: {exc}") from exc
        what = "snapshot, job kit" + (f", {len(ctx.inputs)} dataset input(s)" if ctx.inputs else "")
        self.log(f"[mltrain] staged the run to {self.where} ({what}) in {time.monotonic() - t0:.1f} s")

    def pull_logs(self) -> None:
        """R/logs here: the mirror, then merged into the run's logs folder."""
        mirror = self.run_dir / "slurm" / MIRROR
        st.pull(self.runner, f"{self.remote}/logs/", f"{mirror}/", "copying the job's logs back")
        self._merge(mirror, self.run_dir / "logs")

    def _merge(self, mirror: Path, logs: Path) -> None:
        offsets_file = self.run_dir / "slurm" / OFFSETS
        try:
            offsets = json.loads(offsets_file.read_text())
        except (OSError, ValueError):
            offsets = {}
        before = dict(offsets)
        for path in sorted(mirror.rglob("*")):
            if not path.is_file():
                continue
            rel = path.relative_to(mirror).as_posix()
            target = logs / rel
            if rel in APPENDED:
                done = int(offsets.get(rel, 0))
                size = path.stat().st_size
                if size > done:
                    with open(path, "rb") as src, open(target, "ab") as dst:
                        src.seek(done)
                        dst.write(src.read(size - done))
                    offsets[rel] = size
                continue
            s = path.stat()
            try:
                t = target.stat()
                if (t.st_size, int(t.st_mtime)) == (s.st_size, int(s.st_mtime)):
                    continue
            except OSError:
                pass
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".pulling")
            shutil.copy2(path, tmp)
            os.replace(tmp, target)
        if offsets != before:
            offsets_file.write_text(json.dumps(offsets))

    def discard(self) -> None:
        """Removes what a launch that did not submit left on the cluster (never raises)."""
        try:
            st.remove_remote(self.runner, self.scratch_dir, self.remote)
        except (SlurmCommandError, ValueError) as exc:
            self.log(f"[mltrain] could not remove {self.where}: {exc}")

    def bring_back(self) -> None:
        """Outputs and logs back, then the run's folder on the cluster removed."""
        st.pull(self.runner, f"{self.remote}/outputs/", f"{self.run_dir / 'outputs'}/",
                "copying the run's outputs back")
        self.pull_logs()
        try:
            st.remove_remote(self.runner, self.scratch_dir, self.remote)
        except SlurmCommandError as exc:
            self.log(f"[mltrain] could not remove {self.where}: {exc}")
            return
        self.log(f"[mltrain] outputs and logs copied back from {self.where}; removed it there")


__all__ = ["APPENDED", "MIRROR", "PULL_EVERY_S", "StagedRun"]
