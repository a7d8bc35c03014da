"""Every place that takes distribution settings (SDK types, run spec, process backends) says what the domain says."""
from __future__ import annotations

import pytest

from mltrain_desktop.core.errors import UserErrorException
from mltrain_desktop.core.run_spec import distribution_spec
from mltrain_desktop.core.runconfig import MpiConfiguration, TensorflowConfiguration, distribution_from_dict
from mltrain_desktop.domain.distribution import DistributionError, MpiDistribution, PsDistribution, validate_distribution
from mltrain_desktop.domain.errors import PrepareError
from mltrain_desktop.engine.backends.mpi import MpiBackend, checked_distribution, startup_timeout
from mltrain_desktop.engine.backends.parameter_server import ParameterServerBackend
from mltrain_desktop.engine.backends.docker_cluster import DockerMpiBackend, DockerParameterServerBackend

BAD = [({"kind": "mpi", "process_count_per_node": 0}, "process_count_per_node must be a whole number of at least 1, got 0"),
       ({"kind": "mpi", "node_count": True}, "node_count must be a whole number of at least 1, got True"),
       ({"kind": "parameter_server", "worker_count": -1}, "worker_count must be a whole number of at least 1, got -1"),
       ({"kind": "parameter_server", "parameter_server_count": 1.5},
        "parameter_server_count must be a whole number of at least 1, got 1.5")]


class _Ctx:
    def __init__(self, distribution):
        self.distribution = distribution


@pytest.mark.parametrize("settings, message", BAD)
def test_the_same_message_everywhere(settings, message):
    with pytest.raises(DistributionError) as domain:
        validate_distribution(settings)
    assert str(domain.value) == message
    for sdk in (lambda: distribution_from_dict(settings), lambda: distribution_spec(settings)):
        with pytest.raises(ValueError) as err:  # the seed's SDK raised ValueError here: it still does
            sdk()
        assert str(err.value) == message and isinstance(err.value, UserErrorException)
    backend = (MpiBackend if settings["kind"] == "mpi" else ParameterServerBackend)({"name": "local", "config": {}})
    with pytest.raises(PrepareError) as err:
        backend._distribution(_Ctx(settings))
    assert str(err.value) == message
    # the container backends (one container per rank or task) read the same checked value
    docker = (DockerMpiBackend if settings["kind"] == "mpi" else DockerParameterServerBackend)(
        {"name": "docker1", "config": {"base_url": "tcp://127.0.0.1:9"}})  # no engine is asked
    with pytest.raises(PrepareError) as err:
        docker.tasks(_Ctx(settings))
    assert str(err.value) == message


def test_the_sdk_types_and_the_estimators_counts():
    with pytest.raises(ValueError, match="^process_count_per_node must be a whole number of at least 1, got 0$"):
        MpiConfiguration(process_count_per_node=0)
    with pytest.raises(ValueError, match="^parameter_server_count must be a whole number of at least 1, got -2$"):
        TensorflowConfiguration(parameter_server_count=-2)
    mpi = MpiConfiguration(process_count_per_node=2)
    assert distribution_spec(mpi, node_count=3) == {"kind": "mpi", "process_count_per_node": 2, "node_count": 3}
    assert distribution_spec(mpi, process_count_per_node=4)["process_count_per_node"] == 4
    assert distribution_spec(TensorflowConfiguration(2, 1), node_count=2) == {
        "kind": "parameter_server", "worker_count": 2, "parameter_server_count": 1}
    assert distribution_spec(None) is None and distribution_spec({}) is None
    with pytest.raises(UserErrorException, match="^node_count/process_count_per_node need distributed_training="):
        distribution_spec(None, node_count=2)
    with pytest.raises(UserErrorException, match="^distributed_training must be MpiConfiguration"):
        distribution_spec("mpi")
    with pytest.raises(UserErrorException, match="^unknown distribution kind 'horovod'"):
        distribution_spec({"kind": "horovod"})
    assert isinstance(distribution_from_dict({"kind": "mpi", "node_count": 2}), MpiConfiguration)
    assert distribution_from_dict(None) is None


def test_the_backends_read_counts_and_timeouts_through_the_domain():
    docker = {"name": "docker1", "config": {}}
    assert DockerMpiBackend(docker).tasks(_Ctx({"kind": "mpi", "process_count_per_node": 2, "node_count": 2})) == \
        MpiDistribution(2, 2).tasks()
    assert DockerParameterServerBackend(docker).distribution(_Ctx(None)) == PsDistribution()
    assert checked_distribution({"process_count_per_node": 3}, MpiDistribution).rank_count == 3
    assert checked_distribution(None, PsDistribution).tasks() == [("ps", 0), ("worker", 0), ("chief", 0)]
    assert MpiBackend({"name": "local"})._distribution(_Ctx({"kind": "mpi", "node_count": 2})) == (2, 1)
    assert startup_timeout({"startup_timeout_s": 7}) == 7.0
    with pytest.raises(PrepareError, match="^startup_timeout_s in the compute target's config must be a positive"):
        startup_timeout({"startup_timeout_s": "soon"})
