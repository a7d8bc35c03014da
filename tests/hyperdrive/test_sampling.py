"""SweepSampler drives Optuna's Random, Grid and TPE samplers; the journal file keeps a sweep across restarts."""
from __future__ import annotations

import itertools

import pytest

from mltrain_desktop.train.hyperdrive import (BayesianParameterSampling, GridParameterSampling,
                                              RandomParameterSampling, SweepExhausted, SweepSampler, choice,
                                              loguniform, normal, quniform, randint, uniform)
from mltrain_desktop.train.hyperdrive.sampling import JOURNAL_FILE

GRID = {"--batch-size": choice(16, 32, 64), "--opt": choice("adam", "sgd"), "--bn": choice(True, False)}
RANDOM = {"--batch-size": choice(16, 32, 64), "--lr": loguniform(-6, -1), "--units": quniform(32, 256, 32),
          "--drop": uniform(0, 0.5), "--seed": randint(100), "--noise": normal(0, 1)}
BAYES = {"--batch-size": choice(16, 32, 64), "--drop": uniform(0, 0.5), "--units": quniform(32, 256, 32)}


def objective(params: dict) -> float:
    return -(params["--drop"] - 0.2) ** 2 - abs(params["--units"] - 128) / 1000 + params["--batch-size"] / 1000


def combo(params: dict) -> tuple:
    return tuple(params[k] for k in sorted(params))


def run_sweep(sampler: SweepSampler, n: int, tell=True) -> list[dict]:
    out = []
    for _ in range(n):
        number, params = sampler.ask()
        out.append(params)
        if tell:
            sampler.tell(number, objective(params) if "--drop" in params else 0.5)
    return out


def test_grid_hands_out_each_combination_once_then_is_exhausted(tmp_path):
    sampler = SweepSampler(GridParameterSampling(GRID), tmp_path, seed=3)
    seen = [combo(p) for p in run_sweep(sampler, 6, tell=False)]   # 6 asked at once, none finished yet
    seen += [combo(p) for p in run_sweep(sampler, 6)]
    expected = set(itertools.product([16, 32, 64], [True, False], ["adam", "sgd"]))
    assert len(seen) == 12 and set(seen) == expected
    assert sampler.exhausted
    with pytest.raises(SweepExhausted, match="all 12 grid combinations"):
        sampler.ask()


def test_grid_continues_after_a_restart_without_repeats(tmp_path):
    first = SweepSampler(GridParameterSampling(GRID), tmp_path, seed=1)
    before = run_sweep(first, 5)
    again = SweepSampler(GridParameterSampling(GRID), tmp_path)
    assert again.seed == 1 and len(again.trials()) == 5
    after = run_sweep(again, 7)
    assert len({combo(p) for p in before + after}) == 12
    with pytest.raises(SweepExhausted):
        again.ask()


def test_grid_warm_start_skips_combinations_already_run(tmp_path):
    sampler = SweepSampler(GridParameterSampling(GRID), tmp_path, seed=0)
    done = [({"--batch-size": 16, "--opt": "adam", "--bn": True}, 0.7, "run-a"),
            ({"--batch-size": "64", "--opt": "sgd", "--bn": False}, 0.6, "run-b")]   # text, as read from tags
    report = sampler.seed_trials(done)
    assert (report.seeded, report.already, report.skipped) == (2, 0, [])
    assert sampler.seed_trials(done).already == 2
    fresh = run_sweep(sampler, 10)
    assert {(True, 16, "adam"), (False, 64, "sgd")}.isdisjoint({combo(p) for p in fresh})
    with pytest.raises(SweepExhausted):
        sampler.ask()
    seeded = {t.seeded_from: t for t in sampler.trials() if t.seeded_from}
    assert seeded["run-a"].value == 0.7 and seeded["run-a"].state == "Completed"


def test_random_is_reproducible_with_a_seed_and_across_restarts(tmp_path):
    space = RandomParameterSampling(RANDOM)
    one_go = run_sweep(SweepSampler(space, tmp_path / "a", seed=7), 6)
    assert run_sweep(SweepSampler(space, tmp_path / "b", seed=7), 6) == one_go
    assert run_sweep(SweepSampler(space, tmp_path / "c", seed=8), 6) != one_go
    run_sweep(SweepSampler(space, tmp_path / "d", seed=7), 2)
    resumed = SweepSampler(space, tmp_path / "d")
    assert resumed.ask() == (2, one_go[2])


def test_random_seed_from_properties():
    space = RandomParameterSampling(RANDOM, properties={"seed": 11})
    assert SweepSampler(space).seed == 11
    assert run_sweep(SweepSampler(space), 3) == run_sweep(SweepSampler(space), 3)


def test_tpe_is_reproducible_and_learns_from_told_values(tmp_path):
    space = BayesianParameterSampling(BAYES)
    first = run_sweep(SweepSampler(space, tmp_path / "a", seed=5), 16)
    assert run_sweep(SweepSampler(space, tmp_path / "b", seed=5), 16) == first
    assert run_sweep(SweepSampler(space, tmp_path / "c", seed=6), 16) != first
    for params in first:
        assert params["--batch-size"] in (16, 32, 64) and 0 <= params["--drop"] <= 0.5
        assert params["--units"] % 32 == 0 and 32 <= params["--units"] <= 256


def test_tpe_warm_start_adds_completed_trials_before_asking():
    sampler = SweepSampler(BayesianParameterSampling(BAYES), None, seed=2, goal="maximize")
    earlier = [({"--batch-size": 32, "--drop": 0.2, "--units": 128}, 0.9, "c1"),
               ({"--batch-size": 16, "--drop": 0.4, "--units": 64}, float("nan"), "c2"),
               ({"--batch-size": 16, "--drop": 0.9, "--units": 64}, 0.1, "c3"),
               ({"--batch-size": 16, "--drop": 0.1}, 0.1, "c4")]
    report = sampler.seed_trials(earlier)
    assert report.seeded == 1 and len(report.skipped) == 3
    reasons = " | ".join(why for _, why in report.skipped)
    assert "no numeric primary metric" in reasons and "--drop=0.9 is not a value of uniform(0, 0.5)" in reasons
    assert "missing: ['--units']" in reasons
    number, _ = sampler.ask()
    assert number == 1
    assert [(t.number, t.seeded_from, t.value) for t in sampler.trials()][0] == (0, "c1", 0.9)


def test_journal_file_is_created_and_a_new_sampler_continues_numbering(tmp_path):
    space = RandomParameterSampling(RANDOM)
    sampler = SweepSampler(space, tmp_path / "parent-run", goal="minimize")
    assert (tmp_path / "parent-run" / JOURNAL_FILE).is_file() and sampler.journal_path.parent.name == "parent-run"
    numbers = [sampler.ask()[0] for _ in range(3)]
    sampler.tell(0, 0.4)
    sampler.tell(1, None, "Failed")
    sampler.tell(2, 0.9, "EarlyTerminated", interval=3)
    reloaded = SweepSampler(space, tmp_path / "parent-run", goal="minimize")
    assert reloaded.seed == sampler.seed
    assert numbers == [0, 1, 2] and reloaded.ask()[0] == 3
    states = [(t.number, t.state, t.value) for t in reloaded.trials()]
    assert states == [(0, "Completed", 0.4), (1, "Failed", None), (2, "EarlyTerminated", 0.9), (3, "Running", None)]
    assert [t.number for t in reloaded.running()] == [3]


def test_a_journal_of_another_sweep_is_refused_and_left_unchanged(tmp_path):
    SweepSampler(RandomParameterSampling(RANDOM), tmp_path, seed=1).ask()
    before = (tmp_path / JOURNAL_FILE).read_bytes()
    with pytest.raises(ValueError, match="belongs to another sweep"):
        SweepSampler(RandomParameterSampling({"--lr": uniform(0, 1)}), tmp_path)
    with pytest.raises(ValueError, match="belongs to another sweep"):
        SweepSampler(RandomParameterSampling(RANDOM), tmp_path, goal="minimize")
    with pytest.raises(ValueError, match="started with seed 1"):
        SweepSampler(RandomParameterSampling(RANDOM), tmp_path, seed=2)
    assert (tmp_path / JOURNAL_FILE).read_bytes() == before


def test_tell_rules():
    sampler = SweepSampler(RandomParameterSampling(RANDOM), None, seed=0)
    number, _ = sampler.ask()
    with pytest.raises(ValueError, match="state must be one of Completed, Failed, Canceled, EarlyTerminated"):
        sampler.tell(number, 0.5, "Done")
    sampler.tell(number, "n/a", "completed")    # a Completed child that logged no number: kept, without a value
    assert sampler.trials()[0].state == "Completed" and sampler.trials()[0].value is None
    with pytest.raises(ValueError, match="trial 0 was already told"):
        sampler.tell(number, 0.5)
    with pytest.raises(ValueError, match="no trial 9"):
        sampler.tell(9, 0.5)
    second, _ = sampler.ask()
    sampler.tell(second, None, "Canceled")
    assert sampler.trials()[1].state == "Canceled"


def test_bad_construction():
    with pytest.raises(TypeError, match="sampling must be RandomParameterSampling"):
        SweepSampler({"--lr": uniform(0, 1)})
    with pytest.raises(ValueError, match="primary_metric_goal must be"):
        SweepSampler(RandomParameterSampling(RANDOM), goal="upwards")
    with pytest.raises(TypeError, match=r"\(params, value\)"):
        SweepSampler(RandomParameterSampling(RANDOM)).seed_trials([{"--lr": 0.1}])


def test_storage_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        SweepSampler(RandomParameterSampling(RANDOM), tmp_path / "f")
