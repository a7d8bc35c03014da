"""Parsing Slurm's output (captured from the test cluster, Slurm 22.05), the state mapping and error words."""
from __future__ import annotations

import pytest

from mltrain_desktop.adapters.slurm import parse, states
from mltrain_desktop.adapters.slurm.commands import classify
from mltrain_desktop.domain.run_state import RunStatus

SINFO_NODES = """node1|debug*|idle|2|(null)|1024
node1|single|idle|2|(null)|1024
node2|debug*|mixed|2|gpu:a100:4(S:0-1),shard:8|1024
"""
PARTITIONS = (
    "PartitionName=debug AllowGroups=ALL Default=YES MaxNodes=UNLIMITED MaxTime=01:00:00 Nodes=node[1-2] "
    "State=UP TotalCPUs=4 TotalNodes=2 JobDefaults=(null) TRES=cpu=4,mem=2G,node=2,billing=4\n"
    "PartitionName=single AllowGroups=ALL Default=NO MaxNodes=1 MaxTime=00:10:00 Nodes=node1 State=UP "
    "TotalCPUs=2 TotalNodes=1\n")
CONFIG = """Configuration data as of 2026-12-03T06:10:45
AccountingStorageType   = accounting_storage/slurmdbd
ClusterName             = mltrain
SlurmctldHost[0]        = slurmctld
SLURM_VERSION           = 22.05.8
"""
MUNGE = ('sinfo: error: If munged is up, restart with --num-threads=10\nsinfo: error: Munge encode failed: Failed '
         'to access "/nonexistent": No such file or directory (Did you start munged?)\nslurm_load_partitions: '
         'Protocol authentication error\n')


def test_nodes_merge_partitions_and_count_gpus():
    nodes = parse.nodes(SINFO_NODES)
    assert [n["name"] for n in nodes] == ["node1", "node2"]
    assert nodes[0]["partitions"] == ["debug", "single"] and nodes[0]["cpus"] == 2
    assert nodes[0]["gpus"] == 0 and nodes[1]["gpus"] == 4 and nodes[1]["memory_mb"] == 1024


@pytest.mark.parametrize("gres,count", [("(null)", 0), ("gpu:2", 2), ("gpu:a100:4(S:0-1)", 4),
                                        ("gpu:t4:1,gpu:a100:2", 3), ("shard:8", 0), ("gpu", 1)])
def test_gpu_count(gres, count):
    assert parse.gpu_count(gres) == count


def test_partitions():
    debug, single = parse.partitions(PARTITIONS)
    assert debug == {"name": "debug", "default": True, "state": "UP", "nodes": "node[1-2]", "total_nodes": 2,
                     "total_cpus": 4, "max_nodes": None, "max_time": "01:00:00"}
    assert single["max_nodes"] == 1 and not single["default"]


def test_config_and_job_ids():
    conf = parse.config(CONFIG)
    assert conf["ClusterName"] == "mltrain" and conf["SLURM_VERSION"] == "22.05.8"
    assert conf["SlurmctldHost[0]"] == "slurmctld"
    assert parse.sbatch_job_id("12\n") == "12"
    assert parse.sbatch_job_id("13;mltrain\n") == "13"
    assert parse.sbatch_job_id("Submitted batch job 14\n") == "14"
    with pytest.raises(ValueError, match="no job id"):
        parse.sbatch_job_id("sbatch: error: something\n")


def test_squeue_and_sacct_lines():
    assert parse.squeue_job("2|PENDING|PartitionConfig|\n3|RUNNING|None|node[1-2]\n", "3") == {
        "state": "RUNNING", "reason": "None", "nodes": "node[1-2]"}
    assert parse.squeue_job("", "3") is None
    acct = "1|CANCELLED by 0|0:0|PartitionConfig|None assigned\n4|FAILED|1:0|None|node1\n"
    assert parse.sacct_job(acct, "1")["state"] == "CANCELLED by 0"
    assert parse.sacct_job(acct, "4") == {"state": "FAILED", "exit_code": "1:0", "reason": "None", "nodes": "node1"}
    assert parse.sacct_job(acct, "9") is None


@pytest.mark.parametrize("value,ok", [("30", True), ("10:00", True), ("01:00:00", True), ("2-00", True),
                                      ("1-12:30:00", True), ("UNLIMITED", True), ("1h", False), ("", False),
                                      ("10:00; rm -rf /", False)])
def test_time_limits(value, ok):
    assert parse.valid_time_limit(value) is ok


@pytest.mark.parametrize("slurm,ours", [
    ("PENDING", RunStatus.QUEUED), ("CONFIGURING", RunStatus.QUEUED), ("RUNNING", RunStatus.RUNNING),
    ("COMPLETING", RunStatus.RUNNING), ("COMPLETED", RunStatus.COMPLETED), ("FAILED", RunStatus.FAILED),
    ("CANCELLED by 0", RunStatus.CANCELED), ("TIMEOUT", RunStatus.FAILED), ("NODE_FAIL", RunStatus.FAILED),
    ("OUT_OF_MEMORY", RunStatus.FAILED), ("PREEMPTED", RunStatus.FAILED), ("COMPLETED+", RunStatus.COMPLETED)])
def test_state_mapping(slurm, ours):
    assert states.run_status(slurm) == ours


def test_descriptions_carry_the_reason_and_the_nodes():
    assert states.describe("PENDING", "Resources") == "PENDING (Resources)"
    assert states.describe("RUNNING", "None", "node[1-2]") == "RUNNING on node[1-2]"
    text = states.describe("NODE_FAIL", "None", "node2", "0:0")
    assert text.startswith("NODE_FAIL on node2") and "node of the job failed" in text
    assert "time limit" in states.describe("TIMEOUT")
    assert "memory" in states.describe("OUT_OF_MEMORY", exit_code="0:125")


@pytest.mark.parametrize("state,code,rc", [("COMPLETED", "0:0", 0), ("FAILED", "3:0", 3), ("FAILED", "0:9", 137),
                                           ("TIMEOUT", "0:0", 1), ("CANCELLED by 0", "0:15", 143)])
def test_exit_status(state, code, rc):
    assert states.exit_status(state, code) == rc


def test_errors_say_what_failed_and_what_to_do():
    e = classify("login", ["sinfo"], 1, MUNGE, True)
    assert e.kind == "auth" and "munge.key" in str(e) and "Did you start munged?" in str(e)
    e = classify("h.invalid", ["sinfo"], 255, "ssh: Could not resolve hostname h.invalid: Name or service not known",
                 True)
    assert e.kind == "unreachable" and "login_host" in str(e)
    e = classify("login", ["sinfo"], 1, "sinfo: error: Unable to contact slurm controller (connect failure)", True)
    assert e.kind == "controller" and "scontrol ping" in str(e)
    e = classify("this machine", ["sinfo"], 127, "bash: sinfo: command not found", False)
    assert e.kind == "missing" and "slurm-client" in str(e)
    e = classify("login", ["sbatch"], 1, "sbatch: error: Batch job submission failed: Invalid account", True)
    assert e.kind == "slurm" and "Invalid account" in str(e)


def test_down_nodes():
    assert parse.down_nodes("node2|Not responding\nnode[3-4]|maintenance by admin\n") == [
        ("node2", "Not responding"), ("node[3-4]", "maintenance by admin")]
    assert parse.down_nodes("") == []


def test_scontrol_job_line():
    line = ("JobId=1 JobName=wrap UserId=root(0) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) "
            "ExitCode=3:0 RunTime=00:00:00 NodeList=node1 BatchHost=node1 NumNodes=1 Power= \n")
    assert parse.scontrol_job(line, "1") == {"state": "FAILED", "exit_code": "3:0", "reason": "NonZeroExitCode",
                                             "nodes": "node1"}
    assert parse.scontrol_job(line, "2") is None
