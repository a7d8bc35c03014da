"""SweepSampler: each child's hyperparameters drawn through Optuna's ask/tell, kept in a journal file.

Random -> ``RandomSampler``, Grid -> ``GridSampler``, Bayesian -> ``TPESampler`` (constant liar on,
so children running at the same time are not given the same point). The sampler's state lives in
``optuna-journal.log`` inside the folder the caller gives (the parent run's folder) through Optuna's
``JournalStorage``; no SQL database is involved. A new SweepSampler on the same folder continues the
sweep: trial numbers go on and a grid does not repeat combinations.

Reproducible with a seed, also across a restart: each trial gets a sampler seeded from (sweep seed,
trial number), so trial 5 draws the same values whether or not the process was restarted before it.

Values: Optuna keeps the *raw* draw (distributions.py: a float before rounding to q, a quantile for
normal); the value the child gets is stored next to it in the trial's user attribute 'hyperparameters'.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import random
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from optuna.trial import TrialState, create_trial

from .distributions import ParameterExpression
from .goal import PrimaryMetricGoal, as_goal
from .parameter_sampling import GridParameterSampling, HyperParameterSampling, RandomParameterSampling

JOURNAL_FILE = "optuna-journal.log"
STUDY_NAME = "hyperdrive"

COMPLETED, FAILED, CANCELED, EARLY_TERMINATED, RUNNING = (
    "Completed", "Failed", "Canceled", "EarlyTerminated", "Running")
OUTCOMES = (COMPLETED, FAILED, CANCELED, EARLY_TERMINATED)

_PARAMS, _OUTCOME, _SEEDED, _NOTE = "hyperparameters", "outcome", "seeded_from", "note"
_GRID_WARM = "grid_warm_start"


class SweepExhausted(Exception):
    """ask() found nothing left to try (every grid combination has been handed out)."""


@dataclass(frozen=True)
class TrialRecord:
    number: int
    params: dict
    state: str
    value: float | None
    seeded_from: str | bool | None = None


@dataclass
class SeedReport:
    seeded: int = 0
    already: int = 0
    skipped: list = field(default_factory=list)


def optuna_distribution(expr: ParameterExpression):
    """The Optuna distribution of an expression's raw draw."""
    raw = expr.raw_domain()
    if raw.kind == "categorical":
        return CategoricalDistribution(list(raw.choices))
    if raw.kind == "int":
        return IntDistribution(int(raw.low), int(raw.high))
    return FloatDistribution(float(raw.low), float(raw.high), log=raw.log)


def journal_storage(storage_dir) -> JournalStorage:
    folder = Path(storage_dir)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"sweep storage {folder} is a file; give the parent run's folder")
    folder.mkdir(parents=True, exist_ok=True)
    path = str(folder / JOURNAL_FILE)
    lock = JournalFileOpenLock(path) if os.name == "nt" else None  # symlinks need privileges on Windows
    return JournalStorage(JournalFileBackend(path, lock_obj=lock))


def _derive_seed(seed: int, number: int) -> int:
    return random.Random(f"{seed}:{number}").randrange(2 ** 32)


def _metric(value) -> float | None:
    """A usable primary-metric value, or None for missing, NaN, infinite, bool or non-numeric."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _outcome(state) -> str:
    if isinstance(state, TrialState):
        state = {TrialState.COMPLETE: COMPLETED, TrialState.PRUNED: EARLY_TERMINATED,
                 TrialState.FAIL: FAILED}.get(state, state.name)
    for name in OUTCOMES:
        if isinstance(state, str) and state.replace("_", "").lower() == name.lower():
            return name
    raise ValueError(f"state must be one of {', '.join(OUTCOMES)}; got {state!r}")


def _unpack(item) -> tuple:
    if isinstance(item, (list, tuple)) and len(item) in (2, 3):
        return item[0], item[1], (item[2] if len(item) == 3 else None)
    raise TypeError(f"a warm-start trial is (params, value) or (params, value, key); got {item!r}")


class SweepSampler:
    """ask() -> (trial number, hyperparameters); tell() the outcome; seed_trials() for a warm start."""

    def __init__(self, sampling: HyperParameterSampling, storage_dir=None, seed: int | None = None,
                 goal=PrimaryMetricGoal.MAXIMIZE):
        if not isinstance(sampling, HyperParameterSampling):
            raise TypeError("sampling must be RandomParameterSampling, GridParameterSampling or "
                            f"BayesianParameterSampling; got {sampling!r}")
        self.sampling, self.goal = sampling, as_goal(goal)
        self.journal_path = None if storage_dir is None else Path(storage_dir) / JOURNAL_FILE
        storage = optuna.storages.InMemoryStorage() if storage_dir is None else journal_storage(storage_dir)
        direction = "maximize" if self.goal is PrimaryMetricGoal.MAXIMIZE else "minimize"
        if STUDY_NAME in optuna.study.get_all_study_names(storage):  # load without writing to the journal
            self._study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
        else:
            self._study = optuna.create_study(storage=storage, study_name=STUDY_NAME, direction=direction)
        self.seed = self._claim(seed if seed is not None else sampling.seed)
        self._space = sampling.parameter_space
        self._dists = {name: optuna_distribution(e) for name, e in self._space.items()}
        self._grid = (optuna.samplers.GridSampler(sampling.search_space(), seed=self.seed)
                      if isinstance(sampling, GridParameterSampling) else None)

    def _claim(self, seed: int | None) -> int:
        """Record this sweep's identity in a new journal, or check it matches the one already there."""
        attrs = self._study.user_attrs
        mine = {"sampling": self.sampling.to_dict(), "goal": self.goal.value}
        if "sampling" not in attrs:
            chosen = seed if seed is not None else random.SystemRandom().randrange(2 ** 31)
            for key, value in {**mine, "seed": chosen}.items():
                self._study.set_user_attr(key, value)
            return chosen
        where = self.journal_path or "this study"
        for key, value in mine.items():
            if attrs.get(key) != value:
                raise ValueError(f"the sweep journal {where} belongs to another sweep (its {key} is "
                                 f"{attrs.get(key)!r}, this one's is {value!r}); give a new folder, nothing "
                                 "in the existing journal was changed")
        if seed is not None and seed != attrs["seed"]:
            raise ValueError(f"the sweep journal {where} was started with seed {attrs['seed']}; pass that seed "
                             "or None to continue it")
        return attrs["seed"]

    @property
    def exhausted(self) -> bool:
        if self._grid is None:
            return False
        return len(self._study.get_trials(deepcopy=False)) >= self.sampling.grid_size

    def _sampler_for(self, number: int):
        if self._grid is not None:
            return self._grid
        trial_seed = _derive_seed(self.seed, number)
        if isinstance(self.sampling, RandomParameterSampling):
            return optuna.samplers.RandomSampler(seed=trial_seed)
        with warnings.catch_warnings():  # constant_liar is marked experimental; optuna is pinned below 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=trial_seed, constant_liar=True)

    def ask(self) -> tuple[int, dict]:
        """The next trial: its number and {parameter name: value}. SweepExhausted when a grid is done."""
        while True:
            if self.exhausted:
                raise SweepExhausted(f"all {self.sampling.grid_size} grid combinations have been handed out")
            self._study.sampler = self._sampler_for(len(self._study.get_trials(deepcopy=False)))
            trial = self._study.ask(self._dists)
            params = {name: e.from_raw(trial.params[name]) for name, e in self._space.items()}
            trial.set_user_attr(_PARAMS, params)
            if not self._copy_grid_warm_start(trial, params):
                return trial.number, params

    def _copy_grid_warm_start(self, trial, params: dict) -> bool:
        """A grid combination an earlier sweep already ran is completed from its result, not run again."""
        if self._grid is None:
            return False
        known = self._study.user_attrs.get(_GRID_WARM, {}).get(_combo_key(params))
        if known is None:
            return False
        trial.set_user_attr(_SEEDED, known["key"] if known["key"] is not None else True)
        trial.set_user_attr(_OUTCOME, COMPLETED)
        self._tell(trial, known["value"])
        return True

    def _tell(self, trial, value=None, state=None) -> None:
        # GridSampler.after_trial calls Study.stop(), which Optuna allows only inside optimize(). No
        # sampler here needs after_trial, so the tell goes through one whose after_trial does nothing.
        self._study.sampler = optuna.samplers.RandomSampler()
        self._study.tell(trial, value, state=state)

    def _running_trial(self, number: int):
        for frozen in self._study.get_trials(deepcopy=False):
            if frozen.number == number:
                if frozen.state != TrialState.RUNNING:
                    told = frozen.user_attrs.get(_OUTCOME, frozen.state.name)
                    raise ValueError(f"trial {number} was already told ({told}); a trial is told once")
                # Optuna's Trial handle for an existing trial (also one asked before a restart).
                return optuna.trial.Trial(self._study, frozen._trial_id)
        raise ValueError(f"no trial {number} in this sweep (it has {len(self._study.trials)} trials)")

    def tell(self, trial_number: int, value=None, state=COMPLETED, interval: int | None = None) -> None:
        """Record how a trial ended. A Completed trial without a numeric metric is kept as failed, with why."""
        outcome = _outcome(state)
        live = self._running_trial(trial_number)
        live.set_user_attr(_OUTCOME, outcome)
        number = _metric(value)
        if outcome == COMPLETED and number is not None:
            self._tell(live, number)
            return
        if outcome == COMPLETED:
            live.set_user_attr(_NOTE, f"no numeric primary metric (got {value!r})")
        if outcome == EARLY_TERMINATED:
            if number is not None:
                live.report(number, int(interval or 0))
            self._tell(live, state=TrialState.PRUNED)
            return
        self._tell(live, state=TrialState.FAIL)

    def _fit(self, params) -> tuple[dict, dict]:
        """Warm-start params -> (raw draws, values), or ValueError saying why they do not fit this space."""
        if not isinstance(params, Mapping):
            raise ValueError(f"params must be a dict of parameter name -> value; got {params!r}")
        flags = self.sampling.flags()
        known = set(self._space) | set(flags.values())
        missing = [n for n in self._space if n not in params and flags[n] not in params]
        extra = [k for k in params if k not in known]
        if missing or extra:
            raise ValueError(f"the parameters differ from this sweep's space (missing: {missing}, not in the "
                             f"space: {extra})")
        raw, values = {}, {}
        for name, expr in self._space.items():
            value = expr.coerce(params[name] if name in params else params[flags[name]])
            if not expr.contains(value):
                raise ValueError(f"{name}={value!r} is not a value of {expr!r}")
            raw[name], values[name] = expr.to_raw(value), value
        return raw, values

    def _seeded_keys(self) -> set:
        keys = {t.user_attrs.get(_SEEDED) for t in self._study.get_trials(deepcopy=False)}
        keys |= {v["key"] for v in self._study.user_attrs.get(_GRID_WARM, {}).values()}
        return {k for k in keys if isinstance(k, str)}

    def seed_trials(self, trials) -> SeedReport:
        """Warm start from earlier results: (params, value) or (params, value, key) each.

        A key (e.g. the earlier child's run id) makes seeding idempotent: a key already seeded is skipped,
        so a restarted driver may seed again. Trials that do not fit this space, or have no numeric value,
        are skipped and listed with the reason."""
        report, seen = SeedReport(), self._seeded_keys()
        grid_warm = dict(self._study.user_attrs.get(_GRID_WARM, {}))
        for item in trials:
            params, value, key = _unpack(item)
            if key is not None and key in seen:
                report.already += 1
                continue
            number = _metric(value)
            try:
                raw, values = self._fit(params)
                if number is None:
                    raise ValueError(f"no numeric primary metric (got {value!r})")
            except ValueError as exc:
                report.skipped.append((params, str(exc)))
                continue
            if self._grid is not None:
                grid_warm[_combo_key(values)] = {"value": number, "key": key}
            else:
                attrs = {_PARAMS: values, _SEEDED: key if key is not None else True, _OUTCOME: COMPLETED}
                self._study.add_trial(create_trial(value=number, params=raw, distributions=self._dists,
                                                   user_attrs=attrs))
            if key is not None:
                seen.add(key)
            report.seeded += 1
        if self._grid is not None and report.seeded:
            self._study.set_user_attr(_GRID_WARM, grid_warm)
        return report

    def trials(self) -> list[TrialRecord]:
        """Every trial in the journal, in number order (seeded ones included, marked by seeded_from)."""
        out = []
        for t in self._study.get_trials(deepcopy=False):
            params = t.user_attrs.get(_PARAMS)
            if params is None:
                params = {n: e.from_raw(t.params[n]) for n, e in self._space.items() if n in t.params}
            state, value = RUNNING, None
            if t.state != TrialState.RUNNING:
                state = t.user_attrs.get(_OUTCOME) or _outcome(t.state)
            if t.state == TrialState.COMPLETE:
                value = t.value
            elif t.state == TrialState.PRUNED and t.last_step is not None:
                value = t.intermediate_values[t.last_step]
            out.append(TrialRecord(t.number, dict(params), state, value, t.user_attrs.get(_SEEDED)))
        return out

    def running(self) -> list[TrialRecord]:
        """Trials asked but not told: after a restart, the driver matches these to its children."""
        return [t for t in self.trials() if t.state == RUNNING]


def _combo_key(values: Mapping) -> str:
    return json.dumps([[k, values[k]] for k in sorted(values)])
