"""Moves metric records from a run's JSON-lines files into SQLite, resuming by byte offset.

Only whole lines are taken; the offset and the rows are committed in one transaction, so a
crash of either side loses nothing and never ingests a record twice.
"""
from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path

MAX_BATCH_BYTES = 32 << 20


def _number(v):
    """(value REAL or None, text or None) for a logged value."""
    if isinstance(v, bool):
        return float(v), None
    if isinstance(v, (int, float)):
        f = float(v)
        if math.isfinite(f):
            return f, None
        return None, ("NaN" if math.isnan(f) else ("Infinity" if f > 0 else "-Infinity"))
    if isinstance(v, str):
        return None, v
    return None, json.dumps(v)


def ingest_file(conn: sqlite3.Connection, run_id: str, path: Path, default_rank: int = 0) -> int:
    """Ingests the new whole lines of ``path``; returns the number of records taken."""
    path = Path(path)
    key = path.name
    row = conn.execute("SELECT offset FROM ingest_offsets WHERE run_id=? AND file=?", [run_id, key]).fetchone()
    offset = row[0] if row else 0
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size <= offset:
        return 0
    total = 0
    while offset < size:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(min(size - offset, MAX_BATCH_BYTES))
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) >= MAX_BATCH_BYTES:  # one absurd line: skip it whole
                offset += len(data)
                continue
            break
        chunk = data[: end + 1]
        metrics, rows, tags = [], [], {}
        for line in chunk.split(b"\n"):
            if not line:
                continue
            try:
                rec = json.loads(line)
                kind = rec.get("k", "m")
                rank = int(rec.get("rank", default_rank))
                if kind == "m":
                    value, text = _number(rec["v"])
                    metrics.append((run_id, str(rec["n"]), int(rec.get("s", 0)), value, text,
                                    float(rec.get("t", time.time())), rank))
                elif kind == "r":
                    rows.append((run_id, str(rec["n"]), int(rec.get("s", 0)), json.dumps(rec["v"]),
                                 float(rec.get("t", time.time())), rank))
                elif kind == "t":
                    tags[str(rec["n"])] = str(rec.get("v", ""))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a damaged record is skipped, never fatal
        conn.execute("BEGIN IMMEDIATE")
        try:
            if metrics:
                conn.executemany("INSERT INTO metrics (run_id, name, step, value, text, wall, rank) "
                                 "VALUES (?,?,?,?,?,?,?)", metrics)
            if rows:
                conn.executemany("INSERT INTO metric_rows (run_id, name, step, row, wall, rank) VALUES (?,?,?,?,?,?)",
                                 rows)
            if tags:
                current = conn.execute("SELECT tags FROM runs WHERE id=?", [run_id]).fetchone()
                merged = {**json.loads(current[0] if current else "{}"), **tags}
                conn.execute("UPDATE runs SET tags=? WHERE id=?", [json.dumps(merged), run_id])
            offset += len(chunk)
            conn.execute("INSERT INTO ingest_offsets (run_id, file, offset) VALUES (?,?,?) "
                         "ON CONFLICT(run_id, file) DO UPDATE SET offset=excluded.offset", [run_id, key, offset])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        total += len(metrics) + len(rows) + len(tags)
    return total
