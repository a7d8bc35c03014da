"""Early-termination policies decide on hand-made metric tables as Azure ML documents."""
from __future__ import annotations

import math

import pytest

from mltrain_desktop.train.hyperdrive import (BanditPolicy, MedianStoppingPolicy, NoTerminationPolicy,
                                              PrimaryMetricGoal, TruncationSelectionPolicy)
from mltrain_desktop.train.hyperdrive.policies import clean_points, policy_from_dict

MAX, MIN = PrimaryMetricGoal.MAXIMIZE, PrimaryMetricGoal.MINIMIZE


def stopped(policy, table, goal=MAX, finished=()) -> dict:
    return {d.child_id: d.reason for d in policy.decide(table, goal, finished)}


def test_bandit_slack_factor_maximize():
    policy = BanditPolicy(evaluation_interval=1, slack_factor=0.1)
    out = stopped(policy, {"a": [0.8], "b": [0.71], "c": [0.75]})     # 0.8 / 1.1 = 0.727
    assert out == {"b": "early terminated by BanditPolicy: 0.71 < best 0.8 / 1.1 at interval 1"}


def test_bandit_uses_each_childs_best_so_far():
    policy = BanditPolicy(slack_factor=0.1)
    assert stopped(policy, {"a": [0.8, 0.8], "b": [0.5, 0.79]}) == {}


def test_bandit_compares_a_young_child_with_what_older_ones_had_at_the_same_interval():
    policy = BanditPolicy(slack_factor=0.1)
    # at interval 1 the older child had 0.5; its later 0.9 does not count against the young one yet
    assert stopped(policy, {"old": [0.5, 0.9], "young": [0.6]}) == {}
    assert set(stopped(policy, {"old": [0.5, 0.9], "young": [0.6, 0.61]})) == {"young"}


def test_bandit_slack_factor_minimize():
    out = stopped(BanditPolicy(slack_factor=0.1), {"a": [0.2], "b": [0.25], "c": [0.21]}, MIN)   # 0.2 * 1.1 = 0.22
    assert out == {"b": "early terminated by BanditPolicy: 0.25 > best 0.2 * 1.1 at interval 1"}


def test_bandit_slack_amount_both_goals():
    policy = BanditPolicy(slack_amount=0.05)
    assert stopped(policy, {"a": [0.8], "b": [0.74], "c": [0.76]}) == {
        "b": "early terminated by BanditPolicy: 0.74 < best 0.8 - 0.05 at interval 1"}
    assert stopped(policy, {"a": [1.0], "b": [1.06], "c": [1.04]}, "minimize") == {
        "b": "early terminated by BanditPolicy: 1.06 > best 1 + 0.05 at interval 1"}
    # a ratio would stop c here, an absolute slack does not
    assert "c" in stopped(BanditPolicy(slack_factor=0.01), {"a": [1.0], "c": [1.04]}, MIN)


def test_bandit_evaluation_interval_counts_logged_points():
    policy = BanditPolicy(evaluation_interval=2, slack_factor=0.1)
    assert stopped(policy, {"a": [0.9, 0.9, 0.9], "b": [0.1]}) == {}          # b has no 2nd point yet
    # judged at its latest evaluation point (interval 2) with points 1..2: the decision made at interval 2
    out = policy.decide({"a": [0.9, 0.9, 0.9], "b": [0.1, 0.2, 0.95]}, MAX)
    assert [(d.child_id, d.interval, d.value) for d in out] == [("b", 2, 0.2)]
    assert out[0].policy == "Bandit"


def test_bandit_delay_evaluation():
    policy = BanditPolicy(slack_factor=0.1, delay_evaluation=3)
    table = {"a": [0.9, 0.9, 0.9], "b": [0.1, 0.1]}
    assert stopped(policy, table) == {}
    table["b"].append(0.1)
    assert stopped(policy, table) == {"b": "early terminated by BanditPolicy: 0.1 < best 0.9 / 1.1 at interval 3"}
    assert BanditPolicy(slack_factor=0.1, evaluation_interval=2, delay_evaluation=3).evaluation_point(3) is None
    assert BanditPolicy(slack_factor=0.1, evaluation_interval=2, delay_evaluation=3).evaluation_point(5) == 4


def test_nan_and_strings_are_not_points():
    assert clean_points([0.9, math.nan, "oops", None, True, 0.5, float("nan")]) == [0.9, 0.5]
    policy = BanditPolicy(slack_factor=0.1, delay_evaluation=2)
    # b has one numeric point, so it is not yet at interval 2
    assert stopped(policy, {"a": [0.9, 0.9], "b": [0.1, math.nan, "x"]}) == {}
    assert stopped(policy, {"a": [0.9, 0.9], "b": [0.1, math.nan, "x", 0.2]}) == {
        "b": "early terminated by BanditPolicy: 0.2 < best 0.9 / 1.1 at interval 2"}
    assert stopped(policy, {"a": [0.9, 0.9], "none": ["a", "b", math.nan]}) == {}


def test_finished_children_set_the_bar_but_are_not_stopped():
    policy = BanditPolicy(slack_factor=0.1)
    out = stopped(policy, {"done": [0.9], "poor-done": [0.1], "b": [0.5]}, MAX, finished={"done", "poor-done"})
    assert set(out) == {"b"}


def test_median_stopping_maximize():
    policy = MedianStoppingPolicy()
    table = {"a": [0.9, 0.9, 0.9], "b": [0.8, 0.8, 0.8], "c": [0.1, 0.2, 0.3]}
    assert stopped(policy, table) == {
        "c": "early terminated by MedianStoppingPolicy: best 0.3 < median 0.8 of 3 running averages at interval 3"}


def test_median_uses_running_averages_of_children_that_reached_the_interval():
    policy = MedianStoppingPolicy()
    # b's best (0.9) beats the median of running averages (a: 0.5, b: 0.5, c: 0.6 -> 0.5)
    assert stopped(policy, {"a": [0.5, 0.5], "b": [0.1, 0.9], "c": [0.6, 0.6]}) == {}
    # d has one point: judged at interval 1 among all four first points (0.5, 0.1, 0.6, 0.05 -> median 0.3)
    out = stopped(policy, {"a": [0.5, 0.5], "b": [0.1, 0.9], "c": [0.6, 0.6], "d": [0.05]})
    assert out == {"d": "early terminated by MedianStoppingPolicy: best 0.05 < median 0.3 of 4 running averages "
                        "at interval 1"}


def test_median_minimize_and_delay():
    table = {"a": [1.0, 1.0], "b": [2.0, 2.0], "c": [3.0, 2.5]}
    assert stopped(MedianStoppingPolicy(), table, MIN) == {
        "c": "early terminated by MedianStoppingPolicy: best 2.5 > median 2 of 3 running averages at interval 2"}
    assert stopped(MedianStoppingPolicy(delay_evaluation=5), table, MIN) == {}
    assert stopped(MedianStoppingPolicy(), {"alone": [0.0, 0.0]}) == {}
    assert MedianStoppingPolicy().delay_evaluation == 0     # Azure ML's default


def test_truncation_stops_the_worst_percentage():
    policy = TruncationSelectionPolicy(truncation_percentage=20)
    table = {"a": [0.9], "b": [0.8], "c": [0.7], "d": [0.6], "e": [0.5]}
    assert stopped(policy, table) == {
        "e": "early terminated by TruncationSelectionPolicy: 0.5 is among the worst 20% (1 of 5 runs) at interval 1"}
    assert set(stopped(policy, table, MIN)) == {"a"}
    four = {k: table[k] for k in "abcd"}
    assert stopped(policy, four) == {}                      # 20% of 4 runs is less than one run
    ten = {str(i): [i / 10] for i in range(10)}
    assert set(stopped(TruncationSelectionPolicy(25), ten)) == {"0", "1"}


def test_truncation_keeps_ties_at_the_cut():
    table = {"a": [0.9], "b": [0.8], "c": [0.7], "d": [0.5], "e": [0.5]}
    assert stopped(TruncationSelectionPolicy(20), table) == {}
    assert set(stopped(TruncationSelectionPolicy(40), table)) == {"d", "e"}


def test_truncation_ranks_at_the_same_interval_and_honours_delay():
    policy = TruncationSelectionPolicy(50, evaluation_interval=2, delay_evaluation=2)
    table = {"old": [0.1, 0.2], "mid": [0.5, 0.6], "new": [0.3, 0.4], "one": [0.0]}
    # at interval 2: old 0.2, mid 0.6, new 0.4 -> the worst 1 of 3 is old; 'one' is not at interval 2 yet
    assert set(stopped(policy, table)) == {"old"}
    # a child is judged at its latest evaluation point: at interval 4 'old' is alone, so nothing to rank
    table["old"] += [0.9, 0.9]
    assert stopped(policy, table) == {}
    assert stopped(TruncationSelectionPolicy(50, delay_evaluation=3), {"a": [0.1, 0.1], "b": [0.9, 0.9]}) == {}


def test_truncation_exclude_finished_jobs():
    table = {"done": [0.1], "a": [0.9], "b": [0.8], "c": [0.7], "d": [0.6]}
    keep = TruncationSelectionPolicy(50)
    drop = TruncationSelectionPolicy(50, exclude_finished_jobs=True)
    assert set(stopped(keep, table, MAX, finished={"done"})) == {"d"}        # done fills one of the 2 places
    assert set(stopped(drop, table, MAX, finished={"done"})) == {"c", "d"}   # ranked among the 4 running only


def test_no_termination_never_stops():
    assert NoTerminationPolicy().decide({"a": [1.0], "b": [0.0]}, MAX) == []


@pytest.mark.parametrize("make, error, message", [
    (lambda: BanditPolicy(), ValueError, "exactly one of slack_factor"),
    (lambda: BanditPolicy(slack_factor=0.1, slack_amount=0.2), ValueError, "exactly one of slack_factor"),
    (lambda: BanditPolicy(slack_factor=-0.1), ValueError, "slack_factor must be a finite number >= 0"),
    (lambda: BanditPolicy(slack_amount="0.1"), TypeError, "slack_amount must be a number"),
    (lambda: BanditPolicy(evaluation_interval=0, slack_factor=0.1), ValueError, "evaluation_interval must be at "
                                                                                 "least 1"),
    (lambda: BanditPolicy(evaluation_interval=1.5, slack_factor=0.1), TypeError, "must be an integer"),
    (lambda: MedianStoppingPolicy(delay_evaluation=-1), ValueError, "delay_evaluation must be at least 0"),
    (lambda: MedianStoppingPolicy(evaluation_interval=True), TypeError, "must be an integer"),
    (lambda: TruncationSelectionPolicy(0), ValueError, "truncation_percentage must be at least 1"),
    (lambda: TruncationSelectionPolicy(100), ValueError, "truncation_percentage must be 1..99"),
    (lambda: TruncationSelectionPolicy(12.5), TypeError, "truncation_percentage must be an integer"),
    (lambda: TruncationSelectionPolicy(10, exclude_finished_jobs="yes"), TypeError, "True or False"),
    (lambda: NoTerminationPolicy().decide({}, "upwards"), ValueError, "primary_metric_goal must be"),
    (lambda: policy_from_dict({"name": "Bandits"}), ValueError, "unknown early-termination policy"),
])
def test_bad_policy_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("policy", [BanditPolicy(2, slack_amount=0.3, delay_evaluation=4), MedianStoppingPolicy(3, 1),
                                    TruncationSelectionPolicy(30, 2, 5, True), NoTerminationPolicy()])
def test_policy_dict_round_trip(policy):
    assert policy_from_dict(policy.to_dict()) == policy
    assert policy_from_dict(None) == NoTerminationPolicy()
