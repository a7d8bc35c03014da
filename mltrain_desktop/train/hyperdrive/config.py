"""HyperDriveConfig: a sweep's definition, checked as Azure ML SDK v1 checks it; SweepSettings, its JSON form.

A sweep driver gets everything it needs from these two: ``SweepSettings.to_dict()`` is what it stores
in the parent run's folder and reads back after a restart (``SweepSettings.from_dict``), the sampler
comes from ``settings.sampler(folder)``, the early-stop decisions from ``settings.decide(table)``, and a
child's script arguments from ``settings.child_arguments(base_arguments, params)``: the fixed
arguments followed by ``--name value`` for each sampled parameter.
"""
from __future__ import annotations

import copy
import math
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches

from ...core.errors import UserErrorException
from ...core.run_spec import normalize_arguments
from ...core.script_run_config import ScriptRunConfig
from ..estimator import Estimator
from .goal import PrimaryMetricGoal, as_goal
from .parameter_sampling import (BayesianParameterSampling, GridParameterSampling, HyperParameterSampling,
                                 sampling_from_dict)
from .policies import EarlyTerminationPolicy, NoTerminationPolicy, policy_from_dict

MAX_TOTAL_RUNS = 1000
MAX_DURATION_MINUTES = 10080
MAX_RESUME_PARENTS = 5
_BAYESIAN_RUNS_PER_PARAMETER = 20
_BAYESIAN_MAX_CONCURRENT = 20


def _arg_text(value) -> str:
    return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)


@dataclass
class SweepSettings:
    """Everything about a sweep except what each child runs (the run_config): plain data, JSON-able."""

    sampling: HyperParameterSampling
    primary_metric_name: str
    primary_metric_goal: PrimaryMetricGoal
    max_total_runs: int
    max_concurrent_runs: int
    max_duration_minutes: float = MAX_DURATION_MINUTES
    policy: EarlyTerminationPolicy = field(default_factory=NoTerminationPolicy)
    resume_from: list = field(default_factory=list)
    resume_child_runs: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"sampling": self.sampling.to_dict(), "policy": self.policy.to_dict(),
                "primary_metric": {"name": self.primary_metric_name, "goal": self.primary_metric_goal.value},
                "max_total_runs": self.max_total_runs, "max_concurrent_runs": self.max_concurrent_runs,
                "max_duration_minutes": self.max_duration_minutes, "resume_from": list(self.resume_from),
                "resume_child_runs": list(self.resume_child_runs)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "SweepSettings":
        metric = data["primary_metric"]
        return cls(sampling_from_dict(data["sampling"]), metric["name"], as_goal(metric["goal"]),
                   int(data["max_total_runs"]), int(data["max_concurrent_runs"]), data["max_duration_minutes"],
                   policy_from_dict(data.get("policy")), list(data.get("resume_from") or []),
                   list(data.get("resume_child_runs") or []))

    def hyperparameter_arguments(self, params: Mapping) -> list[str]:
        """['--name', 'value', ...] for one child, in parameter-space order."""
        space = self.sampling.parameter_space
        if not isinstance(params, Mapping) or set(params) != set(space):
            got = sorted(params) if isinstance(params, Mapping) else params
            raise UserErrorException(f"a child's hyperparameters must name exactly {sorted(space)}; got {got!r}")
        out: list[str] = []
        for name, flag in self.sampling.flags().items():
            out += [flag, _arg_text(params[name])]
        return out

    def child_arguments(self, base_arguments, params: Mapping) -> list:
        """The parent's (normalized) fixed arguments followed by this child's hyperparameters."""
        return list(base_arguments) + self.hyperparameter_arguments(params)

    def decide(self, table: Mapping, finished=()) -> list:
        """Which running children the early-termination policy stops now (see policies.py)."""
        return self.policy.decide(table, self.primary_metric_goal, finished)

    def sampler(self, storage_dir, seed: int | None = None):
        """The sweep's SweepSampler, its journal in ``storage_dir`` (the parent run's folder)."""
        from .sampling import SweepSampler  # optuna loads only when a sweep actually samples
        return SweepSampler(self.sampling, storage_dir, seed=seed, goal=self.primary_metric_goal)

    def check_warm_start_source(self, earlier: "SweepSettings", where: str = "an earlier sweep") -> None:
        """Azure's rule for resume_from: same primary metric and goal; Bayesian also needs the same space."""
        if earlier.primary_metric_name != self.primary_metric_name:
            raise UserErrorException(f"{where} optimized {earlier.primary_metric_name!r}, this sweep "
                                     f"{self.primary_metric_name!r}; warm start needs the same primary metric")
        if earlier.primary_metric_goal is not self.primary_metric_goal:
            raise UserErrorException(f"{where} had goal {earlier.primary_metric_goal.value}, this sweep "
                                     f"{self.primary_metric_goal.value}; warm start needs the same goal")
        if isinstance(self.sampling, BayesianParameterSampling) and \
                earlier.sampling.parameter_space != self.sampling.parameter_space:
            raise UserErrorException(f"{where} had another parameter space; warm-starting Bayesian sampling "
                                     "needs exactly the same parameter_space")


_KNOWN = ("hyperparameter_sampling", "primary_metric_name", "primary_metric_goal", "max_total_runs",
          "max_concurrent_runs", "max_duration_minutes", "policy", "estimator", "run_config", "resume_from",
          "resume_child_runs", "pipeline")


def _reject_unknown(unknown: dict) -> None:
    for name in unknown:
        near = get_close_matches(name, _KNOWN, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else f"; valid ones: {', '.join(_KNOWN)}"
        raise TypeError(f"HyperDriveConfig() got an unexpected keyword argument {name!r}{hint}")


def _check_run_config(sampling, estimator, run_config, pipeline):
    if isinstance(sampling, (ScriptRunConfig, Estimator)):
        raise TypeError("HyperDriveConfig's first positional argument is hyperparameter_sampling (as in Azure ML); "
                        "pass the script as run_config=... by keyword")
    if pipeline is not None:
        raise UserErrorException("pipeline sweeps are not supported; give run_config=ScriptRunConfig(...) or a "
                                 "TensorFlow estimator")
    given = [v for v in (estimator, run_config) if v is not None]
    if len(given) != 1:
        raise UserErrorException("HyperDriveConfig needs exactly one of run_config (a ScriptRunConfig or an "
                                 f"estimator) or estimator; got {len(given)}")
    target = given[0]
    if not isinstance(target, (ScriptRunConfig, Estimator)):
        raise TypeError(f"run_config must be a ScriptRunConfig or an estimator such as TensorFlow(...); got "
                        f"{type(target).__name__}")
    return target


def _check_policy(sampling, policy) -> EarlyTerminationPolicy:
    if policy is None:
        return NoTerminationPolicy()
    if not isinstance(policy, EarlyTerminationPolicy):
        raise TypeError("policy must be BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy, "
                        f"NoTerminationPolicy or None; got {policy!r}")
    if isinstance(sampling, BayesianParameterSampling) and not isinstance(policy, NoTerminationPolicy):
        raise UserErrorException(f"Early termination policy for Bayesian sampling is not supported (got "
                                 f"{policy!r}). Use policy=None or NoTerminationPolicy() with "
                                 "BayesianParameterSampling, or RandomParameterSampling to stop children early.")
    return policy


def _int_limit(name: str, value) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    return int(value)


def _check_total(sampling, max_total_runs) -> int:
    grid = sampling.grid_size if isinstance(sampling, GridParameterSampling) else None
    if max_total_runs is None:
        if grid is None:
            raise UserErrorException(f"max_total_runs is required with {type(sampling).__name__}: how many "
                                     f"children to run, 1..{MAX_TOTAL_RUNS} (only a grid has a size of its own)")
        if grid > MAX_TOTAL_RUNS:
            raise UserErrorException(f"the grid has {grid} combinations, more than the {MAX_TOTAL_RUNS} runs a sweep "
                                     "may have; give max_total_runs to run part of it, or fewer choices")
        return grid
    total = _int_limit("max_total_runs", max_total_runs)
    if not 1 <= total <= MAX_TOTAL_RUNS:
        raise UserErrorException(f"max_total_runs must be between 1 and {MAX_TOTAL_RUNS}, got {total}")
    return total if grid is None else min(total, grid)


def _check_concurrent(max_concurrent_runs, total: int) -> int:
    if max_concurrent_runs is None:
        return total
    concurrent = _int_limit("max_concurrent_runs", max_concurrent_runs)
    if concurrent < 1:
        raise UserErrorException(f"max_concurrent_runs must be at least 1 (or None for all at once), got {concurrent}")
    return min(concurrent, total)


def _check_minutes(minutes) -> float:
    if isinstance(minutes, bool) or not isinstance(minutes, numbers.Real):
        raise TypeError(f"max_duration_minutes must be a number, got {minutes!r} ({type(minutes).__name__})")
    if not math.isfinite(minutes) or minutes <= 0:
        raise UserErrorException(f"max_duration_minutes must be greater than 0, got {minutes!r}")
    if minutes > MAX_DURATION_MINUTES:
        warnings.warn(f"max_duration_minutes {minutes} exceeds the limit of {MAX_DURATION_MINUTES} minutes (7 days); "
                      f"using {MAX_DURATION_MINUTES}", UserWarning, stacklevel=3)
        return MAX_DURATION_MINUTES
    return minutes


def _run_ids(name: str, runs, limit: int) -> list[str]:
    if runs is None:
        return []
    items = runs if isinstance(runs, (list, tuple)) else [runs]
    ids = []
    for run in items:
        run_id = run if isinstance(run, str) else getattr(run, "id", None)
        if not isinstance(run_id, str) or not run_id:
            raise TypeError(f"{name} takes runs (or their ids); {run!r} has no id")
        if run_id in ids:
            raise UserErrorException(f"{name} names run {run_id!r} twice")
        ids.append(run_id)
    if len(ids) > limit:
        raise UserErrorException(f"{name} may name at most {limit} runs, got {len(ids)}")
    return ids


def _fixed_arguments(run_config) -> list:
    tokens = list(getattr(run_config, "arguments", None) or [])
    if isinstance(run_config, Estimator):
        tokens = list((run_config.script_params or {}).keys()) + tokens
    return tokens


def _check_collisions(run_config, sampling: HyperParameterSampling) -> None:
    fixed = {t.split("=", 1)[0] for t in _fixed_arguments(run_config) if isinstance(t, str)}
    for name, flag in sampling.flags().items():
        if flag in fixed or name in fixed:
            raise UserErrorException(f"hyperparameter {name!r} is also a fixed script argument of run_config "
                                     f"({flag}); remove it from the run_config's arguments or from the parameter "
                                     "space, otherwise each child would get it twice")


def _bayesian_advice(sampling, total: int, concurrent: int) -> None:
    if not isinstance(sampling, BayesianParameterSampling):
        return
    wanted = _BAYESIAN_RUNS_PER_PARAMETER * len(sampling.parameter_space)
    if total < wanted:
        warnings.warn(f"Bayesian sampling works best with max_total_runs >= {_BAYESIAN_RUNS_PER_PARAMETER} x the "
                      f"number of hyperparameters ({wanted} here); got {total}", UserWarning, stacklevel=3)
    if concurrent > _BAYESIAN_MAX_CONCURRENT:
        warnings.warn(f"Bayesian sampling learns from finished children; more than {_BAYESIAN_MAX_CONCURRENT} at "
                      f"once ({concurrent}) leaves it little to learn from", UserWarning, stacklevel=3)


class HyperDriveConfig:
    """A hyperparameter sweep: what each child runs, how parameters are sampled, when to stop.

    Positional order is Azure ML SDK v1's (hyperparameter_sampling, primary_metric_name,
    primary_metric_goal, max_total_runs, ...); run_config (a ScriptRunConfig or an estimator such as
    TensorFlow) is given by keyword. max_total_runs may be left out for a grid (it runs every
    combination once); max_concurrent_runs None means all at once.
    """

    def __init__(self, hyperparameter_sampling=None, primary_metric_name=None, primary_metric_goal=None,
                 max_total_runs=None, max_concurrent_runs=None, max_duration_minutes=MAX_DURATION_MINUTES,
                 policy=None, estimator=None, run_config=None, resume_from=None, resume_child_runs=None,
                 pipeline=None, **unknown):
        _reject_unknown(unknown)
        self._run_config = _check_run_config(hyperparameter_sampling, estimator, run_config, pipeline)
        self._given_as_estimator = estimator is not None
        if not isinstance(hyperparameter_sampling, HyperParameterSampling):
            raise TypeError("hyperparameter_sampling must be RandomParameterSampling, GridParameterSampling or "
                            f"BayesianParameterSampling; got {hyperparameter_sampling!r}")
        policy = _check_policy(hyperparameter_sampling, policy)
        if not isinstance(primary_metric_name, str) or not primary_metric_name.strip():
            raise UserErrorException("primary_metric_name is required: the name the script logs with run.log(), "
                                     f"e.g. 'validation_acc'; got {primary_metric_name!r}")
        if primary_metric_goal is None:
            raise UserErrorException("primary_metric_goal is required: PrimaryMetricGoal.MAXIMIZE or "
                                     "PrimaryMetricGoal.MINIMIZE")
        try:
            goal = as_goal(primary_metric_goal)
        except ValueError as exc:
            raise UserErrorException(str(exc)) from None
        total = _check_total(hyperparameter_sampling, max_total_runs)
        concurrent = _check_concurrent(max_concurrent_runs, total)
        self._settings = SweepSettings(
            hyperparameter_sampling, primary_metric_name, goal, total, concurrent,
            _check_minutes(max_duration_minutes), policy,
            _run_ids("resume_from", resume_from, MAX_RESUME_PARENTS),
            _run_ids("resume_child_runs", resume_child_runs, total))
        self._resume_from = list(resume_from) if isinstance(resume_from, (list, tuple)) else \
            [] if resume_from is None else [resume_from]
        self._resume_child_runs = list(resume_child_runs) if isinstance(resume_child_runs, (list, tuple)) else \
            [] if resume_child_runs is None else [resume_child_runs]
        _check_collisions(self._run_config, hyperparameter_sampling)
        _bayesian_advice(hyperparameter_sampling, total, concurrent)

    @property
    def settings(self) -> SweepSettings:
        return self._settings

    @property
    def run_config(self):
        return self._run_config

    @property
    def estimator(self):
        return self._run_config if isinstance(self._run_config, Estimator) else None

    @property
    def source_directory(self):
        return self._run_config.source_directory

    @property
    def hyperparameter_sampling(self) -> HyperParameterSampling:
        return self._settings.sampling

    @property
    def policy(self) -> EarlyTerminationPolicy:
        return self._settings.policy

    @property
    def primary_metric_name(self) -> str:
        return self._settings.primary_metric_name

    @property
    def primary_metric_goal(self) -> PrimaryMetricGoal:
        return self._settings.primary_metric_goal

    @property
    def max_total_runs(self) -> int:
        return self._settings.max_total_runs

    @property
    def max_concurrent_runs(self) -> int:
        return self._settings.max_concurrent_runs

    @property
    def max_duration_minutes(self) -> float:
        return self._settings.max_duration_minutes

    @property
    def resume_from(self) -> list:
        """The runs given as resume_from (their ids are in settings.resume_from)."""
        return list(self._resume_from)

    @property
    def resume_child_runs(self) -> list:
        return list(self._resume_child_runs)

    def base_arguments(self) -> list:
        """The run_config's fixed script arguments, normalized (strings and dataset-input specs)."""
        rc = self._run_config
        if isinstance(rc, Estimator):
            return normalize_arguments(script_params=rc.script_params, arguments=rc.arguments)
        return normalize_arguments(arguments=rc.arguments)

    def child_arguments(self, params: Mapping) -> list:
        """One child's full argument list: the fixed arguments, then ``--name value`` per hyperparameter."""
        return self._settings.child_arguments(self.base_arguments(), params)

    def child_run_config(self, params: Mapping):
        """A copy of run_config whose arguments end with this child's hyperparameters."""
        child = copy.copy(self._run_config)
        child.arguments = list(self._run_config.arguments) + self._settings.hyperparameter_arguments(params)
        return child

    def sampler(self, storage_dir, seed: int | None = None):
        return self._settings.sampler(storage_dir, seed)

    def to_dict(self) -> dict:
        return self._settings.to_dict()

    def __repr__(self) -> str:
        s = self._settings
        return (f"HyperDriveConfig({s.sampling!r}, primary_metric_name={s.primary_metric_name!r}, "
                f"primary_metric_goal={s.primary_metric_goal}, max_total_runs={s.max_total_runs}, "
                f"max_concurrent_runs={s.max_concurrent_runs}, policy={s.policy!r})")
