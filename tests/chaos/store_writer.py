"""A second writer of a workspace, at full speed, for test_two_writers.py.

    python store_writer.py WORKSPACE SECONDS OUT.json

Round-robin over the database's write paths, as fast as it can for SECONDS: dataset versions,
model versions, experiments, compute targets (created and deleted), environments, endpoint rows
(inserted, moved through their states, updated, deleted) and runs of its own that it takes
through every state while ingesting metric points from their metrics files, as a supervisor
does (it records itself as their supervisor, so other clients' recovery leaves them alone).
Writes what it did (what the database must now hold) and every error to OUT.json.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
import uuid
from collections import Counter
from pathlib import Path

POINTS_PER_RUN = 200


def op_dataset(ws, i, did: Counter) -> None:
    from mltrain_desktop.core import Dataset
    f = ws.path.parent / f"writer-data-{i}.txt"
    f.write_text(f"version {i}")
    Dataset.File.from_files(path=[str(f)]).register(ws, "writer data", create_new_version=True)
    did["dataset_versions"] += 1


def op_model(ws, i, did: Counter) -> None:
    from mltrain_desktop.core import Model
    f = ws.path.parent / f"writer-model-{i}.txt"
    f.write_text(f"weights {i}")
    Model.register(ws, str(f), "writer-model")
    did["model_versions"] += 1


def op_experiment(ws, i, did: Counter) -> None:
    from mltrain_desktop.core import Experiment
    Experiment(ws, f"writer-exp-{i}")
    did["experiments"] += 1


def op_target(ws, i, did: Counter) -> None:
    from mltrain_desktop.core import ComputeTarget
    from mltrain_desktop.core.compute import LocalCompute
    t = ComputeTarget.create(ws, f"writer-target-{i}", LocalCompute.provisioning_configuration())
    if i % 2:
        t.delete()
    else:
        did["targets"] += 1


def op_environment(ws, i, did: Counter) -> None:
    from mltrain_desktop.store import environments
    environments.record(ws.db.conn, f"writer{i:012d}", "venv", "{}", f"/nowhere/{i}")
    did["environments"] += 1


def op_endpoint(ws, i, did: Counter) -> None:
    from mltrain_desktop.store import endpoints
    conn, name = ws.db.conn, f"writer-ep-{i}"
    if not endpoints.insert(conn, name, "local", ["writer-model:1"], {}, key=uuid.uuid4().hex):
        raise RuntimeError(f"endpoint {name} could not be inserted")
    if not endpoints.set_state(conn, name, "Healthy", expect="Transitioning", port=1000 + i % 50000):
        raise RuntimeError(f"endpoint {name} did not move to Healthy")
    endpoints.update(conn, name, key=uuid.uuid4().hex)
    if i % 2:
        endpoints.delete(conn, name)
    else:
        did["endpoints"] += 1


def op_run(ws, i, did: Counter) -> None:
    from mltrain_desktop.adapters.process import process_identity
    from mltrain_desktop.domain.run_state import RunStatus
    from mltrain_desktop.store import experiments, runs
    from mltrain_desktop.store.metrics import ingest_file
    conn = ws.db.conn
    rid = f"writer_{i}_{uuid.uuid4().hex[:8]}"
    runs.insert(conn, rid, experiments.ensure(conn, "writer"), "writer-only", {"writer": True}, {}, "writer", {})
    runs.record_first_supervisor(conn, rid, os.getpid(), process_identity(os.getpid()))
    metrics = ws.path.parent / "writer-metrics" / f"{rid}.jsonl"
    metrics.parent.mkdir(exist_ok=True)
    for status in (RunStatus.PREPARING, RunStatus.RUNNING):
        if not runs.set_status(conn, rid, status):
            raise RuntimeError(f"run {rid} did not move to {status}")
    with open(metrics, "a") as fh:
        for half in (0, 1):
            for s in range(half * POINTS_PER_RUN // 2, (half + 1) * POINTS_PER_RUN // 2):
                fh.write(json.dumps({"k": "m", "n": "loss", "s": s, "v": s / 7, "t": time.time()}) + "\n")
            fh.flush()
            ingest_file(conn, rid, metrics)
    for status in (RunStatus.FINALIZING, RunStatus.COMPLETED):
        if not runs.set_status(conn, rid, status):
            raise RuntimeError(f"run {rid} did not move to {status}")
    did["runs"] += 1
    did["metric_points"] += POINTS_PER_RUN
    did["run_events"] += 5


OPS = (op_run, op_endpoint, op_dataset, op_model, op_experiment, op_target, op_environment)


def main(argv: list[str]) -> int:
    ws_path, seconds, out = argv[0], float(argv[1]), Path(argv[2])
    from mltrain_desktop.core import Workspace
    ws = Workspace(ws_path)
    did: Counter = Counter()
    errors: list[str] = []
    end, i = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        op = OPS[i % len(OPS)]
        i += 1
        try:
            op(ws, i, did)
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the test
            errors.append(f"{op.__name__} #{i}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
    out.write_text(json.dumps({"did": did, "errors": errors, "ops": i}))
    ws.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
