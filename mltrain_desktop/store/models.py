"""Model rows: the registry's versions of each model name, with lineage to the run they came from."""
from __future__ import annotations

import json
import sqlite3
import time
from typing import Callable

from .sql import where
from .transaction import write_transaction

COLUMNS = ("id", "name", "version", "framework", "framework_version", "resource_configuration", "tags",
           "description", "run_id", "source_path", "location", "file_count", "total_bytes", "created")
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM models"


def get(conn: sqlite3.Connection, name: str, version: int | None = None) -> tuple | None:
    """The row (:data:`COLUMNS`) of the model's ``version`` (its latest when None), or None."""
    if version is None:
        return conn.execute(_SELECT + " WHERE name=? ORDER BY version DESC LIMIT 1", [name]).fetchone()
    return conn.execute(_SELECT + " WHERE name=? AND version=?", [name, int(version)]).fetchone()


def names(conn: sqlite3.Connection) -> list[str]:
    """Every registered model name, sorted."""
    return [r for (r,) in conn.execute("SELECT DISTINCT name FROM models ORDER BY name")]


def rows(conn: sqlite3.Connection, name: str | None = None, latest: bool = False,
         run_id: str | None = None) -> list[tuple]:
    """Rows (:data:`COLUMNS`) by name and version: of one name or run when given, only each
    name's latest version when ``latest``."""
    clause, args = where(("name=?", name or None), ("run_id=?", run_id or None),
                         ("version = (SELECT MAX(version) FROM models m2 WHERE m2.name = models.name)", latest))
    return conn.execute(_SELECT + clause + " ORDER BY name, version", args).fetchall()


def run_has_models(conn: sqlite3.Connection, run_id: str) -> bool:
    return conn.execute("SELECT 1 FROM models WHERE run_id=?", [run_id]).fetchone() is not None


def add_version(conn: sqlite3.Connection, name: str, place: Callable[[int], str], *, framework, framework_version,
                resource_configuration: dict, tags: dict, description: str, run_id: str | None,
                source_path: str, file_count: int, total_bytes: int) -> int:
    """Records the next version of model ``name``; returns its number. ``place(version)`` puts
    the files where that version keeps them and returns their location. It runs under the
    write lock, so two registrations never get the same version; if it fails, nothing is recorded."""
    with write_transaction(conn):
        version = conn.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM models WHERE name=?",
                               [name]).fetchone()[0]
        location = place(version)
        conn.execute(
            "INSERT INTO models (name, version, framework, framework_version, resource_configuration, tags, "
            "description, run_id, source_path, location, file_count, total_bytes, created) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [name, version, framework, framework_version, json.dumps(resource_configuration), json.dumps(tags),
             description or "", run_id, source_path, location, file_count, total_bytes, time.time()])
    return version
