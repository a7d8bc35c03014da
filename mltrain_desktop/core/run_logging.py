"""Logging to a submitted run from outside its job (the notebook's driver side): ``run.log``,
``log_list``, ``log_row``, ``tag`` and ``log_image`` on the ``Run`` that ``exp.submit`` returned.

Each record goes the way the job's own do: appended to a metrics file in the run's ``logs/``
(``metrics.driver.jsonl``) and ingested into the store at once, so it is stored exactly once
whoever ingests the file; a metric's steps continue after what the job logged. Images go to the
run's ``outputs/images/`` like the job's (``mltrain_desktop.run.save_image``).
"""
from __future__ import annotations

import os
import threading
import time

from .. import run as in_job

DRIVER_METRICS_FILE = "metrics.driver.jsonl"
_lock = threading.Lock()


class DriverLogging:
    """Mixed into ``core.runs.Run`` before the in-job ``Run``: a run with a workspace (the driver's)
    records here, one without (``Run.get_context()`` inside a job) goes on to the in-job API."""

    def _driver_record(self, record: dict) -> None:
        path = self.run_dir / "logs" / DRIVER_METRICS_FILE
        record["t"] = time.time()
        with _lock:
            writer = in_job._MetricsWriter(str(path))
            try:
                writer.write(record)
            finally:
                writer.close()
            from ..store import metrics as metric_rows  # not at import: a job imports this module
            metric_rows.ingest_file(self.workspace.db.conn, self.id, path)

    def _driver_step(self, name: str, step: int | None) -> int:
        if step is not None:
            return int(step)
        from ..store import metrics as metric_rows
        return metric_rows.last_step(self.workspace.db.conn, self.id, name) + 1

    def _in_job(self) -> bool:
        return getattr(self, "workspace", None) is None

    def log(self, name: str, value, description: str = "", step: int | None = None) -> None:
        """Records one value of a metric on this run (after the job's values of it)."""
        if self._in_job():
            return super().log(name, value, description, step)
        if not isinstance(name, str) or not name:
            raise ValueError("metric name must be a non-empty string")
        self._driver_record({"k": "m", "n": name, "s": self._driver_step(name, step),
                             "v": in_job._clean_value(value)})

    def log_list(self, name: str, value, description: str = "") -> None:
        if self._in_job():
            return super().log_list(name, value, description)
        for item in list(value):
            self.log(name, item)

    def log_row(self, name: str, description: str = "", **kwargs) -> None:
        if self._in_job():
            return super().log_row(name, description, **kwargs)
        if not kwargs:
            raise ValueError("log_row needs at least one column, e.g. log_row('acc', epoch=1, value=0.9)")
        row = {k: in_job._clean_value(v) for k, v in kwargs.items()}
        self._driver_record({"k": "r", "n": name, "s": self._driver_step(name, None), "v": row})

    def tag(self, key: str, value: str | None = None) -> None:
        if self._in_job():
            return super().tag(key, value)
        self._driver_record({"k": "t", "n": str(key), "v": "" if value is None else str(value)})

    set_tags_value = tag

    def log_image(self, name: str, path=None, plot=None, description: str = "") -> str:
        """Stores an image with this run (``outputs/images/``, shown in the window's Images tab)."""
        if self._in_job():
            return super().log_image(name, path, plot, description)
        images = self.run_dir / "outputs" / in_job.IMAGES_DIR
        prefix = in_job.image_file_name(name, 0).rsplit("-", 1)[0] + "-"
        index = len([f for f in os.listdir(images) if f.startswith(prefix)]) if images.is_dir() else 0
        return in_job.save_image(str(images), name, index, path, plot)
