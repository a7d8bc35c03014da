"""The submit dialog's Sweep section: the widgets give a form, bad forms are named before
anything is built, and the SDK's own refusals (grid over a continuous range, Bayesian with a
policy, limits) come back as errors the dialog can show."""
from __future__ import annotations

import pytest

from mltrain_desktop.gui.dialogs.sweep_section import SweepSection, build_hyperdrive, parse_values, sweep_problems
from mltrain_desktop.train.dnn import TensorFlow
from mltrain_desktop.train.hyperdrive import (BanditPolicy, BayesianParameterSampling, GridParameterSampling,
                                              RandomParameterSampling)


@pytest.fixture
def estimator(tmp_path):
    (tmp_path / "train.py").write_text("print('hi')\n")
    return TensorFlow(source_directory=str(tmp_path), entry_script="train.py", arguments=["--epochs", "1"],
                      compute_target="local")


@pytest.fixture
def section(qtbot):
    s = SweepSection()
    qtbot.addWidget(s)
    return s


def _fill(section, rows, sampler="Random", policy="None", metric="validation_acc"):
    section.setChecked(True)
    for name, dist, params in rows:
        section.add_parameter(name, dist, params)
    section.sampler.setCurrentText(sampler)
    section.policy.setCurrentText(policy)
    section.metric_edit.setText(metric)
    return section.form()


def test_off_means_no_sweep_and_hides_the_fields(section):
    assert section.form() is None
    assert not section.body.isVisibleTo(section)
    section.setChecked(True)
    assert section.body.isVisibleTo(section)


def test_the_widgets_give_a_form_that_builds_the_sdk_config(section, estimator):
    form = _fill(section, [("--batch-size", "choice", "32, 64, 128"), ("--learning-rate", "loguniform", "-6, -1")],
                 policy="Bandit")
    assert form["space"][0] == {"name": "--batch-size", "distribution": "choice", "parameters": "32, 64, 128"}
    assert sweep_problems(form, {"--epochs"}) == []
    htc = build_hyperdrive(estimator, form)
    assert isinstance(htc.hyperparameter_sampling, RandomParameterSampling)
    assert isinstance(htc.policy, BanditPolicy)
    assert htc.primary_metric_name == "validation_acc"
    assert htc.max_total_runs == 8 and htc.max_concurrent_runs == 2
    space = htc.hyperparameter_sampling.parameter_space
    assert set(space) == {"--batch-size", "--learning-rate"}


def test_grid_takes_choice_only(section, estimator):
    form = _fill(section, [("--batch-size", "choice", "32, 64")], sampler="Grid")
    form["max_total_runs"] = 2
    assert isinstance(build_hyperdrive(estimator, form).hyperparameter_sampling, GridParameterSampling)
    bad = dict(form, space=[{"name": "--lr", "distribution": "uniform", "parameters": "0.1, 0.5"}])
    with pytest.raises(Exception, match="(?i)grid"):
        build_hyperdrive(estimator, bad)


def test_bayesian_refuses_a_policy_as_azure_does(section, estimator):
    form = _fill(section, [("--lr", "uniform", "0.01, 0.1")], sampler="Bayesian", policy="Bandit")
    with pytest.raises(Exception, match="(?i)policy"):
        build_hyperdrive(estimator, form)
    form["policy"]["kind"] = "None"
    assert isinstance(build_hyperdrive(estimator, form).hyperparameter_sampling, BayesianParameterSampling)


def test_wrong_argument_count_is_the_distributions_error(section, estimator):
    form = _fill(section, [("--lr", "uniform", "0.01")])
    with pytest.raises(Exception, match="uniform"):
        build_hyperdrive(estimator, form)


@pytest.mark.parametrize("rows, metric, fixed, expected", [
    ([], "acc", set(), "add at least one argument"),
    ([("", "choice", "1, 2")], "acc", set(), "needs a name"),
    ([("--a", "choice", "1"), ("--a", "choice", "2")], "acc", set(), "tuned twice"),
    ([("--epochs", "choice", "1, 2")], "acc", {"--epochs"}, "also a fixed script argument"),
    ([("--a", "uniform", "")], "acc", set(), "needs uniform's low, high"),
    ([("--a", "choice", "1")], "", set(), "primary metric"),
])
def test_bad_forms_are_named_before_anything_is_built(section, rows, metric, fixed, expected):
    form = _fill(section, rows, metric=metric)
    problems = sweep_problems(form, fixed)
    assert any(expected in p for p in problems), problems


def test_limits_out_of_range_are_refused_by_the_sdk(section, estimator):
    form = _fill(section, [("--a", "choice", "1, 2")])
    for key, value in (("max_total_runs", 0), ("max_total_runs", 1001), ("max_concurrent_runs", 0)):
        with pytest.raises(Exception, match=key):
            build_hyperdrive(estimator, dict(form, **{key: value}))


def test_values_read_as_numbers_where_they_can():
    assert parse_values("32, 0.5, adam, 'x', , 1e-3") == [32, 0.5, "adam", "x", 0.001]
