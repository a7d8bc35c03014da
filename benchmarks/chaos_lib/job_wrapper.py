"""The chaos suite's job: runs a sample script and records every metric point it flushed.

    python chaos_job.py SCRIPT [script arguments...]

Copied into each run's source folder as ``chaos_job.py`` (standard library only: it runs in the
job's environment, a container included). It wraps the in-job API's metrics writer so that,
right after a record has been written and flushed to the run's metrics file, the point
``[name, step, rank]`` is appended (one ``os.write`` on an O_APPEND descriptor, so a SIGKILL
leaves whole lines) to ``<metrics file>.flushed``. A point in that side file was therefore in
the metrics file before the job could be killed: the suite counts it lost if the database does
not have it after recovery. ``CHAOS_STEP_DELAY_S`` (seconds) is slept after each per-batch or
per-step loss point, so that a tiny training run lasts long enough to be hit while it trains.
"""
from __future__ import annotations

import json
import os
import runpy
import sys
import time

import mltrain_desktop.run as job_api

SIDE_SUFFIX = ".flushed"
_STEP_METRICS = ("batch_loss", "loss")


def install_recorder() -> None:
    metrics = os.environ.get(job_api.ENV_METRICS_FILE)
    if not metrics:
        return
    fd = os.open(metrics + SIDE_SUFFIX, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    delay = float(os.environ.get("CHAOS_STEP_DELAY_S") or 0)
    original = job_api._MetricsWriter.write

    def write(self, record: dict) -> None:
        original(self, record)
        if record.get("k") != "m":
            return
        point = [record["n"], record["s"], record.get("rank", 0)]
        os.write(fd, (json.dumps(point) + "\n").encode())
        if delay and record["n"] in _STEP_METRICS:
            time.sleep(delay)

    job_api._MetricsWriter.write = write


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: chaos_job.py SCRIPT [arguments...]")
    script = sys.argv[1]
    install_recorder()
    sys.argv = [script, *sys.argv[2:]]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
