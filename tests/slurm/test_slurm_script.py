"""The batch script: directives from the run and the target, quoting fuzzed, task and host mapping.

The script is run by a real bash with stand-ins for ``srun`` and ``scontrol`` on PATH (no Slurm
needed): ``srun`` runs its command once per task with ``SLURM_PROCID`` set, ``scontrol show
hostnames`` prints the node names. What reaches the job (its argv, environment, folder) must be
exactly what was asked for, whatever the text.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mltrain_desktop.adapters.slurm.job import DoesNotFit, check_fits, slurm_job
from mltrain_desktop.adapters.slurm.script import ScriptError, SlurmJob, batch_script, sbatch_arguments

SRUN = r'''#!/bin/bash
# stand-in for srun: drop its options, run the command once per task
n=1
while [[ $1 == --* ]]; do [[ $1 == --ntasks=* ]] && n=${1#--ntasks=}; shift; done
rc=0
for ((t = 0; t < n; t++)); do SLURM_PROCID=$t "$@" || rc=$?; done
exit $rc
'''
SCONTROL = '#!/bin/bash\n[ "$1 $2" = "show hostnames" ] && tr "," "\\n" <<< "$3"\n'
DUMP = textwrap.dedent('''\
    import json, os, sys
    out = os.environ["DUMP_TO"] + "." + os.environ.get("SLURM_PROCID", "0")
    json.dump({"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}, open(out, "w"))
''')


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    d = tmp_path_factory.mktemp("bin")
    for name, body in (("srun", SRUN), ("scontrol", SCONTROL)):
        (d / name).write_text(body)
        (d / name).chmod(0o755)
    return d


def run_script(script: str, tmp: Path, stand_ins: Path, nodelist="node1", tasks_per_node="1") -> list[dict]:
    path = tmp / "job.sh"
    path.write_text(script)
    env = {"PATH": f"{stand_ins}:{os.environ['PATH']}", "SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": nodelist,
           "SLURM_TASKS_PER_NODE": tasks_per_node, "DUMP_TO": str(tmp / "out")}
    done = subprocess.run(["bash", str(path)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [json.loads(p.read_text()) for p in sorted(tmp.glob("out.*"))]


def job(**kw) -> SlurmJob:
    base = dict(job_name="mltrain-r1", workdir="/w", logs_dir="/w/logs", interpreter=sys.executable,
                entry_script="dump.py")
    return SlurmJob(**{**base, **kw})


SPEC = {"distribution": None, "use_gpu": False, "environment": {"python": None}}


def from_spec(spec, config):
    return slurm_job({**SPEC, **spec}, config, run_id="e_1", workdir="/ws/runs/e_1/snapshot",
                     logs_dir="/ws/runs/e_1/logs", jobkit_dir="/ws/jobkit/k", entry_script="train.py",
                     arguments=["--lr", "0.1"], environment={"MLTRAIN_RUN_ID": "e_1"})


def test_directives_from_the_run_and_the_target():
    j = from_spec({"distribution": {"kind": "mpi", "node_count": 2, "process_count_per_node": 3}, "use_gpu": True},
                  {"partition": "gpu", "account": "ml-team", "time_limit": "1-00:00:00"})
    s = batch_script(j)
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=3", "#SBATCH --gres=gpu:3",
                 "#SBATCH --partition=gpu", "#SBATCH --account=ml-team", "#SBATCH --time=1-00:00:00",
                 "#SBATCH --job-name=mltrain-e_1"):
        assert line in s.splitlines()
    assert "srun --ntasks=6 --kill-on-bad-exit=1 --ntasks-per-node=3" in s
    assert "--rank \"$SLURM_PROCID\"" in s and "export PYTHONPATH=/ws/jobkit/k" in s
    plain = batch_script(from_spec({}, {"gres_gpu": 2}))
    assert "--gres" not in plain and "--partition" not in plain and "#SBATCH --nodes=1" in plain
    assert "#SBATCH --gres=gpu:2" in batch_script(from_spec({"use_gpu": True}, {"gres_gpu": 2}))
    assert j.interpreter == "python3"
    assert from_spec({"environment": {"python": "/opt/py/bin/python"}}, {"python": "/x"}).interpreter == \
        "/opt/py/bin/python"


def test_parameter_server_roles_follow_the_task_id():
    j = from_spec({"distribution": {"kind": "parameter_server", "worker_count": 2, "parameter_server_count": 1}}, {})
    assert j.tasks == (("ps", 0), ("worker", 0), ("worker", 1), ("chief", 0))
    s = batch_script(j)
    assert "#SBATCH --ntasks=4" in s and "--wait=" in s and "--nodes" not in s
    assert "#SBATCH --nodes=1-2" in batch_script(from_spec(
        {"distribution": {"kind": "parameter_server", "worker_count": 2}}, {"nodes_max": 2}))
    assert "0) t=ps; i=0;; 1) t=worker; i=0;; 2) t=worker; i=1;; 3) t=chief; i=0;;" in s
    assert ".tasks/chief_0.json" in s


@pytest.mark.parametrize("change,match", [
    ({"partition": "debug; rm -rf ~"}, "partition"), ({"account": "a b"}, "account"),
    ({"time_limit": "1h"}, "time_limit"), ({"nodes": 0}, "nodes"), ({"interpreter": ""}, "interpreter"),
    ({"environment": (("BAD NAME", "x"),)}, "cannot be exported"), ({"arguments": ("a\0b",)}, "NUL"),
    ({"job_name": "x\ny"}, "job name")])
def test_values_that_cannot_go_into_a_script_are_refused(change, match):
    with pytest.raises(ScriptError, match=match):
        batch_script(job(**change))


def test_output_path_with_a_percent_is_refused():
    with pytest.raises(ScriptError, match="%"):
        sbatch_arguments(job(), "/w/100%/driver.log", "/w/job.sh")
    assert sbatch_arguments(job(), "/w/logs/driver.log", "/w/j.sh")[-1] == "/w/j.sh"


TEXT = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=40)
NAME = st.text(st.characters(blacklist_characters="\0/", blacklist_categories=("Cs",)), min_size=1, max_size=20) \
    .filter(lambda s: s not in (".", "..") and len(s.encode()) < 200)
ENV_NAME = st.from_regex(r"\A[A-Z_][A-Z0-9_]{0,12}\Z").filter(
    lambda n: not n.startswith(("SLURM", "MLTRAIN_P", "MLTRAIN_E", "MLTRAIN_L", "PYTHON", "BASH")) and
    n not in ("PATH", "PWD", "OLDPWD", "SHLVL", "IFS", "_", "HOME", "DUMP_TO", "SHELLOPTS", "PS4", "UID", "EUID",
              "PPID", "GROUPS", "RANDOM", "SECONDS", "LINENO", "HOSTNAME", "OPTIND", "OPTARG", "BASHOPTS"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=st.lists(TEXT, max_size=4), env=st.dictionaries(ENV_NAME, TEXT, max_size=4), folder=NAME)
def test_no_user_value_breaks_out_of_the_script(tmp_path_factory, stand_ins, args, env, folder):
    tmp = tmp_path_factory.mktemp("fuzz")
    work = tmp / "w" / folder
    work.mkdir(parents=True)
    (work / "dump.py").write_text(DUMP)
    env = {k: v for k, v in env.items()}
    script = batch_script(job(workdir=str(work), arguments=tuple(args), environment=tuple(sorted(env.items()))))
    dumps = run_script(script, tmp, stand_ins)
    assert len(dumps) == 1
    got = dumps[0]
    assert got["argv"] == args
    assert os.path.realpath(got["cwd"]) == os.path.realpath(work)
    for k, v in env.items():
        assert got["env"][k] == v
    assert got["env"]["MLTRAIN_RANK"] == "0"
    assert sorted(p.name for p in tmp.iterdir()) == ["job.sh", "out.0", "w"]  # nothing else written
    assert [p.name for p in work.iterdir()] == ["dump.py"] and [p.name for p in work.parent.iterdir()] == [folder]


def test_mpi_tasks_get_their_host_and_port(tmp_path, stand_ins):
    """2 nodes x 2 ranks: rank r is on node r // 2 and listens on base_port + r; the launcher gets --rank r."""
    fake_py = fake_interpreter(tmp_path)
    j = job(workdir=str(tmp_path), interpreter=str(fake_py), mpi=True, nodes=2, tasks_per_node=2, base_port=5000)
    dumps = run_script(batch_script(j), tmp_path, stand_ins, nodelist="a1,b2", tasks_per_node="2(x2)")
    assert len(dumps) == 4
    for rank, d in enumerate(dumps):
        assert d["argv"][:5] == ["-m", "mltrain_desktop.engine.rank_launcher", "--logs-dir", "/w/logs", "--rank"]
        assert d["argv"][5] == str(rank) and d["argv"][6:] == ["--", "dump.py"]  # the job's entry script
        assert json.loads(d["env"]["MLTRAIN_TF_CLUSTER"]) == {
            "worker": ["a1:5000", "a1:5001", "b2:5002", "b2:5003"]}


def test_parameter_server_tasks_get_their_role(tmp_path, stand_ins):
    fake_py = fake_interpreter(tmp_path)
    tasks = (("ps", 0), ("worker", 0), ("chief", 0))
    j = job(workdir=str(tmp_path), interpreter=str(fake_py), tasks=tasks, base_port=6000)
    dumps = run_script(batch_script(j), tmp_path, stand_ins, nodelist="n1,n2", tasks_per_node="2,1")
    roles = [(d["argv"][d["argv"].index("--task-type") + 1], d["argv"][d["argv"].index("--task-index") + 1])
             for d in dumps]
    assert roles == [("ps", "0"), ("worker", "0"), ("chief", "0")]
    assert json.loads(dumps[0]["env"]["MLTRAIN_TF_CLUSTER"]) == {
        "ps": ["n1:6000"], "worker": ["n1:6001"], "chief": ["n2:6002"]}


def fake_interpreter(tmp: Path) -> Path:
    """An interpreter whose ``-m MODULE`` runs (the rank launcher's place) only record what they got."""
    (tmp / "dumper.py").write_text(DUMP)
    py = tmp / "py"
    py.write_text(f'#!/bin/sh\nif [ "$1" = -m ]; then exec {sys.executable} {tmp / "dumper.py"} "$@"; fi\n'
                  f'exec {sys.executable} "$@"\n')
    py.chmod(0o755)
    return py


PART = {"name": "debug", "total_nodes": 2, "max_nodes": None}
NODES = [{"name": "node1", "cpus": 2, "gpus": 0, "partitions": ["debug", "single"]},
         {"name": "node2", "cpus": 2, "gpus": 0, "partitions": ["debug"]}]


def test_a_job_bigger_than_the_partition_is_refused_with_the_numbers():
    with pytest.raises(DoesNotFit, match=r"asks for 3 node\(s\) \(node_count\) but partition 'debug' has 2"):
        check_fits(job(nodes=3), PART, NODES, {})
    with pytest.raises(DoesNotFit, match=r"at most 1 per job \(MaxNodes\)"):
        check_fits(job(nodes=2), {"name": "single", "total_nodes": 1, "max_nodes": 1} | {"total_nodes": 2},
                   NODES, {})
    with pytest.raises(DoesNotFit, match="nodes_max=1"):
        check_fits(job(nodes=2), PART, NODES, {"nodes_max": 1})
    with pytest.raises(DoesNotFit, match="3 process"):
        check_fits(job(tasks_per_node=3), PART, NODES, {})
    with pytest.raises(DoesNotFit, match="at most 0"):
        check_fits(job(gpus_per_node=1), PART, NODES, {})
    check_fits(job(nodes=2, tasks_per_node=2), PART, NODES, {})


def test_a_compat_run_starts_its_script_with_the_azureml_names_served():
    single = batch_script(job(compat=True))
    assert 'exec "$MLTRAIN_PY" -m mltrain_desktop.compat --job "$MLTRAIN_ENTRY"' in single
    assert "mltrain_desktop.compat" not in batch_script(job())
    mpi = batch_script(job(compat=True, mpi=True, nodes=2))
    assert '--rank "$SLURM_PROCID" --compat --' in mpi
    ps = batch_script(job(compat=True, tasks=(("ps", 0), ("chief", 0))))
    assert '--task-index "$i" --compat --' in ps
    from mltrain_desktop.adapters.slurm.job import slurm_job
    made = slurm_job({**SPEC, "compat": True}, {}, run_id="r1", workdir="/w", logs_dir="/w/logs", jobkit_dir="",
                     entry_script="dump.py", arguments=[], environment={})
    assert made.compat
