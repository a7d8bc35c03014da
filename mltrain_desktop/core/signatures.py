"""Strict keyword arguments for the seed's constructors: a misspelt name fails, an Azure-only one warns.

``@strict_kwargs(ignored=(...))`` on a function that takes ``**kwargs`` last: an unknown keyword
raises TypeError naming it and the nearest valid one; a keyword that exists in Azure ML but means
nothing here is dropped with one warning per name and process.
"""
from __future__ import annotations

import difflib
import functools
import inspect
import warnings

_WARNED: set[tuple[str, str]] = set()


def unknown_keyword_error(where: str, name: str, valid) -> TypeError:
    valid = sorted(v for v in valid if not v.startswith("_"))
    near = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    hint = f"; did you mean {near[0]!r}?" if near else f"; valid arguments: {', '.join(valid)}"
    return TypeError(f"{where}() got an unexpected keyword argument {name!r}{hint}")


def check_kwargs(where: str, given: dict, valid, ignored=()) -> None:
    """Raises for names in ``given`` that are neither valid nor ignored; warns once for ignored ones."""
    for name in given:
        if name in ignored:
            if (where, name) not in _WARNED:
                _WARNED.add((where, name))
                warnings.warn(f"{where}(): {name!r} has no meaning on this machine and is ignored",
                              UserWarning, stacklevel=3)
        elif name not in valid:
            raise unknown_keyword_error(where, name, list(valid) + list(ignored))


def strict_kwargs(ignored=()):
    """Decorates a function whose last parameter is ``**kwargs``: only ``ignored`` names may land there."""
    def wrap(fn):
        sig = inspect.signature(fn)
        valid = [n for n, p in sig.parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
                 and n not in ("self", "cls")]
        where = fn.__qualname__.replace(".__init__", "")

        @functools.wraps(fn)
        def inner(*args, **kwargs):
            extra = {k: v for k, v in kwargs.items() if k not in valid}
            if extra:
                name = type(args[0]).__name__ if fn.__name__ == "__init__" and args else where
                check_kwargs(name, extra, valid, ignored)
            return fn(*args, **{k: v for k, v in kwargs.items() if k in valid})
        return inner
    return wrap
