"""Metric rows: ingested from a run's JSON-lines files into SQLite, resuming by byte offset, and read back.

Only whole lines are taken; the offset is read and written in one transaction with the rows
(BEGIN IMMEDIATE), so a crash of either side loses nothing, and neither a crash nor a second
ingester of the same file (two clients recovering one run) ever stores a record twice. A transaction covers up to
``MAX_BATCH_BYTES`` of the file, handled in pieces of ``PIECE_BYTES`` (small lists stay in the CPU
cache and memory stays flat); a piece is parsed with a single ``json.loads`` (falling back to line
by line when a record is damaged) and its points are inserted ``ROWS_PER_INSERT`` per statement,
which costs SQLite a third of what one statement per point does.
"""
from __future__ import annotations

import gc
import json
import sqlite3
import time
from itertools import chain
from pathlib import Path

MAX_BATCH_BYTES = 4 << 20
MAX_LINE_BYTES = 32 << 20  # a longer record is skipped, never fatal
PIECE_BYTES = 256 << 10
ROWS_PER_INSERT = 128  # 640 parameters: under the 999 of SQLite builds older than 3.32
_INSERT_ONE = "INSERT INTO metrics (series_id, step, value, text, wall) VALUES (?,?,?,?,?)"
_INSERT_MANY = ("INSERT INTO metrics (series_id, step, value, text, wall) VALUES "
                + ",".join(["(?,?,?,?,?)"] * ROWS_PER_INSERT))
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


class _SeriesIds(dict):
    """Metric name -> series id for one run and rank; a series is created on first use."""

    def __init__(self, conn: sqlite3.Connection, run_id: str, rank: int):
        super().__init__()
        self.conn, self.run_id, self.rank = conn, run_id, rank

    def __missing__(self, name) -> int:
        sid = self[name] = series_id(self.conn, {}, self.run_id, str(name), self.rank)
        return sid


class _SeriesByRank(dict):
    """Rank -> its :class:`_SeriesIds`."""

    def __init__(self, conn: sqlite3.Connection, run_id: str):
        super().__init__()
        self.conn, self.run_id = conn, run_id

    def __missing__(self, rank) -> _SeriesIds:
        ids = self[rank] = _SeriesIds(self.conn, self.run_id, int(rank))
        return ids


def _fast_metrics(conn, run_id: str, records: list, default_rank: int) -> tuple[list, list] | None:
    """The common case in one comprehension: metric records with float values and int steps.

    Returns (metric rows, the records left for the general path), or None when a record is not
    a dict or lacks a field the fast path reads (then the general path takes the whole piece).
    """
    sids = _SeriesByRank(conn, run_id)
    try:
        fast = [(sids[r.get("rank", default_rank)][r["n"]], r["s"], r["v"], None, r["t"])
                for r in records if r.get("k") == "m" and type(r.get("v")) is float and type(r.get("s")) is int]
        if len(fast) == len(records):
            return fast, []
        rest = [r for r in records
                if not (r.get("k") == "m" and type(r.get("v")) is float and type(r.get("s")) is int)]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return fast, rest


def insert_metrics(conn: sqlite3.Connection, rows: list) -> None:
    """Inserts (series_id, step, value, text, wall) rows, ``ROWS_PER_INSERT`` per statement."""
    width = 5 * ROWS_PER_INSERT
    flat = list(chain.from_iterable(rows))
    whole = len(flat) - len(flat) % width
    if whole:
        conn.executemany(_INSERT_MANY, [flat[i:i + width] for i in range(0, whole, width)])
    if whole < len(flat):
        conn.executemany(_INSERT_ONE, rows[whole // 5:])


def _pieces(chunk: bytes):
    """``chunk`` (whole lines) cut into pieces of about ``PIECE_BYTES``, each of whole lines."""
    start, n = 0, len(chunk)
    while start < n:
        end = chunk.rfind(b"\n", start, start + PIECE_BYTES)
        if end < start:
            end = chunk.find(b"\n", start + PIECE_BYTES)
            if end < 0:
                end = n - 1
        yield chunk[start:end + 1]
        start = end + 1


def _records_to_rows(conn, run_id: str, records: list, default_rank: int) -> tuple[list, list, dict]:
    """(metric rows, table rows, tags) from parsed records; damaged records are skipped."""
    now = time.time()
    metrics: list = []
    fast = _fast_metrics(conn, run_id, records, default_rank)
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
    # Parsing makes ~10^5 short-lived dicts per piece and no reference cycles: the cyclic
    # collector would only walk them (about a tenth of the time), so it is paused meanwhile.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _ingest_file(conn, run_id, Path(path), default_rank)
    finally:
        if collecting:
            gc.enable()


def _offset(conn: sqlite3.Connection, run_id: str, key: str) -> int:
    row = conn.execute("SELECT offset FROM ingest_offsets WHERE run_id=? AND file=?", [run_id, key]).fetchone()
    return row[0] if row else 0


def _whole_lines(path: Path, offset: int, size: int) -> tuple[bytes, int] | None:
    """(the whole lines from ``offset``, up to a batch, and the bytes they take); None: no whole line yet.

    A record longer than ``MAX_LINE_BYTES`` comes back as (b"", its length read so far): skipped.
    """
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(min(size - offset, MAX_BATCH_BYTES))
        end = data.rfind(b"\n")
        if end < 0 and len(data) == MAX_BATCH_BYTES:  # a record longer than a batch
            data += fh.read(min(size - offset, MAX_LINE_BYTES) - len(data))
            end = data.rfind(b"\n")
    if end < 0:
        return (b"", len(data)) if len(data) >= MAX_LINE_BYTES else None
    return data[: end + 1], end + 1


def _store_chunk(conn: sqlite3.Connection, run_id: str, chunk: bytes, default_rank: int) -> int:
    """Inserts the records of ``chunk`` (the caller's transaction); returns how many were taken."""
    count, tags = 0, {}
    for piece in _pieces(chunk):
        if len(piece) > PIECE_BYTES and len(piece) > MAX_LINE_BYTES:  # one absurd line
            continue
        metrics, rows, piece_tags = _records_to_rows(conn, run_id, _parse(piece), default_rank)
        if metrics:
            insert_metrics(conn, metrics)
        if rows:
            conn.executemany("INSERT INTO metric_rows (run_id, name, step, row, wall, rank) "
                             "VALUES (?,?,?,?,?,?)", rows)
        tags.update(piece_tags)
        count += len(metrics) + len(rows) + len(piece_tags)
    if tags:
        current = conn.execute("SELECT tags FROM runs WHERE id=?", [run_id]).fetchone()
        if current is not None:
            conn.execute("UPDATE runs SET tags=? WHERE id=?",
                         [json.dumps({**json.loads(current[0] or "{}"), **tags}), run_id])
    return count


def _ingest_file(conn: sqlite3.Connection, run_id: str, path: Path, default_rank: int) -> int:
    key = path.name
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if _offset(conn, run_id, key) >= size:
        return 0  # nothing new (the offset only grows): no write lock taken
    total = 0
    while True:
        # The offset is read under the write lock with the rows it covers, so two ingesters of one
        # file (two clients recovering a run, a supervisor and a recovery) never take a line twice.
        conn.execute("BEGIN IMMEDIATE")
        try:
            offset = _offset(conn, run_id, key)
            taken = _whole_lines(path, offset, size) if offset < size else None
            if taken is None:
                conn.execute("COMMIT")
                return total
            chunk, used = taken
            count = _store_chunk(conn, run_id, chunk, default_rank) if chunk else 0
            conn.execute("INSERT INTO ingest_offsets (run_id, file, offset) VALUES (?,?,?) "
                         "ON CONFLICT(run_id, file) DO UPDATE SET offset=excluded.offset", [run_id, key, offset + used])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        total += count
        if offset + used >= size:
            return total


def decode_value(value, text):
    """The logged value back from its (value, text) columns."""
    if text is None:
        return value
    if text in _SPECIAL:
        return float(text.replace("Infinity", "inf"))
    return text



# ------------------------------------------------------------------------------ reading

def points(conn: sqlite3.Connection, run_id: str, name: str | None = None, rank: int | None = 0) -> list[tuple]:
    """(name, value) of every point of the run's metrics (one name, one rank when given), in
    name, rank and step order; values decoded as logged."""
    sql = ("SELECT s.name, m.value, m.text FROM metric_series s JOIN metrics m ON m.series_id = s.id "
           "WHERE s.run_id=?")
    args: list = [run_id]
    if name is not None:
        sql += " AND s.name=?"
        args.append(name)
    if rank is not None:
        sql += " AND s.rank=?"
        args.append(rank)
    sql += " ORDER BY s.name, s.rank, m.step, m.rowid"
    return [(n, decode_value(v, t)) for n, v, t in conn.execute(sql, args)]


def table_rows(conn: sqlite3.Connection, run_id: str) -> list[tuple[str, dict]]:
    """(name, row) of the run's logged table rows, by name and step."""
    rows = conn.execute("SELECT name, row FROM metric_rows WHERE run_id=? ORDER BY name, step", [run_id])
    return [(n, json.loads(r)) for n, r in rows]


def series(conn: sqlite3.Connection, run_id: str, name: str, rank: int = 0,
           after_step: int = -1) -> list[tuple]:
    """(step, value, wall) of one metric's points after ``after_step``, by step (value as stored)."""
    return conn.execute(
        "SELECT m.step, m.value, m.wall FROM metrics m WHERE m.series_id = (SELECT id FROM metric_series "
        "WHERE run_id=? AND name=? AND rank=?) AND m.step>? ORDER BY m.step",
        [run_id, name, rank, after_step]).fetchall()


def last_step(conn: sqlite3.Connection, run_id: str, name: str, rank: int = 0) -> int:
    """The highest step stored for one metric (or table) of the run; -1 when it has none."""
    row = conn.execute("SELECT MAX(m.step) FROM metrics m JOIN metric_series s ON s.id = m.series_id "
                       "WHERE s.run_id=? AND s.name=? AND s.rank=?", [run_id, name, rank]).fetchone()
    return -1 if row is None or row[0] is None else int(row[0])


def series_names(conn: sqlite3.Connection, run_id: str) -> list[tuple[str, int]]:
    return [tuple(r) for r in conn.execute(
        "SELECT name, rank FROM metric_series WHERE run_id=? ORDER BY rank, name", [run_id])]


def rank0_series(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """{run id: {metric name: series id}} of every run's rank-0 metrics."""
    out: dict[str, dict[str, int]] = {}
    for sid, rid, name in conn.execute("SELECT id, run_id, name FROM metric_series WHERE rank = 0"):
        out.setdefault(rid, {})[name] = sid
    return out


def last_point(conn: sqlite3.Connection, series_id: int) -> tuple | None:
    """(value, text) of the series' last step as stored, or None when it has no point."""
    return conn.execute("SELECT value, text FROM metrics WHERE series_id=? ORDER BY step DESC LIMIT 1",
                        [series_id]).fetchone()


def delete_for_run(conn: sqlite3.Connection, run_id: str) -> None:
    """Removes the run's metrics, table rows and ingestion offsets (the caller's transaction)."""
    conn.execute("DELETE FROM metrics WHERE series_id IN (SELECT id FROM metric_series WHERE run_id=?)", [run_id])
    for table in ("metric_series", "metric_rows", "ingest_offsets"):
        conn.execute(f"DELETE FROM {table} WHERE run_id=?", [run_id])
