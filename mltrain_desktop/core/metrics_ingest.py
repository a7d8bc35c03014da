"""Moves metric records from a run's JSON-lines files into SQLite, resuming by byte offset.

Only whole lines are taken; the offset and the rows are committed in one transaction, so a
crash of either side loses nothing and never ingests a record twice. A batch is parsed with a
single ``json.loads`` (falling back to line by line when a record is damaged).
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

MAX_BATCH_BYTES = 32 << 20
_SPECIAL = {"NaN", "Infinity", "-Infinity"}


def series_id(conn: sqlite3.Connection, cache: dict, run_id: str, name: str, rank: int) -> int:
    key = (run_id, name, rank)
    sid = cache.get(key)
    if sid is None:
        conn.execute("INSERT OR IGNORE INTO metric_series (run_id, name, rank) VALUES (?,?,?)", key)
        sid = conn.execute("SELECT id FROM metric_series WHERE run_id=? AND name=? AND rank=?", key).fetchone()[0]
        cache[key] = sid
    return sid


def _parse(chunk: bytes) -> list:
    text = chunk.decode("utf-8", errors="replace")
    try:
        return json.loads("[" + text.rstrip("\n").replace("\n", ",") + "]")
    except ValueError:
        out = []
        for line in text.split("\n"):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a damaged record is skipped, never fatal
        return out


def _fast_metrics(conn, run_id: str, records: list, default_rank: int) -> tuple[list, list] | None:
    """The common case in one pass of comprehensions: metric records with float values.

    Returns (metric rows, the records left for the general path), or None when a record lacks
    a field the fast path reads (then the general path takes the whole batch).
    """
    try:
        keys = {(r["n"], r.get("rank", default_rank)) for r in records if r.get("k") == "m"}
        cache: dict = {}
        sids = {key: series_id(conn, cache, run_id, str(key[0]), int(key[1])) for key in keys}
        fast = [(sids[(r["n"], r.get("rank", default_rank))], r["s"], r["v"], None, r["t"])
                for r in records if r.get("k") == "m" and type(r.get("v")) is float and type(r.get("s")) is int]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    rest = [r for r in records if not (r.get("k") == "m" and type(r.get("v")) is float and type(r.get("s")) is int)]
    return fast, rest


def _records_to_rows(conn, run_id: str, records: list, default_rank: int) -> tuple[list, list, dict]:
    """(metric rows, table rows, tags) from parsed records; damaged records are skipped."""
    now = time.time()
    metrics: list = []
    fast = _fast_metrics(conn, run_id, records, default_rank) if all(type(r) is dict for r in records) else None
    if fast is not None:
        metrics, records = fast
    cache: dict = {}
    rows, tags = [], {}
    for rec in records:
        try:
            kind = rec.get("k", "m")
            rank = rec.get("rank", default_rank)
            if kind == "m":
                v = rec["v"]
                tv = type(v)
                if tv is float or tv is int:
                    value, text = v, None
                elif tv is str:
                    value, text = None, v
                elif tv is bool:
                    value, text = float(v), None
                else:
                    value, text = None, json.dumps(v)
                sid = series_id(conn, cache, run_id, str(rec["n"]), int(rank))
                metrics.append((sid, int(rec.get("s", 0)), value, text, rec.get("t", now)))
            elif kind == "r":
                rows.append((run_id, str(rec["n"]), int(rec.get("s", 0)), json.dumps(rec["v"]),
                             float(rec.get("t", now)), int(rank)))
            elif kind == "t":
                tags[str(rec["n"])] = str(rec.get("v", ""))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return metrics, rows, tags


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
        records = _parse(chunk)
        conn.execute("BEGIN IMMEDIATE")
        try:
            metrics, rows, tags = _records_to_rows(conn, run_id, records, default_rank)
            if metrics:
                conn.executemany("INSERT INTO metrics (series_id, step, value, text, wall) VALUES (?,?,?,?,?)",
                                 metrics)
            if rows:
                conn.executemany("INSERT INTO metric_rows (run_id, name, step, row, wall, rank) VALUES (?,?,?,?,?,?)",
                                 rows)
            if tags:
                current = conn.execute("SELECT tags FROM runs WHERE id=?", [run_id]).fetchone()
                if current is not None:
                    conn.execute("UPDATE runs SET tags=? WHERE id=?",
                                 [json.dumps({**json.loads(current[0] or "{}"), **tags}), run_id])
            offset += len(chunk)
            conn.execute("INSERT INTO ingest_offsets (run_id, file, offset) VALUES (?,?,?) "
                         "ON CONFLICT(run_id, file) DO UPDATE SET offset=excluded.offset", [run_id, key, offset])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        total += len(metrics) + len(rows) + len(tags)
    return total


def decode_value(value, text):
    """The logged value back from its (value, text) columns."""
    if text is None:
        return value
    if text in _SPECIAL:
        return float(text.replace("Infinity", "inf"))
    return text

