"""Helpers shared by the Docker tests (a module of its own: conftest modules share one name)."""
from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

from mltrain_desktop.engine.backends.base import JobContext
from mltrain_desktop.engine.jobkit import jobkit_dir

REPO = Path(__file__).resolve().parents[2]
TF_IMAGE = "mltrain-tf:2.21"
BASE_IMAGE = "mltrain-base:bookworm-py311"
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def ca_bundle() -> str | None:
    """The host's CA bundle (it trusts a TLS-intercepting proxy the containers do not know)."""
    return HOST_CA_BUNDLE if os.path.isfile(HOST_CA_BUNDLE) else None


def workspace_containers(api, workspace_dir) -> list[dict]:
    label = f"mltrain.workspace={Path(workspace_dir).resolve()}"
    return api.containers(all=True, filters={"label": label})


def make_ctx(tmp_path: Path, script: str, *, run_id="exp_1_r1", config=None, spec=None, inputs=None,
             arguments=None, raw_arguments=None, log=None) -> JobContext:
    ws = tmp_path / "ws"
    rd = ws / "runs" / run_id
    for d in ("snapshot", "outputs", "logs"):
        (rd / d).mkdir(parents=True, exist_ok=True)
    for link in ("outputs", "logs"):
        if not (rd / "snapshot" / link).is_symlink():
            (rd / "snapshot" / link).symlink_to(f"../{link}")
    (rd / "snapshot" / "job.py").write_text(textwrap.dedent(script))
    env = {"MLTRAIN_RUN_ID": run_id, "MLTRAIN_METRICS_FILE": str(rd / "logs" / "metrics.jsonl"),
           "MLTRAIN_OUTPUTS_DIR": str(rd / "outputs")}
    lines: list[str] = []

    def _log(line):
        lines.append(line)
        with open(rd / "logs" / "driver.log", "a") as fh:
            fh.write(line + "\n")
    ctx = JobContext(
        run_id=run_id, workspace_dir=ws, run_dir=rd, snapshot_dir=rd / "snapshot", outputs_dir=rd / "outputs",
        logs_dir=rd / "logs", jobkit_dir=jobkit_dir(ws), entry_script="job.py",
        arguments=list(arguments or []), environment_variables=env,
        target={"name": "docker1", "kind": "docker", "config": {"image": TF_IMAGE, **(config or {})}},
        spec=spec or {"environment": {}}, inputs=inputs or {}, raw_arguments=list(raw_arguments or arguments or []),
        log=log or _log)
    ctx.lines = lines  # what the backend logged, for assertions
    return ctx


def wait_rc(handle, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rc = handle.poll()
        if rc is not None:
            return rc
        time.sleep(0.1)
    raise AssertionError("the job did not end in time")


