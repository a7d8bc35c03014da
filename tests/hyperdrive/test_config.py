"""HyperDriveConfig: Azure's checks with clear errors, and what a sweep driver asks of it."""
from __future__ import annotations

import json
import warnings

import pytest

from mltrain_desktop.core.errors import UserErrorException
from mltrain_desktop.core.script_run_config import ScriptRunConfig
from mltrain_desktop.train.dnn import TensorFlow
from mltrain_desktop.train.hyperdrive import (BanditPolicy, BayesianParameterSampling, GridParameterSampling,
                                              HyperDriveConfig, MedianStoppingPolicy, NoTerminationPolicy,
                                              PrimaryMetricGoal, RandomParameterSampling, SweepSettings, choice,
                                              loguniform, normal, quniform, uniform)
from mltrain_desktop.train.hyperdrive.sampling import JOURNAL_FILE

SPACE = {"--batch-size": choice(32, 64, 128), "--learning-rate": loguniform(-6, -1)}


@pytest.fixture
def src(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "train.py").write_text("print('hi')\n")
    return ScriptRunConfig(source_directory=str(folder), script="train.py", arguments=["--epochs", 2, "--data", "x"])


def config(rc, sampling=None, **kw):
    args = dict(run_config=rc, hyperparameter_sampling=sampling or RandomParameterSampling(SPACE),
                primary_metric_name="validation_acc", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
                max_total_runs=8, max_concurrent_runs=4)
    args.update(kw)
    return HyperDriveConfig(**args)


def test_the_notebook_sweep_and_a_childs_arguments(src):
    htc = config(src, policy=BanditPolicy(evaluation_interval=2, slack_factor=0.1), max_duration_minutes=60)
    assert (htc.max_total_runs, htc.max_concurrent_runs, htc.max_duration_minutes) == (8, 4, 60)
    assert htc.policy == BanditPolicy(evaluation_interval=2, slack_factor=0.1) and htc.run_config is src
    params = {"--learning-rate": 0.0025, "--batch-size": 64}
    expected = ["--epochs", "2", "--data", "x", "--batch-size", "64", "--learning-rate", "0.0025"]
    assert htc.child_arguments(params) == expected
    child = htc.child_run_config(params)
    assert child.to_spec()["arguments"] == expected and src.arguments == ["--epochs", 2, "--data", "x"]


def test_names_without_dashes_become_flags_and_estimator_params_come_first(tmp_path, src):
    est = TensorFlow(source_directory=src.source_directory, entry_script="train.py",
                     script_params={"--data-folder": "d"}, compute_target="local")
    htc = HyperDriveConfig(RandomParameterSampling({"learning_rate": uniform(0, 1), "units": choice(8, 16)}),
                           "loss", "minimize", 3, estimator=est)
    assert htc.estimator is est and htc.primary_metric_goal is PrimaryMetricGoal.MINIMIZE
    assert htc.max_concurrent_runs == 3
    assert htc.child_arguments({"learning_rate": 0.5, "units": 8}) == [
        "--data-folder", "d", "--learning_rate", "0.5", "--units", "8"]
    assert htc.child_run_config({"learning_rate": 0.5, "units": 8}).to_spec()["arguments"][-4:] == [
        "--learning_rate", "0.5", "--units", "8"]


def test_settings_survive_json_and_drive_the_sampler_and_policy(tmp_path, src):
    htc = config(src, policy=MedianStoppingPolicy(delay_evaluation=1), resume_from=["hd_1"])
    restored = SweepSettings.from_dict(json.loads(json.dumps(htc.to_dict())))
    assert restored == htc.settings and restored.resume_from == ["hd_1"]
    sampler = restored.sampler(tmp_path / "parent")
    number, params = sampler.ask()
    assert (tmp_path / "parent" / JOURNAL_FILE).is_file() and number == 0 and set(params) == set(SPACE)
    assert restored.child_arguments(["--epochs", "2"], params)[:3] == ["--epochs", "2", "--batch-size"]
    assert [d.child_id for d in restored.decide({"a": [0.9], "b": [0.1]})] == ["b"]


def test_grid_runs_every_combination_by_default(src):
    grid = GridParameterSampling({"--a": choice(1, 2, 3), "--b": choice("x", "y")})
    assert config(src, grid, max_total_runs=None, max_concurrent_runs=None).max_total_runs == 6
    assert config(src, grid, max_total_runs=100).max_total_runs == 6
    assert config(src, grid, max_total_runs=4).max_total_runs == 4
    big = GridParameterSampling({f"--p{i}": choice(*range(10)) for i in range(4)})
    with pytest.raises(UserErrorException, match="the grid has 10000 combinations"):
        config(src, big, max_total_runs=None)


def test_bayesian_refuses_an_early_termination_policy(src):
    bayes = BayesianParameterSampling({"--lr": uniform(0.001, 0.1), "--units": quniform(8, 64, 8),
                                       "--bs": choice(16, 32)})
    with pytest.raises(UserErrorException, match="Early termination policy for Bayesian sampling is not supported"):
        config(src, bayes, policy=BanditPolicy(slack_factor=0.1), max_total_runs=60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert config(src, bayes, policy=NoTerminationPolicy(), max_total_runs=60).policy == NoTerminationPolicy()
        assert config(src, bayes, policy=None, max_total_runs=60).policy == NoTerminationPolicy()
    with pytest.warns(UserWarning, match="max_total_runs >= 20 x the number of hyperparameters"):
        config(src, bayes, max_total_runs=10)


@pytest.mark.parametrize("space, name", [
    ({"--a": choice(1, 2), "--lr": uniform(0, 1)}, "'--lr' is uniform(0, 1)"),
    ({"--n": normal(0, 1)}, "'--n' is normal(0, 1)"),
])
def test_grid_refuses_a_continuous_distribution_naming_it(space, name):
    with pytest.raises(ValueError, match="GridParameterSampling supports only choice()") as info:
        GridParameterSampling(space)
    assert name in str(info.value)


def test_bayesian_refuses_other_distributions():
    with pytest.raises(ValueError, match=r"supports only choice\(\), uniform\(\), quniform\(\); parameter '--lr' is "
                                         r"loguniform\(-6, -1\)"):
        BayesianParameterSampling({"--lr": loguniform(-6, -1)})


@pytest.mark.parametrize("space, error, message", [
    ({}, TypeError, "non-empty dict"),
    ([("--a", choice(1))], TypeError, "non-empty dict"),
    ({"--a": 0.01}, TypeError, "parameter '--a': 0.01 is not a parameter expression"),
    ({"": choice(1)}, ValueError, "must be a non-empty string"),
    ({"--a b": choice(1)}, ValueError, "must not contain spaces"),
    ({"--a=1": choice(1)}, ValueError, "must not contain spaces or '='"),
    ({"lr": choice(1), "--lr": choice(2)}, ValueError, "are both passed as --lr"),
    ({"--a": ["unifrom", [0, 1]]}, ValueError, "did you mean 'uniform'"),
])
def test_bad_parameter_spaces(space, error, message):
    with pytest.raises(error, match=message):
        RandomParameterSampling(space)


def test_sampling_properties_and_azure_list_form():
    assert RandomParameterSampling({"--a": ["uniform", [0, 1]]}, {"seed": 3}).seed == 3
    with pytest.raises(ValueError, match="unknown property 'sed'; did you mean 'seed'"):
        RandomParameterSampling(SPACE, properties={"sed": 1})
    with pytest.raises(ValueError, match="'seed' must be an integer"):
        RandomParameterSampling(SPACE, properties={"seed": -1})


@pytest.mark.parametrize("kw, error, message", [
    ({"max_total_runs": 0}, UserErrorException, "max_total_runs must be between 1 and 1000, got 0"),
    ({"max_total_runs": -3}, UserErrorException, "between 1 and 1000"),
    ({"max_total_runs": 1001}, UserErrorException, "between 1 and 1000, got 1001"),
    ({"max_total_runs": 2.5}, TypeError, "max_total_runs must be an integer"),
    ({"max_total_runs": None}, UserErrorException, "max_total_runs is required with RandomParameterSampling"),
    ({"max_concurrent_runs": 0}, UserErrorException, "max_concurrent_runs must be at least 1"),
    ({"max_concurrent_runs": -1}, UserErrorException, "max_concurrent_runs must be at least 1"),
    ({"max_concurrent_runs": True}, TypeError, "max_concurrent_runs must be an integer"),
    ({"max_duration_minutes": 0}, UserErrorException, "max_duration_minutes must be greater than 0"),
    ({"max_duration_minutes": "1h"}, TypeError, "max_duration_minutes must be a number"),
    ({"primary_metric_name": ""}, UserErrorException, "primary_metric_name is required"),
    ({"primary_metric_goal": None}, UserErrorException, "primary_metric_goal is required"),
    ({"primary_metric_goal": "bigger"}, UserErrorException, "PrimaryMetricGoal.MAXIMIZE or"),
    ({"policy": "bandit"}, TypeError, "policy must be BanditPolicy"),
    ({"hyperparameter_sampling": SPACE}, TypeError, "hyperparameter_sampling must be RandomParameterSampling"),
    ({"max_total_run": 8}, TypeError, "unexpected keyword argument 'max_total_run'; did you mean 'max_total_runs'"),
    ({"polcy": None}, TypeError, "did you mean 'policy'"),
    ({"zzz": 1}, TypeError, "valid ones: hyperparameter_sampling"),
    ({"pipeline": object()}, UserErrorException, "pipeline sweeps are not supported"),
    ({"run_config": None}, UserErrorException, "exactly one of run_config"),
    ({"run_config": "train.py"}, TypeError, "run_config must be a ScriptRunConfig or an estimator"),
    ({"resume_from": ["a", "b", "c", "d", "e", "f"]}, UserErrorException, "at most 5 runs"),
    ({"resume_from": ["a", "a"]}, UserErrorException, "names run 'a' twice"),
    ({"resume_from": [3]}, TypeError, "has no id"),
    ({"resume_child_runs": [f"c{i}" for i in range(9)]}, UserErrorException, "resume_child_runs may name at most 8"),
])
def test_bad_config_arguments(src, kw, error, message):
    with pytest.raises(error, match=message):
        config(src, **kw)


def test_estimator_and_run_config_together_are_refused(src):
    est = TensorFlow(source_directory=src.source_directory, entry_script="train.py")
    with pytest.raises(UserErrorException, match="exactly one of run_config"):
        config(src, estimator=est)


def test_brief_style_positional_call_is_explained(src):
    with pytest.raises(TypeError, match="first positional argument is hyperparameter_sampling"):
        HyperDriveConfig(src, RandomParameterSampling(SPACE), "acc", "maximize", 4)


def test_long_duration_is_capped_with_a_warning(src):
    with pytest.warns(UserWarning, match="exceeds the limit of 10080 minutes"):
        assert config(src, max_duration_minutes=20000).max_duration_minutes == 10080


@pytest.mark.parametrize("arguments, name", [
    (["--batch-size", 50], "--batch-size"),
    (["--batch-size=50"], "--batch-size"),
    (["--epochs", 1, "--learning-rate", 0.1], "--learning-rate"),
])
def test_a_hyperparameter_that_is_also_a_fixed_argument_is_refused(src, arguments, name):
    src.arguments = arguments
    with pytest.raises(UserErrorException, match=f"hyperparameter '{name}' is also a fixed script argument"):
        config(src)


def test_collision_with_estimator_script_params(src):
    est = TensorFlow(source_directory=src.source_directory, entry_script="train.py", script_params={"--batch-size": 50})
    with pytest.raises(UserErrorException, match="'batch-size' is also a fixed script argument"):
        HyperDriveConfig(RandomParameterSampling({"batch-size": choice(1, 2)}), "acc", "maximize", 4, run_config=est)


def test_child_arguments_need_exactly_the_space(src):
    htc = config(src)
    with pytest.raises(UserErrorException, match="must name exactly"):
        htc.child_arguments({"--batch-size": 32})


def test_warm_start_sources_must_match(src):
    mine = config(src).settings
    other_metric = config(src, primary_metric_name="loss").settings
    other_goal = config(src, primary_metric_goal="minimize").settings
    with pytest.raises(UserErrorException, match="same primary metric"):
        mine.check_warm_start_source(other_metric)
    with pytest.raises(UserErrorException, match="same goal"):
        mine.check_warm_start_source(other_goal)
    bayes = config(src, BayesianParameterSampling({"--a": uniform(0, 1)}), max_total_runs=20).settings
    bayes_other = config(src, BayesianParameterSampling({"--a": uniform(0, 2)}), max_total_runs=20).settings
    with pytest.raises(UserErrorException, match="exactly the same parameter_space"):
        bayes.check_warm_start_source(bayes_other)
    mine.check_warm_start_source(config(src, RandomParameterSampling({"--a": uniform(0, 1)})).settings)
