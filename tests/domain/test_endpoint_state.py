"""Endpoint states: the transition table, terminal and live states, and the state names as text."""
from __future__ import annotations

import itertools
import json
import sqlite3

import pytest

from mltrain_desktop.domain import endpoint_state as es
from mltrain_desktop.domain.endpoint_state import EndpointState, can_move

S = EndpointState

# Written out by hand (not read from the module) so that a change to the table shows up here.
EXPECTED_MOVES = {
    (S.TRANSITIONING, S.HEALTHY), (S.TRANSITIONING, S.FAILED), (S.TRANSITIONING, S.UNHEALTHY),
    (S.TRANSITIONING, S.STOPPED), (S.TRANSITIONING, S.DELETED),
    (S.HEALTHY, S.UNHEALTHY), (S.HEALTHY, S.STOPPED), (S.HEALTHY, S.DELETED),
    (S.UNHEALTHY, S.TRANSITIONING), (S.UNHEALTHY, S.STOPPED), (S.UNHEALTHY, S.DELETED),
    (S.FAILED, S.TRANSITIONING), (S.FAILED, S.STOPPED), (S.FAILED, S.DELETED),
    (S.STOPPED, S.TRANSITIONING), (S.STOPPED, S.DELETED),
}
STAYS = {(s, s) for s in S if s is not S.DELETED}


def test_the_states_are_the_ones_the_app_stores():
    assert [s.value for s in S] == ["Transitioning", "Healthy", "Unhealthy", "Failed", "Stopped",
                                    "Deleted"]
    assert es.INITIAL is S.TRANSITIONING


@pytest.mark.parametrize("src,dst", sorted(EXPECTED_MOVES | STAYS))
def test_allowed(src, dst):
    assert can_move(src, dst)
    assert can_move(src.value, dst.value)          # plain strings, as read from the database


@pytest.mark.parametrize("src,dst", [
    (S.DELETED, S.TRANSITIONING), (S.DELETED, S.HEALTHY), (S.DELETED, S.DELETED),
    (S.HEALTHY, S.TRANSITIONING),   # start() on a Healthy endpoint does nothing
    (S.HEALTHY, S.FAILED),          # a service that dies while serving is Unhealthy, not Failed
    (S.STOPPED, S.HEALTHY), (S.STOPPED, S.UNHEALTHY), (S.STOPPED, S.FAILED),
    (S.FAILED, S.HEALTHY), (S.UNHEALTHY, S.HEALTHY), (S.UNHEALTHY, S.FAILED),
])
def test_refused(src, dst):
    assert not can_move(src, dst)
    assert not can_move(src.value, dst.value)


def test_every_pair_matches_the_table():
    for src, dst in itertools.product(S, S):
        assert can_move(src, dst) == ((src, dst) in EXPECTED_MOVES | STAYS), (src, dst)


def test_terminal_and_live():
    assert [s for s in S if s.is_terminal()] == [S.DELETED]
    assert {s for s in S if s.is_live()} == {S.TRANSITIONING, S.HEALTHY}
    for s in S:
        if s.is_terminal():
            assert not any(can_move(s, d) for d in S)
    # start() is offered where the table leads to Transitioning, stop() where it leads to Stopped
    assert es.STARTABLE == {s for s in S
                            if s is not S.TRANSITIONING and can_move(s, S.TRANSITIONING)}
    assert es.STOPPABLE == {s for s in S if s.is_live() or s is S.UNHEALTHY}
    assert all(can_move(s, S.STOPPED) for s in es.STOPPABLE)


def test_string_round_trip():
    for s in S:
        assert S(s.value) is s
        assert s == s.value and str(s) == s.value and f"{s}" == s.value
        assert S(json.loads(json.dumps(s))) is s
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE e (state TEXT)")
    db.executemany("INSERT INTO e VALUES (?)", [(s,) for s in S])
    assert [S(r[0]) for r in db.execute("SELECT state FROM e ORDER BY rowid")] == list(S)


@pytest.mark.parametrize("bad", ["healthy", "Running", "", None, 3])
def test_unknown_state_names_the_valid_ones(bad):
    with pytest.raises(ValueError, match="unknown endpoint state .*expected one of Transitioning, "
                                         "Healthy, Unhealthy, Failed, Stopped, Deleted"):
        S(bad)
    with pytest.raises(ValueError, match="unknown endpoint state"):
        can_move(bad, S.HEALTHY)
    with pytest.raises(ValueError, match="unknown endpoint state"):
        can_move(S.HEALTHY, bad)


def test_the_domain_module_imports_only_the_standard_library():
    import ast
    import sys
    tree = ast.parse(open(es.__file__, encoding="utf-8").read())
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
    assert roots <= set(sys.stdlib_module_names) | {"__future__"}, roots
