"""Write transactions on a workspace connection (autocommit mode, as ``store.db.connect`` opens it)."""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Takes the write lock up front (BEGIN IMMEDIATE), commits at the end, rolls back on any
    error. Inside a transaction the caller already holds, it joins that one: the caller's end
    commits or rolls back both."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
