"""One log pump for mltrain's containers: a container's log followed into a file, resumable.

A frame count kept on disk (:class:`LogCursor`) lets a pump started by a new supervisor, or after
a stream broke, continue at the line after the last one written.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import threading
from pathlib import Path

_TS_RE = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d) ")


def parse_log_timestamp(frame: bytes) -> tuple[int | None, bytes]:
    """Splits a ``timestamps=True`` log frame into (nanoseconds since the epoch, message)."""
    m = _TS_RE.match(frame)
    if not m:
        return None, frame
    base = _dt.datetime.strptime(m.group(1).decode(), "%Y-%m-%dT%H:%M:%S")
    tz = m.group(3).decode()
    offset = 0 if tz == "Z" else (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60) * (1 if tz[0] == "+" else -1)
    secs = int(base.replace(tzinfo=_dt.timezone.utc).timestamp()) - offset
    nanos = int((m.group(2) or b"0").decode().ljust(9, "0"))
    return secs * 1_000_000_000 + nanos, frame[m.end():]


class LogCursor:
    """How many frames of a container's log are already in driver.log, kept on disk.

    The engine returns a container's log in the same order every time, but its timestamps are
    not in that order: stdout and stderr are read by separate copiers, so a stderr line can carry
    an earlier time than the stdout line before it. The position is therefore a count of frames,
    and a resumed stream (a new supervisor, a stream that broke) reads the log from its start
    and skips that many. Saved after every line with one small in-place write, so a supervisor
    killed at any moment resumes at the line after the last one it wrote.
    """

    _FORMAT = "n {:020d}\n"

    def __init__(self, path: Path):
        self.path = path
        self.written = 0
        self._fd: int | None = None
        self._legacy_ts: int | None = None  # a cursor saved by 0.1.0, which kept a time
        try:
            fields = path.read_text().split()
            if fields[0] == "n":
                self.written = int(fields[1])
            else:
                self._legacy_ts = int(fields[0])
        except (OSError, ValueError, IndexError):
            pass
        self._seen = 0  # frames seen in the current stream

    def new_stream(self) -> None:
        """A new log request starts (from the log's first frame)."""
        self._seen = 0

    def accept(self, ts_ns: int | None) -> bool:
        """True when the next frame of the stream was not written yet (and records it as written)."""
        self._seen += 1
        if self._legacy_ts is not None:
            if ts_ns is not None and ts_ns <= self._legacy_ts:
                return False
            self._legacy_ts = None
            self.written = self._seen
            return True
        if self._seen <= self.written:
            return False
        self.written = self._seen
        return True

    def save(self) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        os.pwrite(self._fd, self._FORMAT.format(self.written).encode(), 0)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class LogPump(threading.Thread):
    """Follows a container's log into a file, resuming after the cursor."""

    def __init__(self, api, container_id: str, log_file: Path, cursor: LogCursor):
        super().__init__(name=f"mltrain-docker-log-{container_id[:12]}", daemon=True)
        self.api = api
        self.container_id = container_id
        self.log_file = log_file
        self.cursor = cursor
        self.error: Exception | None = None
        self.lines = 0
        self.complete = False  # the stream ended because the container stopped: nothing is missing

    def run(self) -> None:
        self.cursor.new_stream()
        try:
            stream = self.api.logs(self.container_id, stdout=True, stderr=True, stream=True, follow=True,
                                   timestamps=True)
            with open(self.log_file, "ab", buffering=0) as fh:
                for frame in stream:
                    ts, msg = parse_log_timestamp(frame)
                    if not self.cursor.accept(ts):
                        continue
                    fh.write(msg)
                    self.cursor.save()
                    self.lines += 1
            state = self.api.inspect_container(self.container_id).get("State") or {}
            self.complete = state.get("Status") in ("exited", "dead")
        except Exception as exc:  # noqa: BLE001 - the container may vanish; poll() decides
            self.error = exc

    def drain(self) -> None:
        """Once the container has stopped: when this pump's stream broke or ended while the
        container still ran, reads the log again and writes what came after the cursor."""
        if not self.is_alive() and not self.complete:
            LogPump(self.api, self.container_id, self.log_file, self.cursor).run()


__all__ = ["parse_log_timestamp", "LogCursor", "LogPump"]
