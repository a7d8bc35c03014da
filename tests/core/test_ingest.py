"""Metric ingestion: byte offsets, partial lines, damaged records, resumption; fuzzed values."""
from __future__ import annotations

import json
import math

from hypothesis import given, settings, strategies as st

from mltrain_desktop.core.metrics_ingest import ingest_file
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
