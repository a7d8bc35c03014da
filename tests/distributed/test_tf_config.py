"""Cluster specs, TF_CONFIG values and the port helpers."""
from __future__ import annotations

import json
import socket

import pytest

from mltrain_desktop.adapters import tf_cluster as tfc


def test_mpi_cluster_and_each_ranks_tf_config():
    cluster = tfc.mpi_cluster(["127.0.0.1:5000", "127.0.0.1:5001"])
    assert cluster == {"worker": ["127.0.0.1:5000", "127.0.0.1:5001"]}
    cfg = tfc.tf_config(cluster, "worker", 1)
    assert cfg == {"cluster": cluster, "task": {"type": "worker", "index": 1}}
    assert json.loads(tfc.tf_config_json(cluster, "worker", 0))["task"]["index"] == 0


def test_ps_cluster_tf_config_says_cloud():
    cluster = tfc.ps_cluster("127.0.0.1:1", ["127.0.0.1:2", "127.0.0.1:3"], ["127.0.0.1:4"])
    assert cluster == {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2", "127.0.0.1:3"], "ps": ["127.0.0.1:4"]}
    cfg = json.loads(tfc.tf_config_json(cluster, "ps", 0, environment="cloud"))
    assert cfg["task"] == {"type": "ps", "index": 0} and cfg["environment"] == "cloud"
    assert cfg["cluster"] == cluster
    # start order: servers first, the chief (which connects to them) last
    assert tfc.cluster_tasks(cluster) == [("ps", 0), ("worker", 0), ("worker", 1), ("chief", 0)]
    assert tfc.task_port(cluster, "worker", 1) == 3


def test_task_ranks_are_distinct_and_the_chief_is_zero():
    cluster = tfc.ps_cluster("h:1", ["h:2", "h:3"], ["h:4", "h:5"])
    ranks = {(t, i): tfc.task_rank(cluster, t, i) for t, i in tfc.cluster_tasks(cluster)}
    assert ranks[("chief", 0)] == 0
    assert ranks[("worker", 0)] == 1 and ranks[("worker", 1)] == 2
    assert ranks[("ps", 0)] == 3 and ranks[("ps", 1)] == 4


@pytest.mark.parametrize("task, index, words", [("chief", 0, "not in the cluster"), ("worker", 2, "out of range"),
                                                ("worker", -1, "out of range")])
def test_tf_config_rejects_unknown_tasks(task, index, words):
    with pytest.raises(ValueError, match=words):
        tfc.tf_config(tfc.mpi_cluster(["h:1", "h:2"]), task, index)


def test_clusters_need_their_tasks():
    with pytest.raises(ValueError):
        tfc.mpi_cluster([])
    with pytest.raises(ValueError):
        tfc.ps_cluster("h:1", [], ["h:2"])


def test_address_brackets_ipv6():
    assert tfc.address("127.0.0.1", 80) == "127.0.0.1:80"
    assert tfc.address("::1", 80) == "[::1]:80"


def test_allocated_ports_are_distinct_and_free():
    ports = tfc.allocate_ports(5)
    assert len(set(ports)) == 5
    for p in ports:
        tfc.check_port_free(p)
        with socket.socket() as s:  # bindable on loopback, where the cluster listens
            s.bind((tfc.LOOPBACK, p))


def test_a_taken_port_is_named_in_the_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(tfc.PortInUseError) as err:
            tfc.check_port_free(port, "worker 1")
        assert f"port {port} for worker 1 is already in use" in str(err.value)
        assert "base_port" in str(err.value)
        assert port in tfc.listening_ports()


@pytest.mark.parametrize("base, count", [(0, 2), (-5, 1), (65535, 2), ("9000", 1)])
def test_base_port_must_leave_room(base, count):
    with pytest.raises(tfc.PortInUseError):
        tfc.ports_from_base(base, count)


def test_ports_from_base():
    assert tfc.ports_from_base(23000, 3) == [23000, 23001, 23002]


def test_parse_proc_net_tcp():
    text = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n"
        "   1: 0100007F:1F91 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1\n"
        "   2: 00000000000000000000000000000000:2328 00000000000000000000000000000000:0000 0A 0:0 0 0 0 0 3\n"
    )
    assert tfc.parse_proc_net_tcp(text) == {8080, 9000}
