"""Opens a workspace database: WAL journal, busy timeout, migrations applied once."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from .migrations import LATEST, MIGRATIONS

BUSY_TIMEOUT_MS = 30_000
DB_FILE = "workspace.db"  # the database inside a workspace folder


class StoreError(RuntimeError):
    """The workspace database cannot be used; the message says why and what to do."""


def _apply_migrations(conn: sqlite3.Connection, path: Path) -> None:
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > LATEST:
        raise StoreError(
            f"{path} was written by a newer MLTrain Desktop (schema version {current}, this "
            f"version knows up to {LATEST}); it was not opened, so nothing in it changed. "
            "Install the newer version to open it."
        )
    for number, _title, sql in MIGRATIONS:
        if number <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-check under the write lock: another client may have migrated meanwhile.
            if conn.execute("PRAGMA user_version").fetchone()[0] >= number:
                conn.execute("ROLLBACK")
                continue
            for statement in _split(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise


def _split(sql: str) -> list[str]:
    parts, buf = [], []
    for line in sql.splitlines():
        buf.append(line)
        if sqlite3.complete_statement("\n".join(buf)):
            parts.append("\n".join(buf))
            buf = []
    return [p for p in parts if p.strip()]


class Store:
    """A workspace database connection: ``execute`` for queries, ``utils`` for sqlite-utils' API.

    sqlite-utils (which imports numpy) is loaded only when ``utils`` is first used, so that
    short-lived processes such as run supervisors start fast.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn = conn
        self.path = path
        self._utils = None

    def execute(self, sql: str, params=()):
        return self.conn.execute(sql, params)

    @property
    def utils(self):
        if self._utils is None:
            import sqlite_utils
            self._utils = sqlite_utils.Database(self.conn)
        return self._utils

    def table_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]

    def close(self) -> None:
        self.conn.close()


def connect(path: str | Path, migrate: bool = True) -> Store:
    """Opens (creating if needed) the database at ``path`` and brings its schema up to date."""
    path = Path(path)
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if migrate and conn.execute("PRAGMA user_version").fetchone()[0] > LATEST:
            try:
                _apply_migrations(conn, path)  # refuses before anything (even the journal mode) changes
            finally:
                conn.close()
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        if migrate:
            _apply_migrations(conn, path)
    except sqlite3.DatabaseError as exc:
        msg = str(exc)
        if "not a database" in msg or "malformed" in msg or "file is encrypted" in msg:
            raise StoreError(
                f"{path} is not an MLTrain workspace database ({msg}). It was left untouched; "
                "open another workspace, or move this file aside and create a new workspace here."
            ) from exc
        if "readonly" in msg or "unable to open" in msg:
            raise StoreError(
                f"cannot open {path} for writing ({msg}); check the folder's permissions "
                "or choose a workspace folder you can write to."
            ) from exc
        raise
    return Store(conn, path)


def schema_version(db: Store) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]
