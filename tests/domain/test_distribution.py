"""The one validation of distribution settings: kinds, counts, the estimator's overrides, the startup timeout."""
from __future__ import annotations

import pytest

from mltrain_desktop.domain.distribution import (
    DistributionError, MpiDistribution, PsDistribution, startup_timeout_s, validate_distribution, with_counts)
from mltrain_desktop.domain.errors import UserErrorException


def test_mpi_settings_become_ranks():
    d = validate_distribution({"kind": "mpi", "process_count_per_node": 2, "node_count": 3})
    assert d == MpiDistribution(process_count_per_node=2, node_count=3)
    assert d.rank_count == 6 and d.tasks() == [(None, r) for r in range(6)]
    assert d.to_dict() == {"kind": "mpi", "process_count_per_node": 2, "node_count": 3}
    assert validate_distribution({"kind": "mpi"}).to_dict() == {"kind": "mpi", "process_count_per_node": 1,
                                                                "node_count": 1}


def test_ps_settings_become_tasks_in_start_order():
    d = validate_distribution({"kind": "parameter_server", "worker_count": 2, "parameter_server_count": 1})
    assert d == PsDistribution(worker_count=2, parameter_server_count=1)
    assert d.tasks() == [("ps", 0), ("worker", 0), ("worker", 1), ("chief", 0)]
    assert d.to_dict() == {"kind": "parameter_server", "worker_count": 2, "parameter_server_count": 1}


def test_from_settings_reads_counts_whatever_the_kind_says():
    assert MpiDistribution.from_settings(None) == MpiDistribution(1, 1)
    assert MpiDistribution.from_settings({"node_count": 2}).rank_count == 2
    assert PsDistribution.from_settings({"worker_count": 3}).worker_count == 3


@pytest.mark.parametrize("settings", [None, {}])
def test_no_settings_is_one_process(settings):
    assert validate_distribution(settings) is None


@pytest.mark.parametrize("settings, message", [
    ({"kind": "mpi", "process_count_per_node": 0}, "process_count_per_node must be a whole number of at least 1, got 0"),
    ({"kind": "mpi", "node_count": -1}, "node_count must be a whole number of at least 1, got -1"),
    ({"kind": "mpi", "node_count": 2.0}, "node_count must be a whole number of at least 1, got 2.0"),
    ({"kind": "mpi", "process_count_per_node": 0, "node_count": 0}, "process_count_per_node must be"),
    ({"kind": "parameter_server", "worker_count": 0}, "worker_count must be a whole number of at least 1, got 0"),
    ({"kind": "parameter_server", "parameter_server_count": True},
     "parameter_server_count must be a whole number of at least 1, got True"),
    ({"kind": "parameter_server", "worker_count": "2"}, "worker_count must be a whole number of at least 1, got '2'"),
    ({"kind": "horovod"}, "unknown distribution kind 'horovod'; use 'mpi' or 'parameter_server'"),
    ({"node_count": 2}, "unknown distribution kind None; use 'mpi' or 'parameter_server'"),
    (["mpi"], "distribution settings must be a dict"),
])
def test_bad_settings_say_what_was_wrong(settings, message):
    with pytest.raises(DistributionError) as err:
        validate_distribution(settings)
    assert str(err.value).startswith(message)
    assert isinstance(err.value, ValueError) and isinstance(err.value, UserErrorException)


def test_the_types_check_themselves():
    with pytest.raises(DistributionError, match="node_count must be a whole number of at least 1, got 0"):
        MpiDistribution(1, 0)
    with pytest.raises(DistributionError, match="worker_count must be"):
        PsDistribution(worker_count=-3)


def test_the_estimators_counts_override_mpi_counts():
    base = MpiDistribution(process_count_per_node=2, node_count=1)
    assert with_counts(base, 1, 1) == base
    assert with_counts(base, node_count=3) == MpiDistribution(2, 3)
    assert with_counts(base, process_count_per_node=4) == MpiDistribution(4, 1)
    assert with_counts(base, None, None) == base
    ps = PsDistribution(2, 1)
    assert with_counts(ps, node_count=5, process_count_per_node=3) is ps  # a PS job has no such counts
    assert with_counts(None, 1, 1) is None and with_counts(None, None, None) is None


def test_bad_estimator_counts():
    with pytest.raises(DistributionError, match="process_count_per_node must be a whole number of at least 1, got 0"):
        with_counts(MpiDistribution(), process_count_per_node=0)
    with pytest.raises(DistributionError, match="node_count must be a whole number of at least 1, got -2"):
        with_counts(MpiDistribution(), node_count=-2)
    for kw in ({"node_count": 2}, {"process_count_per_node": 3}, {"node_count": 0}):
        with pytest.raises(DistributionError) as err:
            with_counts(None, **kw)
        assert str(err.value) == ("node_count/process_count_per_node need distributed_training=MpiConfiguration() "
                                  "or TensorflowConfiguration()")


def test_the_startup_timeout():
    assert startup_timeout_s({}) == 120.0 and startup_timeout_s(None) == 120.0
    assert startup_timeout_s({"startup_timeout_s": 4}) == 4.0
    assert startup_timeout_s({"startup_timeout_s": 0.5}) == 0.5
    for bad in ("soon", 0, -1, True, None):
        with pytest.raises(DistributionError) as err:
            startup_timeout_s({"startup_timeout_s": bad})
        assert str(err.value) == ("startup_timeout_s in the compute target's config must be a positive number "
                                  f"of seconds, got {bad!r}")
