"""Every SQLite write path under two writers in separate processes at full speed (issue 14).

One process submits runs from the CLI back to back (``mltrain run submit``, now and then
``mltrain run list``), and the supervisors those runs start write their state changes, events
and metrics; meanwhile ``store_writer.py``, another process, writes every other table as fast
as it can (datasets, models, experiments, targets, environments, endpoint rows, runs of its
own with their events and ingested metrics). Afterwards: no command failed, no
"database is locked" reached a user (command output, run errors, run logs), and every row each
side wrote is there.

The writers run ``MLTRAIN_TWO_WRITERS_S`` seconds, 20 by default (CI on 2 cores); the note's
figure is from ``MLTRAIN_TWO_WRITERS_S=60``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from chaos_helpers import wait_for

SECONDS = float(os.environ.get("MLTRAIN_TWO_WRITERS_S", "20"))
JOB_POINTS = 50
JOB = f"""
from mltrain_desktop.run import Run
run = Run.get_context()
for i in range({JOB_POINTS}):
    run.log("x", i * 0.5)
"""


def _cli(ws_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("MLTRAIN_WORKSPACE", None)
    return subprocess.run([sys.executable, "-m", "mltrain_desktop.cli", "--workspace", str(ws_path), "--json", *args],
                          capture_output=True, text=True, timeout=120, env=env)


def test_cli_submissions_and_a_second_writer_lose_nothing(ws, tmp_path):
    from mltrain_desktop.core import ComputeTarget, Dataset, Experiment, Model
    from mltrain_desktop.core.compute import LocalCompute
    from mltrain_desktop.core.runs import Run
    from mltrain_desktop.store import endpoints
    ComputeTarget.create(ws, "burst", LocalCompute.provisioning_configuration(max_concurrent_runs=3))
    src = tmp_path / "src"
    src.mkdir()
    (src / "job.py").write_text(JOB)
    report = tmp_path / "writer.json"
    writer = subprocess.Popen([sys.executable, str(Path(__file__).with_name("store_writer.py")), str(ws.path),
                               str(SECONDS), str(report)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    submitted, failures, end = [], [], time.monotonic() + SECONDS
    while time.monotonic() < end:
        r = _cli(ws.path, "run", "submit", "-e", "cli", "-s", str(src), "-c", "job.py", "--compute", "burst")
        if r.returncode != 0:
            failures.append(f"submit: {r.stderr.strip()[-300:]}")
        else:
            submitted.append(json.loads(r.stdout)["run_id"])
        if len(submitted) % 4 == 0:
            r = _cli(ws.path, "run", "list", "--limit", "5")
            if r.returncode != 0:
                failures.append(f"run list: {r.stderr.strip()[-300:]}")
    out, _ = writer.communicate(timeout=SECONDS + 120)
    assert writer.returncode == 0, out
    assert not failures, failures
    assert len(submitted) >= 5, f"only {len(submitted)} runs submitted in {SECONDS} s"

    wait_for(lambda: all(Run.get(ws, rid).is_terminal() for rid in submitted), 60 + 4 * len(submitted),
             "the CLI's runs to end")
    for rid in submitted:
        run = Run.get(ws, rid)
        details = run.get_details()
        assert details["status"] == "Completed", (rid, details.get("error"))
        assert [e["status"] for e in details["events"]] == ["Queued", "Preparing", "Running", "Finalizing",
                                                             "Completed"], rid
        assert run.get_metric_series("x")[0] == list(range(JOB_POINTS)), rid
        logs = "".join(run.read_log(name)[0] for name in ("driver.log", "supervisor.log"))
        assert "locked" not in logs, (rid, logs[-2000:])

    result = json.loads(report.read_text())
    did = result["did"]
    assert not result["errors"], result["errors"][:3]
    assert did["runs"] >= 1 and result["ops"] >= 14, result
    conn = ws.db.conn
    writer_runs = Run.list(ws, experiment="writer")
    assert len(writer_runs) == did["runs"]
    assert all(r.get_status() == "Completed" and r.get_metric_series("loss")[0] == list(range(200))
               for r in writer_runs)
    assert sum(len(r.get_events()) for r in writer_runs) == did["run_events"]
    assert len(Dataset.get_versions(ws, "writer data")) == did.get("dataset_versions", 0)
    assert len(Model.list(ws, name="writer-model")) == did.get("model_versions", 0)
    assert len([e for e in Experiment.list(ws) if e.name.startswith("writer-exp-")]) == did.get("experiments", 0)
    assert len([n for n in ComputeTarget.list(ws) if n.startswith("writer-target-")]) == did.get("targets", 0)
    assert len([n for n in endpoints.names(conn) if n.startswith("writer-ep-")]) == did.get("endpoints", 0)
    assert all(endpoints.get(conn, n)["state"] == "Healthy" for n in endpoints.names(conn))
    print(f"two writers for {SECONDS:.0f} s: {len(submitted)} runs submitted from the CLI; the other writer: "
          f"{result['ops']} operations {dict(did)}")
    assert conn.execute("SELECT COUNT(*) FROM environments WHERE hash LIKE 'writer%'").fetchone()[0] \
        == did.get("environments", 0)

