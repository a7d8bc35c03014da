"""The sbatch script of a run: a pure function of the run's job description.

One run is one batch job. The script exports the run's environment variables, puts the job kit
on PYTHONPATH, works out which host each task lands on from ``SLURM_JOB_NODELIST`` and
``SLURM_TASKS_PER_NODE`` (block distribution: tasks fill the first node, then the next), exports
that cluster as ``MLTRAIN_TF_CLUSTER``, and ``srun`` starts one task per rank:

- single process: one task runs the script (``MLTRAIN_RANK=0``);
- MPI / MultiWorkerMirrored (``kind: mpi``): ``node_count`` x ``process_count_per_node`` tasks,
  each ``engine/rank_launcher.py --rank $SLURM_PROCID``, which sets ``MLTRAIN_RANK``, its own
  log and metrics file, and ``TF_CONFIG`` with ``worker`` = every task's ``host:port``;
- parameter server (``kind: parameter_server``): task-id mapping, not heterogeneous jobs: the
  tasks in the engine's start order (ps 0.., worker 0.., chief 0) are ``SLURM_PROCID`` 0..n-1, so
  task id t gets the t-th role; ``srun --wait`` ends the ps/worker tasks (which serve forever)
  a while after the first task (the chief) ends, and the job exits with the chief's exit code.

Every value that comes from the user (paths, arguments, environment values, the interpreter) is
quoted with ``shlex.quote``; values that go into ``#SBATCH`` lines (partition, account, time
limit, counts) are checked to be plain tokens first (``check_token``). Paths for ``--output``
and ``--chdir`` go on sbatch's command line (``sbatch_arguments``), never into the script.
"""
from __future__ import annotations

import dataclasses
import re
import shlex

from .parse import valid_time_limit

TASK_PORT_BASE = 29400
CHIEF_GRACE_S = 30
_TOKEN = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LAUNCHER = "mltrain_desktop.engine.rank_launcher"


class ScriptError(ValueError):
    """A value that cannot go into a batch script; the message names it and says what to use."""


@dataclasses.dataclass(frozen=True)
class SlurmJob:
    """Everything the batch script needs; paths are as the nodes see them."""

    job_name: str
    workdir: str
    logs_dir: str
    interpreter: str
    entry_script: str
    arguments: tuple = ()
    environment: tuple = ()              # ((name, value), ...)
    pythonpath: str = ""                 # the job kit folder
    nodes: int = 1                       # PS: the most nodes (--nodes=1-N); 0: Slurm chooses
    tasks_per_node: int = 1
    tasks: tuple = ()                    # PS: ((type, index), ...) in SLURM_PROCID order; else ()
    mpi: bool = False
    gpus_per_node: int = 0
    partition: str | None = None
    account: str | None = None
    time_limit: str | None = None
    base_port: int = TASK_PORT_BASE
    compat: bool = False                 # the script is started with the azureml names served

    @property
    def task_count(self) -> int:
        return len(self.tasks) if self.tasks else self.nodes * self.tasks_per_node


def check_token(name: str, value) -> str:
    """``value`` when it is a plain Slurm name (letters, digits, ``_ . -``), else ScriptError."""
    if not isinstance(value, str) or not _TOKEN.match(value):
        raise ScriptError(f"{name} {value!r} is not a Slurm name: use letters, digits, '_', '.' or '-' only")
    return value


def check_text(name: str, value) -> str:
    if not isinstance(value, str):
        raise ScriptError(f"{name} must be a string, got {type(value).__name__}")
    if "\0" in value:
        raise ScriptError(f"{name} {value[:60]!r} holds a NUL character, which no shell can pass on; remove it")
    return value


def check_job(job: SlurmJob) -> None:
    check_token("job name", job.job_name)
    for n in ("nodes", "tasks_per_node"):
        v = getattr(job, n)
        least = 0 if job.tasks and n == "nodes" else 1
        if isinstance(v, bool) or not isinstance(v, int) or v < least:
            raise ScriptError(f"{n} must be a whole number of at least 1, got {v!r}")
    if isinstance(job.gpus_per_node, bool) or not isinstance(job.gpus_per_node, int) or job.gpus_per_node < 0:
        raise ScriptError(f"GPUs per node must be a whole number, got {job.gpus_per_node!r}")
    if job.partition is not None:
        check_token("partition", job.partition)
    if job.account is not None:
        check_token("account", job.account)
    if job.time_limit is not None and not (isinstance(job.time_limit, str) and valid_time_limit(job.time_limit)):
        raise ScriptError(f"time_limit {job.time_limit!r} is not a Slurm time: use minutes ('30'), 'HH:MM:SS' "
                          "or 'D-HH:MM:SS'")
    for name, value in (("workdir", job.workdir), ("logs folder", job.logs_dir), ("interpreter", job.interpreter),
                        ("entry script", job.entry_script), ("job kit folder", job.pythonpath)):
        check_text(name, value)
    if not job.interpreter:
        raise ScriptError("the job needs an interpreter (python= on the target or the run's environment)")
    for i, a in enumerate(job.arguments):
        check_text(f"argument {i}", a)
    for k, v in job.environment:
        if not isinstance(k, str) or not _ENV_NAME.match(k):
            raise ScriptError(f"environment variable name {k!r} cannot be exported by a shell: use letters, "
                              "digits and '_', not starting with a digit")
        check_text(f"environment variable {k}", v)
    for t, i in job.tasks:
        check_token("task type", t)
        if not isinstance(i, int) or i < 0:
            raise ScriptError(f"task index {i!r} must be a whole number")


def directives(job: SlurmJob) -> list[str]:
    lines = [f"#SBATCH --job-name={job.job_name}"]
    if job.tasks:
        lines += [f"#SBATCH --nodes=1-{job.nodes}"] if job.nodes else []
        lines.append(f"#SBATCH --ntasks={len(job.tasks)}")
    else:
        lines += [f"#SBATCH --nodes={job.nodes}", f"#SBATCH --ntasks-per-node={job.tasks_per_node}"]
    if job.gpus_per_node:
        lines.append(f"#SBATCH --gres=gpu:{job.gpus_per_node}")
    for opt, value in (("partition", job.partition), ("account", job.account), ("time", job.time_limit)):
        if value is not None:
            lines.append(f"#SBATCH --{opt}={value}")
    return lines


# Which host each task runs on, in SLURM_PROCID order (SLURM_TASKS_PER_NODE is e.g. "2(x2),1").
_TASK_HOSTS = r'''
mapfile -t mltrain_hosts < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
mltrain_task_hosts=()
mltrain_n=0
for mltrain_item in ${SLURM_TASKS_PER_NODE//,/ }; do
  mltrain_count=${mltrain_item%%(*}
  mltrain_rep=1
  if [[ $mltrain_item == *"(x"* ]]; then mltrain_rep=${mltrain_item#*(x}; mltrain_rep=${mltrain_rep%)}; fi
  for ((mltrain_r = 0; mltrain_r < mltrain_rep; mltrain_r++)); do
    for ((mltrain_c = 0; mltrain_c < mltrain_count; mltrain_c++)); do
      mltrain_task_hosts+=("${mltrain_hosts[$mltrain_n]}")
    done
    mltrain_n=$((mltrain_n + 1))
  done
done
'''


def _cluster_code(job: SlurmJob) -> str:
    """Bash that sets MLTRAIN_TF_CLUSTER (JSON) from the task hosts: task t listens on base_port + t."""
    roles = [t for t, _ in job.tasks] if job.tasks else ["worker"] * job.task_count
    groups: dict[str, list[int]] = {}
    for tid, role in enumerate(roles):
        groups.setdefault(role, []).append(tid)
    parts = []
    for role, tids in groups.items():
        addrs = ",".join(f'\\"${{mltrain_task_hosts[{t}]}}:{job.base_port + t}\\"' for t in tids)
        parts.append(f'\\"{role}\\": [{addrs}]')
    return _TASK_HOSTS + f'export MLTRAIN_TF_CLUSTER="{{{", ".join(parts)}}}"\n'


def _task_code(job: SlurmJob) -> str:
    """What each srun task runs: bash -c CODE mltrain-task ARGS... (ARGS are the script's arguments)."""
    compat = " --compat" if job.compat else ""
    if job.tasks:
        cases = " ".join(f"{tid}) t={t}; i={i};;" for tid, (t, i) in enumerate(job.tasks))
        return (f'case "$SLURM_PROCID" in {cases} *) echo "no role for task $SLURM_PROCID" >&2; exit 2;; esac; '
                f'exec "$MLTRAIN_PY" -m {LAUNCHER} --logs-dir "$MLTRAIN_LOGS" --task-type "$t" --task-index "$i"'
                f'{compat} -- "$MLTRAIN_ENTRY" "$@"')
    if job.mpi:
        return (f'exec "$MLTRAIN_PY" -m {LAUNCHER} --logs-dir "$MLTRAIN_LOGS" --rank "$SLURM_PROCID"{compat} '
                f'-- "$MLTRAIN_ENTRY" "$@"')
    start = "-m mltrain_desktop.compat --job " if job.compat else ""
    return f'export MLTRAIN_RANK=0; exec "$MLTRAIN_PY" {start}"$MLTRAIN_ENTRY" "$@"'


def batch_script(job: SlurmJob) -> str:
    """The whole batch script (bash). Raises ScriptError for a value it cannot carry."""
    check_job(job)
    q = shlex.quote
    lines = ["#!/bin/bash", *directives(job), "# Written by MLTrain Desktop: one run, one batch job.", "set -u"]
    for k, v in job.environment:
        lines.append(f"export {k}={q(v)}")
    if job.pythonpath:
        lines.append(f'export PYTHONPATH={q(job.pythonpath)}"${{PYTHONPATH:+:$PYTHONPATH}}"')
    lines += ["export PYTHONUNBUFFERED=1", 'export MLTRAIN_SLURM_JOB_ID="$SLURM_JOB_ID"',
              f"export MLTRAIN_PY={q(job.interpreter)}", f"export MLTRAIN_ENTRY={q(job.entry_script)}",
              f"export MLTRAIN_LOGS={q(job.logs_dir)}", f"cd {q(job.workdir)} || exit 1",
              'echo "[mltrain] Slurm job $SLURM_JOB_ID on $SLURM_JOB_NODELIST: ' + str(job.task_count)
              + ' task(s)"']
    if job.mpi or job.tasks:
        lines.append(_cluster_code(job).strip("\n"))
    srun = ["srun", f"--ntasks={job.task_count}", "--kill-on-bad-exit=1"]
    if not job.tasks:
        srun.append(f"--ntasks-per-node={job.tasks_per_node}")
    else:
        srun.append(f"--wait={CHIEF_GRACE_S}")
    args = " ".join(q(a) for a in job.arguments)
    lines.append(f"{' '.join(srun)} bash -c {q(_task_code(job))} mltrain-task {args}".rstrip())
    lines.append("mltrain_rc=$?")
    if job.tasks:
        chief = next(((t, i) for t, i in job.tasks if t == "chief"), job.tasks[-1])
        status = q(f"{job.logs_dir}/.tasks/{chief[0]}_{chief[1]}.json")
        lines.append(f'mltrain_rc=$("$MLTRAIN_PY" -c "import json,sys; print(json.load(open(sys.argv[1]))'
                     f'.get(\'exit_code\') or 0)" {status} 2>/dev/null || echo $mltrain_rc)')
    lines.append("exit $mltrain_rc")
    return "\n".join(lines) + "\n"


def sbatch_arguments(job: SlurmJob, output_path: str, script_path: str) -> list[str]:
    """sbatch's argv (without the sbatch itself): paths here, not in the script."""
    check_text("output path", output_path)
    if "%" in output_path:
        raise ScriptError(f"the run's log path {output_path!r} holds '%', which sbatch reads as a pattern; "
                          "use a workspace folder without '%' in its path")
    check_text("script path", script_path)
    # --no-requeue: a job whose node failed is not started again from scratch over the same run folder
    return ["--parsable", "--no-requeue", "--open-mode=append", f"--output={output_path}",
            f"--chdir={job.workdir}", script_path]
