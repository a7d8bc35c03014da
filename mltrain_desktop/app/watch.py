"""Watching a workspace database for other clients' writes, without Qt.

:class:`ChangeWatch` keeps its own connection; each :meth:`ChangeWatch.poll` says which topics
(runs, experiments, datasets, compute, models, endpoints, plus ``metrics`` for any other write)
changed since the last one. The window's watcher thread polls it a few times a second.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from ..store.changes import TOPICS, data_version, open_reader, signature
from ..store.db import DB_FILE


class WorkspaceLost(Exception):
    """The workspace database cannot be read any more (removed, or never readable)."""


class ChangeWatch:
    """Polled from one thread; :meth:`close` when done."""

    def __init__(self, workspace_dir: str | Path):
        self.path = Path(workspace_dir)
        self.db_file = self.path / DB_FILE
        try:
            self.conn = open_reader(self.path)
        except sqlite3.Error as exc:
            raise WorkspaceLost(f"cannot read {self.db_file}: {exc}") from exc
        self._version: int | None = None
        self._signature: dict[str, tuple] = {}

    def poll(self) -> set[str] | None:
        """The topics that changed since the last poll, or None when nothing was committed (or
        the database was busy: ask again). Raises :class:`WorkspaceLost` if the file is gone."""
        if not self.db_file.exists():
            raise WorkspaceLost(f"the workspace database {self.db_file} was removed")
        try:
            version = data_version(self.conn)
            if version == self._version:
                return None
            topics = {"metrics"}
            for topic in TOPICS:
                sig = signature(self.conn, topic)
                if self._signature.get(topic) != sig:
                    self._signature[topic] = sig
                    topics.add(topic)
            self._version = version
        except sqlite3.Error:
            return None  # busy or mid-migration
        return topics

    def close(self) -> None:
        self.conn.close()
