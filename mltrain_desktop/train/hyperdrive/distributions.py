"""Parameter expressions (choice, randint, uniform, ... qlognormal) with Azure ML SDK v1 meaning.

Each expression knows its *raw domain* (what a sampler draws: a category, an integer range or a
float range, maybe on a log scale) and how a raw draw becomes the value a child run gets:

- ``uniform(a, b)``: a float in [a, b]; ``quniform(a, b, q)``: round(uniform(a, b) / q) * q.
- ``loguniform(a, b)``: exp(uniform(a, b)), so the bounds are exponents of e; the raw draw is taken
  log-uniformly from [e**a, e**b], which is the same distribution.
- ``normal(mu, sigma)``: the raw draw is a quantile u in [0, 1], turned into mu + sigma * Phi^-1(u);
  ``lognormal`` is exp(normal).
- q-variants sample the continuous value, then round to a multiple of q. Where the distribution has
  bounds the multiple is kept inside them (the nearest multiple of q within [a, b]), so every value
  is a multiple of q inside the bounds; an int q gives int values.

Standard library only: nothing here imports a sampler library.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from decimal import Decimal
from difflib import get_close_matches
from statistics import NormalDist

_EPS = 1e-9          # slack when asking whether a float is a multiple of q or inside a bound
_U_MIN = 1e-12       # a quantile of exactly 0 or 1 has no normal value; keep inside (0, 1)
_EXP_MAX = 709.0     # math.exp overflows a float above ~709.78


@dataclass(frozen=True)
class RawDomain:
    """What a sampler draws for one parameter: 'categorical' (choices), 'int' or 'float' in [low, high]."""

    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple = ()


class ParameterExpression:
    """One hyperparameter's distribution. Subclasses set ``name`` and implement the raw mapping."""

    name = ""

    def __init__(self, *args):
        self._args = tuple(args)

    @property
    def args(self) -> tuple:
        return self._args

    def to_spec(self) -> list:
        """Azure SDK v1's list form, e.g. ['uniform', [0.001, 0.1]] or ['choice', [[16, 32]]]."""
        return [self.name, list(self._args)]

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(repr(a) for a in self._args)})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other._args == self._args

    def __hash__(self) -> int:
        return hash((self.name, repr(self._args)))

    def raw_domain(self) -> RawDomain:
        raise NotImplementedError

    def from_raw(self, raw):
        """A sampler's raw draw -> the value the child run gets."""
        raise NotImplementedError

    def to_raw(self, value):
        """A value this distribution can give -> the raw draw that gives it (for warm starts)."""
        return value

    def contains(self, value) -> bool:
        """Whether ``value`` is one this distribution can give."""
        raise NotImplementedError

    def coerce(self, value):
        """A value read back as text (tags, a form) -> a number when the text is one; else unchanged."""
        if isinstance(value, str):
            for convert in (int, float):
                try:
                    return convert(value.strip())
                except ValueError:
                    continue
        return value


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_multiple(value, q) -> bool:
    ratio = value / q
    return abs(ratio - round(ratio)) <= 1e-6 * max(1.0, abs(ratio)) ** 0.5


def _decimals(q) -> int:
    return max(0, -Decimal(repr(float(q))).as_tuple().exponent)


def _multiple_range(q, low=None, high=None) -> tuple:
    k_low = None if low is None else math.ceil(low / q - _EPS)
    k_high = None if high is None else math.floor(high / q + _EPS)
    return k_low, k_high


def _quantize(x: float, q, low=None, high=None):
    """round(x / q) * q, kept to the multiples of q within [low, high]; an int q gives an int."""
    k = round(x / q)
    k_low, k_high = _multiple_range(q, low, high)
    if k_low is not None:
        k = max(k, k_low)
    if k_high is not None:
        k = min(k, k_high)
    if isinstance(q, int):
        return k * q
    return round(k * q, _decimals(q))


def _within(value, low, high) -> bool:
    tol = _EPS * max(1.0, abs(low), abs(high))
    return low - tol <= value <= high + tol


def _clamp(value, low, high):
    return min(max(value, low), high)


# ---- argument checking --------------------------------------------------------------------------

def _count(n: int) -> str:
    return f"{n} argument" if n == 1 else f"{n} arguments"


def _bind(params: tuple, usage: str, example: str, args: tuple, kwargs: dict) -> list:
    """Positional and keyword arguments -> values in ``params`` order, or a TypeError showing the call."""
    fname = usage.split()[0]
    for key in kwargs:
        if key not in params:
            raise TypeError(f"{fname}() got an unexpected keyword argument {key!r}; {usage}, e.g. {example}")
    given = len(args) + len(kwargs)
    doubled = [p for p in params[:len(args)] if p in kwargs]
    if doubled:
        raise TypeError(f"{fname}() got {doubled[0]!r} twice; {usage}, e.g. {example}")
    if given != len(params):
        raise TypeError(f"{usage}, got {_count(given)}; e.g. {example}")
    return list(args) + [kwargs[p] for p in params[len(args):]]


def _number(fname: str, pname: str, value, usage: str):
    if not _is_real(value):
        raise TypeError(f"{fname}: {pname} must be a number, got {value!r} ({type(value).__name__}); {usage}")
    if not math.isfinite(value):
        raise ValueError(f"{fname}: {pname} must be a finite number, got {value!r}")
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def _positive(fname: str, pname: str, value, usage: str):
    value = _number(fname, pname, value, usage)
    if value <= 0:
        raise ValueError(f"{fname}: {pname} must be greater than 0, got {value!r}")
    return value


def _ordered(fname: str, low, high):
    if not low < high:
        raise ValueError(f"{fname}: min_value ({low!r}) must be less than max_value ({high!r})")


def _exp(fname: str, exponent: float) -> float:
    if exponent > _EXP_MAX:
        raise ValueError(f"{fname}: the bounds are exponents of e and e**{exponent!r} overflows a float; "
                         f"loguniform(-6, -1) gives values between e**-6 and e**-1")
    return math.exp(exponent)


def _need_multiple(fname: str, q, low, high, shown: str):
    k_low, k_high = _multiple_range(q, low, high)
    if k_low > k_high:
        raise ValueError(f"{fname}: no multiple of q={q!r} lies within {shown}; use a smaller q or wider bounds")


# ---- the distributions --------------------------------------------------------------------------

class Choice(ParameterExpression):
    name = "choice"
    _USAGE = "choice takes the values to choose from"

    def __init__(self, values):
        super().__init__(*values)
        self.values = tuple(values)

    def to_spec(self) -> list:
        return [self.name, [list(self.values)]]

    def raw_domain(self) -> RawDomain:
        return RawDomain("categorical", choices=self.values)

    def from_raw(self, raw):
        return raw

    def to_raw(self, value):
        value = self.coerce(value)
        if not self.contains(value):
            raise ValueError(f"{value!r} is not one of {self!r}")
        return next(v for v in self.values if type(v) is type(value) and v == value)

    def contains(self, value) -> bool:
        return any(type(v) is type(value) and v == value for v in self.values)

    def coerce(self, value):
        if isinstance(value, str) and not self.contains(value):
            matches = [v for v in self.values if str(v) == value.strip()]
            if len(matches) == 1:
                return matches[0]
        return value


class RandInt(ParameterExpression):
    name = "randint"

    def __init__(self, upper: int):
        super().__init__(upper)
        self.upper = upper

    def raw_domain(self) -> RawDomain:
        return RawDomain("int", 0, self.upper - 1)

    def from_raw(self, raw):
        return int(_clamp(int(raw), 0, self.upper - 1))

    def contains(self, value) -> bool:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 <= value < self.upper

    def to_raw(self, value):
        if not self.contains(value):
            raise ValueError(f"{value!r} is not an integer in 0..{self.upper - 1} ({self!r})")
        return int(value)


class Uniform(ParameterExpression):
    name = "uniform"

    def __init__(self, min_value, max_value):
        super().__init__(min_value, max_value)
        self.min_value, self.max_value = min_value, max_value

    def raw_domain(self) -> RawDomain:
        return RawDomain("float", self.min_value, self.max_value)

    def from_raw(self, raw):
        return _clamp(float(raw), self.min_value, self.max_value)

    def contains(self, value) -> bool:
        return _is_real(value) and _within(value, self.min_value, self.max_value)

    def to_raw(self, value):
        if not self.contains(value):
            raise ValueError(f"{value!r} is outside {self!r}")
        return _clamp(float(value), self.min_value, self.max_value)


class QUniform(Uniform):
    name = "quniform"

    def __init__(self, min_value, max_value, q):
        ParameterExpression.__init__(self, min_value, max_value, q)
        self.min_value, self.max_value, self.q = min_value, max_value, q

    def from_raw(self, raw):
        return _quantize(float(raw), self.q, self.min_value, self.max_value)

    def contains(self, value) -> bool:
        return super().contains(value) and _is_multiple(value, self.q)


class LogUniform(ParameterExpression):
    name = "loguniform"

    def __init__(self, min_value, max_value):
        super().__init__(min_value, max_value)
        self.min_value, self.max_value = min_value, max_value
        self.low, self.high = _exp(self.name, min_value), _exp(self.name, max_value)

    def raw_domain(self) -> RawDomain:
        return RawDomain("float", self.low, self.high, log=True)

    def from_raw(self, raw):
        return _clamp(float(raw), self.low, self.high)

    def contains(self, value) -> bool:
        return _is_real(value) and _within(value, self.low, self.high)

    def to_raw(self, value):
        if not self.contains(value):
            raise ValueError(f"{value!r} is outside [e**{self.min_value!r}, e**{self.max_value!r}] ({self!r})")
        return _clamp(float(value), self.low, self.high)


class QLogUniform(LogUniform):
    name = "qloguniform"

    def __init__(self, min_value, max_value, q):
        ParameterExpression.__init__(self, min_value, max_value, q)
        self.min_value, self.max_value, self.q = min_value, max_value, q
        self.low, self.high = _exp(self.name, min_value), _exp(self.name, max_value)

    def from_raw(self, raw):
        return _quantize(float(raw), self.q, self.low, self.high)

    def contains(self, value) -> bool:
        return super().contains(value) and _is_multiple(value, self.q)


class Normal(ParameterExpression):
    name = "normal"

    def __init__(self, mu, sigma):
        super().__init__(mu, sigma)
        self.mu, self.sigma = mu, sigma
        self._dist = NormalDist(mu, sigma)

    def raw_domain(self) -> RawDomain:
        return RawDomain("float", 0.0, 1.0)

    def _normal(self, raw) -> float:
        return self._dist.inv_cdf(_clamp(float(raw), _U_MIN, 1.0 - _U_MIN))

    def from_raw(self, raw):
        return self._normal(raw)

    def contains(self, value) -> bool:
        return _is_real(value) and math.isfinite(value)

    def to_raw(self, value):
        if not self.contains(value):
            raise ValueError(f"{value!r} is not a finite number ({self!r})")
        return self._dist.cdf(float(value))


class QNormal(Normal):
    name = "qnormal"

    def __init__(self, mu, sigma, q):
        super().__init__(mu, sigma)
        ParameterExpression.__init__(self, mu, sigma, q)
        self.q = q

    def from_raw(self, raw):
        return _quantize(self._normal(raw), self.q)

    def contains(self, value) -> bool:
        return super().contains(value) and _is_multiple(value, self.q)


class LogNormal(Normal):
    name = "lognormal"

    def from_raw(self, raw):
        return math.exp(self._normal(raw))

    def contains(self, value) -> bool:
        return _is_real(value) and 0 < value < math.inf

    def to_raw(self, value):
        if not self.contains(value):
            raise ValueError(f"{value!r} is not a positive number ({self!r})")
        return self._dist.cdf(math.log(value))


class QLogNormal(LogNormal):
    name = "qlognormal"

    def __init__(self, mu, sigma, q):
        super().__init__(mu, sigma)
        ParameterExpression.__init__(self, mu, sigma, q)
        self.q = q

    def from_raw(self, raw):
        return _quantize(math.exp(self._normal(raw)), self.q, low=0)

    def contains(self, value) -> bool:
        return _is_real(value) and 0 <= value < math.inf and _is_multiple(value, self.q)

    def to_raw(self, value):
        if not self.contains(value):
            raise ValueError(f"{value!r} is not a non-negative multiple of {self.q!r} ({self!r})")
        return 0.0 if value <= 0 else self._dist.cdf(math.log(value))


# ---- the public functions (Azure SDK v1 names) --------------------------------------------------

_CHOICE_TYPES = (str, int, float, bool)


def choice(*options) -> Choice:
    """One of the given values: choice(16, 32, 64) or choice([16, 32, 64]) (also a range or tuple)."""
    if len(options) == 1 and isinstance(options[0], (list, tuple, range)):
        options = tuple(options[0])
    if not options:
        raise TypeError("choice takes the values to choose from, got none; e.g. choice(16, 32, 64) "
                        "or choice([16, 32, 64])")
    values = []
    for value in options:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = int(value)
        elif _is_real(value):
            value = float(value)
        if not isinstance(value, _CHOICE_TYPES):
            raise TypeError(f"choice: {value!r} is a {type(value).__name__}; a choice must be a string, a number "
                            "or a bool (it becomes a script argument)")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"choice: {value!r} is not a finite number")
        twin = next((v for v in values if v == value), None)
        if twin is not None:
            raise ValueError(f"choice: the values must be distinct; {twin!r} and {value!r} are equal")
        values.append(value)
    return Choice(values)


def randint(*args, **kwargs) -> RandInt:
    """An integer in 0 .. upper-1."""
    usage = "randint takes (upper): an integer >= 1, giving 0 .. upper-1"
    (upper,) = _bind(("upper",), usage, "randint(10)", args, kwargs)
    if not isinstance(upper, numbers.Integral) or isinstance(upper, bool):
        raise TypeError(f"randint: upper must be an integer, got {upper!r} ({type(upper).__name__}); {usage}")
    if upper < 1:
        raise ValueError(f"randint: upper must be at least 1, got {upper!r}; {usage}")
    return RandInt(int(upper))


def uniform(*args, **kwargs) -> Uniform:
    """A float uniformly in [min_value, max_value]."""
    usage = "uniform takes (min_value, max_value)"
    low, high = (_number("uniform", p, v, usage) for p, v in
                 zip(("min_value", "max_value"), _bind(("min_value", "max_value"), usage, "uniform(0.05, 0.1)",
                                                       args, kwargs)))
    _ordered("uniform", low, high)
    return Uniform(low, high)


def quniform(*args, **kwargs) -> QUniform:
    """round(uniform(min_value, max_value) / q) * q."""
    usage = "quniform takes (min_value, max_value, q)"
    low, high, q = _bind(("min_value", "max_value", "q"), usage, "quniform(16, 128, 16)", args, kwargs)
    low, high = _number("quniform", "min_value", low, usage), _number("quniform", "max_value", high, usage)
    q = _positive("quniform", "q", q, usage)
    _ordered("quniform", low, high)
    _need_multiple("quniform", q, low, high, f"[{low!r}, {high!r}]")
    return QUniform(low, high, q)


def loguniform(*args, **kwargs) -> LogUniform:
    """exp(uniform(min_value, max_value)): the bounds are exponents of e."""
    usage = "loguniform takes (min_value, max_value) as exponents of e"
    bound = _bind(("min_value", "max_value"), usage, "loguniform(-6, -1)", args, kwargs)
    low, high = (_number("loguniform", p, v, usage) for p, v in zip(("min_value", "max_value"), bound))
    _ordered("loguniform", low, high)
    return LogUniform(low, high)


def qloguniform(*args, **kwargs) -> QLogUniform:
    """round(exp(uniform(min_value, max_value)) / q) * q."""
    usage = "qloguniform takes (min_value, max_value, q), the bounds as exponents of e"
    low, high, q = _bind(("min_value", "max_value", "q"), usage, "qloguniform(0, 5, 1)", args, kwargs)
    low, high = _number("qloguniform", "min_value", low, usage), _number("qloguniform", "max_value", high, usage)
    q = _positive("qloguniform", "q", q, usage)
    _ordered("qloguniform", low, high)
    e_low, e_high = _exp("qloguniform", low), _exp("qloguniform", high)
    _need_multiple("qloguniform", q, e_low, e_high, f"[e**{low!r}, e**{high!r}] = [{e_low:.4g}, {e_high:.4g}]")
    return QLogUniform(low, high, q)


def _normal_args(fname: str, usage: str, example: str, args, kwargs, with_q: bool) -> list:
    params = ("mu", "sigma", "q") if with_q else ("mu", "sigma")
    values = _bind(params, usage, example, args, kwargs)
    out = [_number(fname, "mu", values[0], usage), _positive(fname, "sigma", values[1], usage)]
    if with_q:
        out.append(_positive(fname, "q", values[2], usage))
    return out


def normal(*args, **kwargs) -> Normal:
    """A float from the normal distribution with mean mu and standard deviation sigma."""
    return Normal(*_normal_args("normal", "normal takes (mu, sigma)", "normal(10, 3)", args, kwargs, False))


def qnormal(*args, **kwargs) -> QNormal:
    """round(normal(mu, sigma) / q) * q."""
    usage = "qnormal takes (mu, sigma, q)"
    return QNormal(*_normal_args("qnormal", usage, "qnormal(64, 16, 8)", args, kwargs, True))


def _lognormal_fits(fname: str, mu: float, sigma: float):
    _exp(fname, mu + 7.1 * sigma)


def lognormal(*args, **kwargs) -> LogNormal:
    """exp(normal(mu, sigma))."""
    usage = "lognormal takes (mu, sigma) of the normal whose exp is returned"
    mu, sigma = _normal_args("lognormal", usage, "lognormal(0, 1)", args, kwargs, False)
    _lognormal_fits("lognormal", mu, sigma)
    return LogNormal(mu, sigma)


def qlognormal(*args, **kwargs) -> QLogNormal:
    """round(exp(normal(mu, sigma)) / q) * q."""
    usage = "qlognormal takes (mu, sigma, q) of the normal whose exp is rounded"
    mu, sigma, q = _normal_args("qlognormal", usage, "qlognormal(3, 1, 1)", args, kwargs, True)
    _lognormal_fits("qlognormal", mu, sigma)
    return QLogNormal(mu, sigma, q)


EXPRESSIONS = {f.__name__: f for f in (choice, randint, uniform, quniform, loguniform, qloguniform,
                                        normal, qnormal, lognormal, qlognormal)}


def parse_expression(spec, where: str = "parameter") -> ParameterExpression:
    """An expression, or Azure's list form (['uniform', [0, 1]], ['choice', [[1, 2]]]) -> an expression."""
    if isinstance(spec, ParameterExpression):
        return spec
    if not (isinstance(spec, (list, tuple)) and len(spec) == 2 and isinstance(spec[0], str)
            and isinstance(spec[1], (list, tuple))):
        raise TypeError(f"{where}: {spec!r} is not a parameter expression; use one such as uniform(0.001, 0.1), "
                        f"choice(16, 32, 64) or loguniform(-6, -1) (known: {', '.join(EXPRESSIONS)})")
    name, args = spec
    factory = EXPRESSIONS.get(name)
    if factory is None:
        near = get_close_matches(name, list(EXPRESSIONS), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"{where}: unknown distribution {name!r}{hint} (known: {', '.join(EXPRESSIONS)})")
    if name == "choice":
        return choice(*args)
    return factory(*args)
