"""Staging as values and on local folders: remote paths, rsync's command, the guard on removal, the
job's paths on the cluster, and the merge of copied-back logs (appended files not repeated)."""
from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path

import pytest

from mltrain_desktop.adapters.slurm import staging as st
from mltrain_desktop.adapters.slurm.commands import Runner
from mltrain_desktop.engine.backends.base import JobContext
from mltrain_desktop.engine.backends.slurm_staging import StagedRun


def ctx_for(tmp_path: Path) -> JobContext:
    rd = tmp_path / "ws" / "runs" / "exp_1_ab"
    for d in ("snapshot", "logs", "outputs", "slurm"):
        (rd / d).mkdir(parents=True)
    data = tmp_path / "data"
    data.mkdir()
    return JobContext(
        run_id="exp_1_ab", workspace_dir=tmp_path / "ws", run_dir=rd, snapshot_dir=rd / "snapshot",
        outputs_dir=rd / "outputs", logs_dir=rd / "logs", jobkit_dir=tmp_path / "ws" / ".jobkit",
        entry_script="job.py", arguments=[str(data), f"--out={rd}/outputs/x", "7"],
        environment_variables={"MLTRAIN_METRICS_FILE": str(rd / "logs" / "metrics.jsonl"), "PLAIN": "v"},
        target={"name": "c", "kind": "slurm", "config": {}}, spec={},
        inputs={"numbers": {"path": str(data)}}, raw_arguments=[{"input": "numbers"}, "--out", "7"], log=print)


def test_remote_run_dir_and_its_guards():
    assert st.remote_run_dir("/scratch", "exp_1_ab") == "/scratch/mltrain/exp_1_ab"
    for bad in ("", "..", "a/b"):
        with pytest.raises(ValueError):
            st.remote_run_dir("/scratch", bad)
    runner = Runner({})
    for bad in ("/scratch/mltrain", "/scratch/mltrain/", "/etc", "/scratch/mltrain/../x"):
        with pytest.raises(ValueError, match="refusing to remove"):
            st.remove_remote(runner, "/scratch", bad)


def test_rsync_goes_through_the_runners_own_ssh(tmp_path):
    config = tmp_path / "ssh_config"
    config.write_text("Host x\n")
    runner = Runner({"login_host": "login1", "ssh_config": str(config)})
    argv = st.rsync_command(runner, "/here/", "login1:/there/", excludes=("__pycache__",), delete=True)
    assert argv[:3] == ["rsync", "-a", "--mkpath"] and argv[-2:] == ["/here/", "login1:/there/"]
    ssh = shlex.split(argv[argv.index("-e") + 1])
    assert ssh[0] == "ssh" and ["-F", str(config)] == ssh[ssh.index("-F"):ssh.index("-F") + 2]
    assert f"ControlPath={runner.control_path()}" in ssh and "BatchMode=yes" in ssh
    assert "--delete" in argv and argv[argv.index("--exclude") + 1] == "__pycache__"
    assert "-e" not in st.rsync_command(Runner({}), "/a/", "/b/")  # no login host: a local copy


def test_the_job_sees_the_run_at_its_place_on_the_cluster(tmp_path):
    ctx = ctx_for(tmp_path)
    staged = StagedRun(Runner({"login_host": "login1"}), "/scratch", ctx.run_id, ctx.run_dir)
    paths = staged.job_paths(ctx)
    r = "/scratch/mltrain/exp_1_ab"
    assert staged.where == f"login1:{r}"
    assert paths["workdir"] == f"{r}/snapshot" and paths["logs_dir"] == f"{r}/logs"
    assert paths["jobkit_dir"] == f"{r}/.jobkit"
    assert paths["arguments"] == [f"{r}/inputs/numbers", f"--out={r}/outputs/x", "7"]
    assert paths["environment"] == {"MLTRAIN_METRICS_FILE": f"{r}/logs/metrics.jsonl", "PLAIN": "v"}
    assert staged.remote_path(ctx, ctx.logs_dir / "driver.log") == f"{r}/logs/driver.log"


def test_copying_back_appends_the_new_output_once_and_replaces_the_rank_files(tmp_path):
    """The real rsync, between two local folders (a target with no login host copies locally)."""
    ctx = ctx_for(tmp_path)
    scratch = tmp_path / "scratch"
    staged = StagedRun(Runner({}), str(scratch), ctx.run_id, ctx.run_dir)
    remote_logs = Path(staged.remote) / "logs"
    (remote_logs / ".tasks").mkdir(parents=True)
    (ctx.logs_dir / "driver.log").write_text("[mltrain] the engine's own line\n")
    (remote_logs / "driver.log").write_text("job line 1\n")
    (remote_logs / "rank_1.log").write_text("rank one\n")
    (remote_logs / ".tasks" / "rank_1.json").write_text(json.dumps({"ended": None}))
    staged.pull_logs()
    staged.pull_logs()  # nothing new: nothing repeated
    with open(remote_logs / "driver.log", "a") as fh:
        fh.write("job line 2\n")
    (remote_logs / "rank_1.log").write_text("rank one\nrank one again\n")
    later = time.time() + 5
    os.utime(remote_logs / "rank_1.log", (later, later))
    staged.pull_logs()
    assert (ctx.logs_dir / "driver.log").read_text() == "[mltrain] the engine's own line\njob line 1\njob line 2\n"
    assert (ctx.logs_dir / "rank_1.log").read_text() == "rank one\nrank one again\n"
    assert json.loads((ctx.logs_dir / ".tasks" / "rank_1.json").read_text()) == {"ended": None}
    (Path(staged.remote) / "outputs").mkdir()
    (Path(staged.remote) / "outputs" / "model.bin").write_bytes(b"\0" * 10)
    staged.bring_back()
    assert (ctx.outputs_dir / "model.bin").stat().st_size == 10
    assert not Path(staged.remote).exists()
