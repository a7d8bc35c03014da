"""SQL lives only in the store: no module outside ``mltrain_desktop/store`` runs a statement or
holds SQL text. Modules are parsed (never imported): a call to ``.execute``/``.executemany``/
``.executescript`` on anything, or a string constant (f-string parts included) that reads as a
statement, counts as SQL."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mltrain_desktop"

EXECUTE_METHODS = {"execute", "executemany", "executescript"}
SQL_TEXT = re.compile(
    r"\bSELECT\b[\s\S]*?\bFROM\b"
    r"|\bINSERT\s+(?:OR\s+[A-Z]+\s+)?INTO\b"
    r"|\bUPDATE\s+\w+\s+SET\b"
    r"|\bDELETE\s+FROM\b"
    r"|\bREPLACE\s+INTO\b"
    r"|\bPRAGMA\s+\w+"
    r"|\bBEGIN\s+(?:IMMEDIATE|EXCLUSIVE|DEFERRED|TRANSACTION)\b"
    r"|\bCREATE\s+(?:TABLE|INDEX|VIEW|TRIGGER)\b")

def sql_in(source: str, filename: str = "<module>") -> list[str]:
    """Where ``source`` runs or spells SQL: 'line N: what' for each place."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in EXECUTE_METHODS):
            found.append(f"line {node.lineno}: .{node.func.attr}(...) call")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = SQL_TEXT.search(node.value)
            if match:
                found.append(f"line {node.lineno}: SQL text {match.group(0)[:60]!r}")
    return found


def product_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "store" not in p.relative_to(PACKAGE).parts[:1])


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def test_no_module_outside_the_store_holds_sql():
    offenders = {}
    for path in product_modules():
        places = sql_in(path.read_text(encoding="utf-8"), str(path))
        if places:
            offenders[_rel(path)] = places
    assert not offenders, ("SQL outside mltrain_desktop/store (move it into a store repository function): "
                           + "; ".join(f"{m}: {', '.join(p)}" for m, p in offenders.items()))


def test_the_whole_package_is_scanned():
    scanned = {_rel(p) for p in product_modules()}
    for expected in ("gui/bridge.py", "gui/views/endpoint_tasks.py", "gui/dialogs/compute_dialog.py",
                     "cli/__init__.py", "app/queries.py", "core/runs.py", "engine/supervisor.py",
                     "engine/local_env.py"):
        assert expected in scanned
    assert not [m for m in scanned if m.startswith("store/")]


@pytest.mark.parametrize("source", [
    "def f(ws):\n    return ws.db.execute('select 1').fetchone()\n",
    "def f(conn, rows):\n    conn.executemany(q, rows)\n",
    "Q = 'SELECT name FROM models WHERE id=?'\n",
    "def f(t):\n    return f'SELECT COUNT(*) FROM {t}'\n",
    "Q = ('INSERT OR IGNORE INTO experiments (name) '\n     'VALUES (?)')\n",
    "Q = 'UPDATE runs SET status=? WHERE id=?'\n",
    "Q = 'DELETE FROM runs WHERE id=?'\n",
    "Q = 'PRAGMA data_version'\n",
    "Q = 'BEGIN IMMEDIATE'\n",
])
def test_sql_is_recognised(source):
    assert sql_in(source)


@pytest.mark.parametrize("source", [
    "'''Select a run from the list, then press Cancel.'''\n",
    "METHOD = 'DELETE'\n",
    "def f(run):\n    return run.get_status() == 'Completed'\n",
    "def f(x):\n    return x.exec_run(['ls'])\n",
])
def test_prose_and_http_verbs_are_not_sql(source):
    assert not sql_in(source)
