"""The mpirun command line and the hosts/slots rules, as values (nothing is started)."""
from __future__ import annotations

import pytest

from mltrain_desktop.adapters import mpirun as mc
from mltrain_desktop.adapters.mpirun import HostSlots, HostsError

PROGRAM = ["/venv/bin/python", "-m", "mltrain_desktop.engine.rank_launcher", "--logs-dir", "/r/logs",
           "--", "train.py", "--epochs", "2"]


# -- hosts ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    (None, []),
    ([], []),
    ([{"host": "node1", "slots": 2}, {"host": "node2", "slots": 4}], [HostSlots("node1", 2), HostSlots("node2", 4)]),
    ([{"host": "node1"}], [HostSlots("node1", 1)]),
    (["node1:2", "10.0.0.7:3"], [HostSlots("node1", 2), HostSlots("10.0.0.7", 3)]),
    ([("node1", 2)], [HostSlots("node1", 2)]),
    ("node1:2, node2:2", [HostSlots("node1", 2), HostSlots("node2", 2)]),
    ("# an Open MPI hostfile\nnode1 slots=2\nnode2 slots=4  # big one\n\n",
     [HostSlots("node1", 2), HostSlots("node2", 4)]),
    ([{"host": "gpu-box_3.lan", "slots": "2"}], [HostSlots("gpu-box_3.lan", 2)]),
])
def test_parse_hosts_accepts_the_documented_forms(value, expected):
    assert mc.parse_hosts(value) == expected


@pytest.mark.parametrize("value, words", [
    ([{"host": "node1", "slots": 0}], ["node1", "slots", "at least 1"]),
    ([{"host": "node1", "slots": -2}], ["slots", "-2"]),
    ([{"host": "node1", "slots": True}], ["slots"]),
    ([{"host": "node1", "slots": 1.5}], ["slots"]),
    (["node1:two"], ["slots", "two"]),
    ([{"host": "-oProxyCommand=evil", "slots": 1}], ["not a host name"]),
    ([{"host": "a b", "slots": 1}], ["not a host name"]),
    ([{"host": "", "slots": 1}], ["not a host name"]),
    ([{"slots": 2}], ["no 'host'"]),
    ([{"host": "n1", "slots": 1, "gpus": 2}], ["unknown key", "gpus"]),
    ([{"host": "n1", "slots": 1}, "n1:2"], ["listed twice"]),
    (42, ["hosts must be a list"]),
    ([3.5], ["host entry"]),
])
def test_parse_hosts_rejects_bad_input_with_a_clear_message(value, words):
    with pytest.raises(HostsError) as err:
        mc.parse_hosts(value)
    for w in words:
        assert w in str(err.value)


def test_local_host_names():
    assert mc.is_local_host("localhost") and mc.is_local_host("127.0.0.1")
    assert not mc.is_local_host("node1")
    assert mc.is_local_host("mybox", local_names={"mybox"})


# -- slots ------------------------------------------------------------------------------------
def test_plan_takes_the_first_hosts_with_the_asked_ranks_each():
    hosts = [HostSlots("a", 4), HostSlots("b", 2), HostSlots("c", 8)]
    assert mc.plan_nodes(hosts, 2, 2) == [HostSlots("a", 2), HostSlots("b", 2)]
    assert mc.rank_hosts(mc.plan_nodes(hosts, 2, 2)) == ["a", "a", "b", "b"]


def test_more_ranks_than_slots_is_refused_unless_oversubscribe():
    with pytest.raises(HostsError) as err:
        mc.plan_nodes([HostSlots("localhost", 2)], 1, 3)
    msg = str(err.value)
    assert "3 rank(s) per node" in msg and "localhost has 2" in msg and "oversubscribe" in msg
    assert mc.plan_nodes([HostSlots("localhost", 2)], 1, 3, oversubscribe=True) == [HostSlots("localhost", 3)]


def test_more_nodes_than_hosts_is_refused():
    with pytest.raises(HostsError) as err:
        mc.plan_nodes([HostSlots("localhost", 2)], 2, 1)
    assert "node_count=2" in str(err.value) and "1 host(s)" in str(err.value)
    assert "this machine alone" in str(err.value)


@pytest.mark.parametrize("nodes, ppn", [(0, 1), (1, 0), (-1, 2), (1, -3), (True, 1), (1, 2.0)])
def test_zero_or_negative_counts_are_refused(nodes, ppn):
    with pytest.raises(HostsError, match="at least 1"):
        mc.plan_nodes([HostSlots("a", 4)], nodes, ppn)


# -- the command --------------------------------------------------------------------------------
def test_single_machine_command():
    argv = mc.build_mpirun_command(PROGRAM, nodes=[HostSlots("localhost", 2)],
                                   forward_env=["PYTHONPATH", "MLTRAIN_RUN_ID", "PYTHONPATH"],
                                   as_root=False, workdir="/r/snapshot")
    assert argv[0] == "mpirun"
    assert "--allow-run-as-root" not in argv
    assert argv[argv.index("-np") + 1] == "2"
    assert argv[argv.index("--host") + 1] == "localhost:2"
    assert argv[argv.index("--map-by") + 1] == "slot"
    assert argv[argv.index("--bind-to") + 1] == "none"
    assert argv[argv.index("--wdir") + 1] == "/r/snapshot"
    # each variable forwarded once, by name (values stay out of the command line)
    xs = [argv[i + 1] for i, a in enumerate(argv) if a == "-x"]
    assert xs == ["PYTHONPATH", "MLTRAIN_RUN_ID"]
    assert argv[-len(PROGRAM):] == PROGRAM
    for flag in ("--tag-output", "--output-filename", "--oversubscribe", "--mca"):
        assert flag not in argv


def test_root_multi_host_command_with_options():
    nodes = mc.plan_nodes(mc.parse_hosts("node1:4,node2:4"), 2, 2)
    argv = mc.build_mpirun_command(PROGRAM, nodes=nodes, forward_env=["A"], as_root=True,
                                   mpirun="/usr/bin/mpirun", oversubscribe=True, tag_output=True,
                                   output_filename="/r/logs/mpi", ssh_args=mc.default_ssh_args(7),
                                   extra_args=["--mca", "btl_tcp_if_include", "eth0"])
    assert argv[:2] == ["/usr/bin/mpirun", "--allow-run-as-root"]
    assert argv[argv.index("-np") + 1] == "4"
    assert argv[argv.index("--host") + 1] == "node1:2,node2:2"
    assert "--oversubscribe" in argv and "--tag-output" in argv
    assert argv[argv.index("--output-filename") + 1] == "/r/logs/mpi"
    i = argv.index("plm_rsh_args")
    assert argv[i - 1] == "--mca" and argv[i + 1] == "-o BatchMode=yes -o ConnectTimeout=7"
    assert argv[-len(PROGRAM) - 3:-len(PROGRAM)] == ["--mca", "btl_tcp_if_include", "eth0"]


def test_command_rejects_bad_input():
    with pytest.raises(ValueError, match="not a valid name"):
        mc.build_mpirun_command(PROGRAM, nodes=[HostSlots("localhost", 1)], forward_env=["A=B"])
    with pytest.raises(ValueError, match="no program"):
        mc.build_mpirun_command([], nodes=[HostSlots("localhost", 1)])
    with pytest.raises(HostsError):
        mc.build_mpirun_command(PROGRAM, nodes=[])


def test_ssh_probe_never_prompts_and_gives_up_fast():
    cmd = mc.ssh_probe_command("node1", 3)
    assert cmd[0] == "ssh" and cmd[-2:] == ["node1", "true"]
    assert "BatchMode=yes" in cmd and "ConnectTimeout=3" in cmd
    with pytest.raises(HostsError):
        mc.ssh_probe_command("-oProxyCommand=x")


def test_display_quotes_for_a_shell():
    assert mc.display(["mpirun", "-x", "A", "python", "a b.py"]) == "mpirun -x A python 'a b.py'"
