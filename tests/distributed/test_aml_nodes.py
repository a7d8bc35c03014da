"""node_count on an AmlCompute-made target without hosts: up to max_nodes "nodes" on this machine (real mpirun).

Each node is a group of process_count_per_node ranks named node-0, node-1, ... (MLTRAIN_NODE, the driver
log); mpirun runs them all on localhost and TF_CONFIG lists 127.0.0.1 ports.
"""
from __future__ import annotations

import shutil

import pytest

from mltrain_desktop.adapters import mpirun as mc
from mltrain_desktop.core import ComputeTarget, Experiment
from mltrain_desktop.core.compute import AmlCompute
from mltrain_desktop.core.runconfig import MpiConfiguration
from mltrain_desktop.engine.backends.base import PrepareError
from mltrain_desktop.engine.backends.mpi import check_node_count
from mltrain_desktop.train.dnn import TensorFlow

pytestmark = pytest.mark.mpi

NODE_JOB = """
import json, os
from mltrain_desktop.run import Run
run = Run.get_context()
tf = json.loads(os.environ["TF_CONFIG"])
me = tf["cluster"]["worker"][tf["task"]["index"]]
assert me.startswith("127.0.0.1:"), me
run.log("node", os.environ["MLTRAIN_NODE"])
run.log("index", tf["task"]["index"])
run.log("workers", len(tf["cluster"]["worker"]))
print("rank", os.environ["MLTRAIN_RANK"], "on", os.environ["MLTRAIN_NODE"], "at", me, flush=True)
"""


@pytest.fixture(autouse=True)
def _mpirun():
    if shutil.which("mpirun") is None:
        pytest.skip("Open MPI's mpirun is not installed (apt install openmpi-bin)")


def _aml_target(ws, name="cpu-cluster", max_nodes=2):
    t = ComputeTarget.create(ws, name, AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2",
                                                                             max_nodes=max_nodes))
    assert t.type == "AmlCompute" and t.provisioning_state == "Succeeded", t.state_detail
    return t


def _submit(ws, src, target, node_count, ppn=1):
    est = TensorFlow(source_directory=str(src), entry_script="job.py", compute_target=target,
                     node_count=node_count, process_count_per_node=ppn, distributed_training=MpiConfiguration())
    run = Experiment(ws, "aml-nodes").submit(est)
    run.wait_for_completion(show_output=False, raise_on_error=False, timeout=180)
    return run


def test_two_nodes_of_one_rank_each_run_on_this_machine(ws, make_script):
    target = _aml_target(ws)
    run = _submit(ws, make_script(NODE_JOB), target, node_count=2)
    log = run.read_log(max_bytes=1 << 22)[0]
    assert run.get_status() == "Completed", (run.get_details().get("error"), log)
    for rank in (0, 1):
        m = run.get_metrics(rank=rank)
        assert m["node"] == f"node-{rank}" and m["index"] == rank and m["workers"] == 2
    assert "AmlCompute nodes on this machine (max_nodes=2): node-0 = rank 0, node-1 = rank 1" in log
    assert "--host localhost:2" in log
    assert "[rank 1] rank 1 on node-1 at 127.0.0.1:" in log


def test_more_nodes_than_max_nodes_is_refused_naming_both_numbers(ws, make_script):
    target = _aml_target(ws, max_nodes=2)
    dist = {"kind": "mpi", "node_count": 3, "process_count_per_node": 1}
    with pytest.raises(PrepareError, match=r"node_count=3 but compute target 'cpu-cluster' has max_nodes=2"):
        check_node_count(target.as_dict(), dist)
    check_node_count(target.as_dict(), {**dist, "node_count": 2})  # fits
    from mltrain_desktop.core.compute_target import ComputeTargetException
    before = len(list(ws.experiments["aml-nodes"].get_runs())) if "aml-nodes" in ws.experiments else 0
    with pytest.raises(ComputeTargetException, match=r"node_count=3 but compute target 'cpu-cluster' has max_nodes=2"):
        _submit(ws, make_script(NODE_JOB), target, node_count=3)  # refused at submit: nothing is stored
    after = len(list(ws.experiments["aml-nodes"].get_runs())) if "aml-nodes" in ws.experiments else 0
    assert after == before


def test_a_target_with_hosts_keeps_its_hosts():
    """An AmlCompute-style config that lists hosts uses them (plan_nodes), not nodes on this machine."""
    hosts = mc.parse_hosts(["node1:2", "node2:2"])
    assert mc.plan_nodes(hosts, 2, 1) == [mc.HostSlots("node1", 1), mc.HostSlots("node2", 1)]
    check_node_count({"kind": "local", "name": "t", "config": {"azure_type": "AmlCompute", "hosts": ["a:1"],
                                                                "max_concurrent_runs": 1}},
                     {"kind": "mpi", "node_count": 2, "process_count_per_node": 1})  # hosts decide there


def test_machine_nodes_layout_and_its_errors():
    nodes, names = mc.machine_nodes(2, 2, max_nodes=2, slots=4)
    assert nodes == [mc.HostSlots("localhost", 4)] and names == ["node-0", "node-0", "node-1", "node-1"]
    assert mc.rank_hosts(nodes) == ["localhost"] * 4
    with pytest.raises(mc.HostsError, match=r"node_count=3 but the compute target has max_nodes=2"):
        mc.machine_nodes(3, 1, max_nodes=2, slots=8)
    with pytest.raises(mc.HostsError, match=r"2 node\(s\) x 2 rank\(s\) = 4 ranks on this machine, which has 2"):
        mc.machine_nodes(2, 2, max_nodes=2, slots=2)
    assert mc.machine_nodes(2, 2, max_nodes=2, slots=2, oversubscribe=True)[0] == [mc.HostSlots("localhost", 4)]
    with pytest.raises(mc.HostsError, match="node_count must be a whole number"):
        mc.machine_nodes(0, 1, max_nodes=2, slots=2)


def test_mpirun_found_through_a_symlinked_bin_folder_gets_its_real_folder(monkeypatch):
    """/bin/mpirun on a merged-/usr system made Open MPI take "/" for its prefix and refuse to start."""
    import os
    from mltrain_desktop.engine.backends.mpi import find_mpirun
    if not os.path.islink("/bin") or not os.path.exists("/bin/mpirun"):
        pytest.skip("needs /bin as a symlink (merged /usr) with mpirun in it")
    monkeypatch.setenv("PATH", "/bin:/usr/bin")
    path = find_mpirun({})
    assert os.path.dirname(path) == os.path.realpath("/bin") and os.path.basename(path) == "mpirun"
