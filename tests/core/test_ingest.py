"""Metric ingestion: byte offsets, partial lines, damaged records, resumption; fuzzed values."""
from __future__ import annotations

import json
import math

from hypothesis import given, settings, strategies as st

from mltrain_desktop.store.metrics import ingest_file
from mltrain_desktop.store.db import connect


def _db(tmp_path):
    db = connect(tmp_path / "w.db")
    return db.conn


def test_partial_lines_wait_and_offsets_resume(tmp_path):
    conn = _db(tmp_path)
    f = tmp_path / "metrics.jsonl"
    f.write_bytes(b'{"k":"m","n":"a","s":0,"v":1,"t":1}\n{"k":"m","n":"a","s":1,')
    assert ingest_file(conn, "r", f) == 1
    assert ingest_file(conn, "r", f) == 0
    with open(f, "ab") as fh:
        fh.write(b'"v":2,"t":2}\nnot json at all\n{"k":"t","n":"tag","v":"x"}\n')
    conn.execute("INSERT INTO experiments (id, name, created) VALUES (1, 'e', 0)")
    conn.execute("INSERT INTO runs (id, experiment_id, number, status, compute, created) VALUES ('r', 1, 1, 'Running', 'local', 0)")
    assert ingest_file(conn, "r", f) == 2
    assert conn.execute("SELECT step, value FROM metrics ORDER BY step").fetchall() == [(0, 1.0), (1, 2.0)]
    assert json.loads(conn.execute("SELECT tags FROM runs").fetchone()[0]) == {"tag": "x"}
    # A second connection (a new supervisor) continues from the stored offset.
    conn2 = _db(tmp_path)
    with open(f, "ab") as fh:
        fh.write(b'{"k":"m","n":"a","s":2,"v":3,"t":3}\n')
    assert ingest_file(conn2, "r", f) == 1
    assert conn2.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 3


values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**53, 2**53),
                   st.text(max_size=20))


@settings(max_examples=60, deadline=None)
@given(st.lists(values, min_size=1, max_size=30))
def test_any_logged_value_round_trips(tmp_path_factory, vals):
    from mltrain_desktop import run as runmod
    tmp = tmp_path_factory.mktemp("fuzz")
    f = tmp / "m.jsonl"
    r = runmod.Run("r", str(f))
    for v in vals:
        r.log("v", v)
    conn = _db(tmp)
    assert ingest_file(conn, "r", f) == len(vals)
    rows = conn.execute("SELECT value, text FROM metrics ORDER BY step").fetchall()
    for v, (value, text) in zip(vals, rows):
        if isinstance(v, str):
            assert text == v
        elif isinstance(v, float) and math.isnan(v):
            assert text == "NaN"
        elif isinstance(v, float) and math.isinf(v):
            assert text == ("Infinity" if v > 0 else "-Infinity")
        else:
            assert value == float(v)


def _dump(conn):
    metrics = conn.execute("SELECT s.name, s.rank, m.step, m.value, m.text, m.wall FROM metrics m "
                           "JOIN metric_series s ON s.id = m.series_id ORDER BY m.rowid").fetchall()
    rows = conn.execute("SELECT name, step, row, rank FROM metric_rows ORDER BY rowid").fetchall()
    tags = conn.execute("SELECT tags FROM runs").fetchall()
    return metrics, rows, tags


def _run_row(conn):
    conn.execute("INSERT INTO experiments (id, name, created) VALUES (1, 'e', 0)")
    conn.execute("INSERT INTO runs (id, experiment_id, number, status, compute, created) "
                 "VALUES ('r', 1, 1, 'Running', 'local', 0)")


MIXED_LINES = [
    '{"k":"m","n":"loss","s":0,"v":0.5,"t":1.5}',
    '{"k":"m","n":"loss","s":1,"v":0.25,"t":2.5,"rank":1}',
    '{"k":"m","n":"acc","s":0,"v":1,"t":3}',              # an int value: general path
    '{"k":"m","n":"note","s":0,"v":"hello","t":4}',
    '{"k":"m","n":"weird","s":0,"v":"NaN","t":5}',
    '{"k":"r","n":"table","s":0,"v":{"epoch":1,"acc":0.5},"t":6}',
    '{"k":"t","n":"color","v":"blue"}',
    'not json at all',
    '[1, 2, 3]',
    '"a string"',
    '{"k":"m","n":"loss","s":2,"v":0.125}',                # no time: gets the ingestion time
    '{"k":"m","n":"loss","v":0.1,"t":7}',                  # no step: step 0
    '{"k":"m","n":"big","s":0,"v":"' + "x" * 3000 + '","t":8}',  # longer than a (shrunk) batch
    '{"k":"m","n":"huge","s":0,"v":"' + "y" * 9000 + '","t":9}',  # longer than the line limit
    '{"k":"m","n":"loss","s":3,"v":0.0625,"t":10}',
]


def test_small_pieces_and_batches_give_the_same_rows(tmp_path, monkeypatch):
    """Cutting a file into pieces and transactions never changes what is stored."""
    from mltrain_desktop.store import metrics as mi
    f = tmp_path / "metrics.jsonl"
    lines = MIXED_LINES * 3 + ['{"k":"m","n":"loss","s":%d,"v":%r,"t":%d}' % (i, 1 / (i + 1), i) for i in range(700)]
    f.write_text("\n".join(lines) + "\n")
    ref_dir, small_dir = tmp_path / "ref", tmp_path / "small"
    ref_dir.mkdir(), small_dir.mkdir()
    ref = _db(ref_dir)
    _run_row(ref)
    monkeypatch.setattr(mi, "MAX_LINE_BYTES", 5000)
    monkeypatch.setattr(mi, "PIECE_BYTES", 4000)
    n_ref = ingest_file(ref, "r", f)
    assert n_ref == 3 * 11 + 700
    monkeypatch.setattr(mi, "MAX_BATCH_BYTES", 1000)
    monkeypatch.setattr(mi, "PIECE_BYTES", 200)
    small = _db(small_dir)
    _run_row(small)
    assert ingest_file(small, "r", f) == n_ref
    ref_metrics, ref_rows, ref_tags = _dump(ref)
    metrics, rows, tags = _dump(small)
    strip = lambda ms: [m for m in ms if m[0] != "loss" or m[2] != 2]  # noqa: E731 - its time is "now"
    assert strip(metrics) == strip(ref_metrics) and rows == ref_rows and tags == ref_tags
    names = [m[0] for m in metrics]
    assert "huge" not in names and names.count("big") == 3
    assert [m for m in metrics if m[0] == "big"][0][4] == "x" * 3000
    assert ("loss", 1, 1, 0.25, None, 2.5) in metrics          # the rank went to its own series
    assert ("acc", 0, 0, 1.0, None, 3.0) in metrics
    assert ("weird", 0, 0, None, "NaN", 5.0) in metrics
    assert len(rows) == 3 and json.loads(tags[0][0]) == {"color": "blue"}
    loss0 = [m[2:4] for m in metrics if m[0] == "loss" and m[1] == 0 and m[5] is not None]
    assert loss0[-700:] == [(i, 1 / (i + 1)) for i in range(700)]
    assert ingest_file(small, "r", f) == 0  # the offset covers everything, the skipped line included


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "é", "x y"]), st.integers(0, 3),
                          st.floats(allow_nan=False, allow_infinity=False)), max_size=600),
       st.integers(40, 4000))
def test_any_float_stream_is_stored_in_order_whatever_the_piece_size(tmp_path_factory, points, piece):
    """The fast path and the many-rows-per-statement insert keep every point, in order."""
    from mltrain_desktop.store import metrics as mi
    from mltrain_desktop.run import Run as JobRun
    tmp = tmp_path_factory.mktemp("stream")
    f = tmp / "m.jsonl"
    runs = {}
    for name, rank, v in points:
        r = runs.get(rank) or runs.setdefault(rank, JobRun("r", str(f), rank=rank))
        r.log(name, v)
    conn = _db(tmp)
    saved, mi.PIECE_BYTES = mi.PIECE_BYTES, piece
    try:
        assert ingest_file(conn, "r", f) == len(points)
    finally:
        mi.PIECE_BYTES = saved
    got = conn.execute("SELECT s.name, s.rank, m.value FROM metrics m JOIN metric_series s ON s.id = m.series_id "
                       "ORDER BY m.rowid").fetchall()
    assert got == [(n, rank, float(v)) for n, rank, v in points]


def test_the_garbage_collector_is_left_as_it_was(tmp_path):
    import gc
    import sqlite3
    f = tmp_path / "m.jsonl"
    f.write_text('{"k":"m","n":"a","s":0,"v":0.5,"t":1}\n')
    conn = _db(tmp_path)
    assert gc.isenabled()
    assert ingest_file(conn, "r", f) == 1
    assert gc.isenabled()
    gc.disable()
    try:
        f.write_text(f.read_text() * 2)
        assert ingest_file(conn, "r", f) == 1
        assert not gc.isenabled()
    finally:
        gc.enable()
    conn.close()
    f.write_text(f.read_text() * 2)
    try:
        ingest_file(conn, "r", f)
    except sqlite3.ProgrammingError:
        pass
    else:
        raise AssertionError("a closed connection must raise")
    assert gc.isenabled()
