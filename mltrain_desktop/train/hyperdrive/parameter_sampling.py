"""The search space and how it is sampled: Random, Grid and Bayesian parameter sampling (standard library only).

A parameter space maps a script argument name ('--batch-size' or 'learning_rate') to a parameter
expression. A child run gets each sampled value as ``--name value`` (a name without a leading dash
gets '--' put in front, as Azure ML does). Which sampler library draws the values is decided in
sampling.py; these classes only say what may be drawn.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from difflib import get_close_matches

from .distributions import Choice, ParameterExpression, QUniform, Uniform, parse_expression

_SPACE_EXAMPLE = "{'--batch-size': choice(16, 32, 64), '--learning-rate': loguniform(-6, -1)}"
_PROPERTIES = ("seed",)


def argument_flag(name: str) -> str:
    """The command-line flag a parameter is passed as: '--lr' stays, 'lr' becomes '--lr'."""
    return name if name.startswith("-") else f"--{name}"


def _check_name(owner: str, name) -> str:
    if not isinstance(name, str) or not name.strip("- "):
        raise ValueError(f"{owner}: parameter name {name!r} must be a non-empty string such as '--batch-size'")
    if name != name.strip() or any(c.isspace() for c in name) or "=" in name:
        raise ValueError(f"{owner}: parameter name {name!r} must not contain spaces or '='; "
                         "use the flag itself, e.g. '--batch-size'")
    return name


def _check_space(owner: str, space, supported: tuple | None, advice: str) -> dict:
    if not isinstance(space, Mapping) or not space:
        raise TypeError(f"{owner} takes a parameter space: a non-empty dict such as {_SPACE_EXAMPLE}; "
                        f"got {space!r}")
    checked: dict[str, ParameterExpression] = {}
    flags: dict[str, str] = {}
    for name, spec in space.items():
        _check_name(owner, name)
        flag = argument_flag(name)
        if flag in flags:
            raise ValueError(f"{owner}: parameters {flags[flag]!r} and {name!r} are both passed as {flag}; "
                             "keep one")
        flags[flag] = name
        expr = parse_expression(spec, where=f"{owner}: parameter {name!r}")
        if supported is not None and type(expr) not in supported:
            allowed = ", ".join(f"{c.name}()" for c in supported)
            raise ValueError(f"{owner} supports only {allowed}; parameter {name!r} is {expr!r}. {advice}")
        checked[name] = expr
    return checked


def _check_properties(owner: str, properties) -> dict:
    if properties is None:
        return {}
    if not isinstance(properties, Mapping):
        raise TypeError(f"{owner}: properties must be a dict such as {{'seed': 42}}; got {properties!r}")
    for key, value in properties.items():
        if key not in _PROPERTIES:
            near = get_close_matches(str(key), _PROPERTIES, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(f"{owner}: unknown property {key!r}{hint} (known: {', '.join(_PROPERTIES)})")
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not 0 <= value < 2 ** 32:
            raise ValueError(f"{owner}: property 'seed' must be an integer in 0 .. 2**32-1, got {value!r}")
    return {k: int(v) for k, v in properties.items()}


class HyperParameterSampling:
    """Base of the three samplings: a checked parameter space plus properties (a 'seed')."""

    sampling_method_name = ""
    supported: tuple | None = None
    advice = ""

    def __init__(self, parameter_space, properties=None):
        owner = type(self).__name__
        self._parameter_space = _check_space(owner, parameter_space, self.supported, self.advice)
        self._properties = _check_properties(owner, properties)

    @property
    def parameter_space(self) -> dict:
        return dict(self._parameter_space)

    @property
    def properties(self) -> dict:
        return dict(self._properties)

    @property
    def seed(self) -> int | None:
        return self._properties.get("seed")

    def flags(self) -> dict:
        """Parameter name -> the flag the child gets it as."""
        return {name: argument_flag(name) for name in self._parameter_space}

    def to_dict(self) -> dict:
        return {"name": self.sampling_method_name,
                "parameter_space": {n: e.to_spec() for n, e in self._parameter_space.items()},
                "properties": self.properties}

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self))

    def __repr__(self) -> str:
        space = ", ".join(f"{n!r}: {e!r}" for n, e in self._parameter_space.items())
        props = f", properties={self._properties!r}" if self._properties else ""
        return f"{type(self).__name__}({{{space}}}{props})"


class RandomParameterSampling(HyperParameterSampling):
    """Every parameter drawn at random from its distribution; any expression is allowed."""

    sampling_method_name = "RANDOM"


class GridParameterSampling(HyperParameterSampling):
    """Every combination of the choice() values, each once."""

    sampling_method_name = "GRID"
    supported = (Choice,)
    advice = ("List the values to try with choice(...), or use RandomParameterSampling for continuous "
              "distributions.")

    @property
    def grid_size(self) -> int:
        return math.prod(len(e.values) for e in self._parameter_space.values())

    def search_space(self) -> dict:
        """Parameter name -> the list of its values (the form Optuna's GridSampler takes)."""
        return {name: list(e.values) for name, e in self._parameter_space.items()}


class BayesianParameterSampling(HyperParameterSampling):
    """Each new point chosen from the results so far (Optuna's TPE); choice, uniform and quniform only."""

    sampling_method_name = "BayesianOptimization"
    supported = (Choice, Uniform, QUniform)
    advice = "Use one of those, or RandomParameterSampling for the other distributions."


_SAMPLINGS = {c.sampling_method_name: c for c in (RandomParameterSampling, GridParameterSampling,
                                                   BayesianParameterSampling)}


def sampling_from_dict(data: Mapping) -> HyperParameterSampling:
    """The inverse of ``HyperParameterSampling.to_dict()``."""
    name = data.get("name") if isinstance(data, Mapping) else None
    cls = _SAMPLINGS.get(name)
    if cls is None:
        raise ValueError(f"unknown sampling {name!r}; known: {', '.join(_SAMPLINGS)}")
    return cls(data.get("parameter_space"), data.get("properties") or None)
