"""The slurm kind's settings: what SlurmCompute.provisioning_configuration records and validate refuses."""
from __future__ import annotations

import pytest

from mltrain_desktop.adapters.slurm.commands import Runner
from mltrain_desktop.core.compute import KIND_MODULES, ComputeTarget
from mltrain_desktop.core.compute_slurm import SlurmCompute, validate
from mltrain_desktop.core.compute_target import ComputeTargetException


def test_configuration_keeps_only_what_was_given():
    cfg = SlurmCompute.provisioning_configuration(partition="gpu", nodes_max=4, time_limit="30")
    assert cfg.kind == "slurm" and KIND_MODULES["slurm"] == "mltrain_desktop.core.compute_slurm"
    assert cfg.to_dict() == {"partition": "gpu", "nodes_max": 4, "time_limit": "30", "max_concurrent_runs": 4}
    assert validate(cfg.to_dict()) == cfg.to_dict()


@pytest.mark.parametrize("change,match", [
    ({"partition": "a;b"}, "partition"), ({"account": ""}, "account"), ({"nodes_max": 0}, "nodes_max"),
    ({"gres_gpu": -1}, "gres_gpu"), ({"gres_gpu": True}, "gres_gpu"), ({"time_limit": "soon"}, "time_limit"),
    ({"login_host": "-oProxyCommand=x"}, "login_host"), ({"login_host": "a b"}, "login_host"),
    ({"ssh_key": "/no/such/key"}, "ssh_key"), ({"shared_workspace": "relative/dir"}, "absolute"),
    ({"base_port": 80}, "base_port"), ({"sbatch_args": "--qos=x"}, "sbatch_args"),
    ({"max_concurrent_runs": 0}, "max_concurrent_runs")])
def test_bad_settings_are_refused_naming_them(change, match):
    with pytest.raises(ValueError, match=match):
        validate(change)


def test_create_refuses_bad_settings_and_stores_nothing(ws):
    with pytest.raises(ComputeTargetException, match="nodes_max"):
        ComputeTarget.create(ws, "c", SlurmCompute.provisioning_configuration(nodes_max=0))
    assert "c" not in ComputeTarget.list(ws)


def test_remote_commands_are_one_quoted_string():
    r = Runner({"login_host": "me@login", "ssh_key": "/k", "ssh_config": "/c"})
    argv = r.argv(["sbatch", "--output=/a b/driver.log", "/a b/job.sh"])
    assert argv[:2] == ["ssh", "-o"] and argv[-3:] == ["me@login", "--",
                                                       "sbatch '--output=/a b/driver.log' '/a b/job.sh'"]
    assert ["-F", "/c"] == argv[argv.index("-F"):argv.index("-F") + 2]
    assert Runner({}).argv(["sinfo"]) == ["sinfo"]


def test_a_login_host_lost_mid_run_is_said_once_and_the_job_kept(tmp_path):
    """Polling through an unreachable login host neither fails nor ends the run: it says so, once."""
    from mltrain_desktop.engine.backends import slurm as backend
    lines = []
    handle = backend.SlurmJobHandle(Runner({"login_host": "no-such-host.invalid"}), "12", tmp_path, lines.append)
    for _ in range(2):
        handle._next_poll = 0.0
        assert handle.poll() is None
    assert len(lines) == 1 and "cannot reach the Slurm login host no-such-host.invalid" in lines[0]
    assert handle.state()["job_id"] == "12"
