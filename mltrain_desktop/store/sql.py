"""What the repository modules share to build statements: a WHERE clause from optional filters."""
from __future__ import annotations


def where(*conditions: tuple[str, object]) -> tuple[str, list]:
    """(" WHERE a AND b", [args]) from (condition, value) pairs, leaving out those whose value is
    None or False; ("", []) when none is left. A condition holds one ``?`` for its value, or none
    when the value is True (a flag)."""
    kept = [(c, v) for c, v in conditions if v is not None and v is not False]
    if not kept:
        return "", []
    return " WHERE " + " AND ".join(c for c, _v in kept), [v for c, v in kept if "?" in c]
