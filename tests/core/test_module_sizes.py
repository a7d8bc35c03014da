"""Small modules and short functions: a module holds at most 600 lines, a function at most 80
unless a ``# long because: ...`` comment just above its ``def`` says why. Modules are parsed,
never imported."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mltrain_desktop"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
WHY_MARK = "# long because:"

def oversized(source: str) -> tuple[int, list[str]]:
    """(line count, 'name (N lines, line L)' for each function over the limit with no reason)."""
    lines = source.splitlines()
    long_functions = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        length = node.end_lineno - node.lineno + 1
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        above = lines[first - 2].strip() if first >= 2 else ""
        if length > MAX_FUNCTION_LINES and not above.startswith(WHY_MARK):
            long_functions.append(f"{node.name} ({length} lines, line {node.lineno})")
    return len(lines), long_functions


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_and_its_functions_are_small(path):
    rel = str(path.relative_to(PACKAGE))
    n, long_functions = oversized(path.read_text(encoding="utf-8"))
    assert not long_functions, f"{rel}: functions over {MAX_FUNCTION_LINES} lines: {long_functions}"
    assert n <= MAX_MODULE_LINES, f"{rel} has {n} lines (limit {MAX_MODULE_LINES}): split it by what it holds"


def test_the_checker_catches_a_long_function_and_accepts_a_reason():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    n, found = oversized(f"def big():\n{body}\n")
    assert n == MAX_FUNCTION_LINES + 1 and found == [f"big ({MAX_FUNCTION_LINES + 1} lines, line 1)"]
    assert oversized(f"{WHY_MARK} one table of cases\ndef big():\n{body}\n")[1] == []
    assert oversized(f"def small():\n{body[:40]}\n")[1] == []
