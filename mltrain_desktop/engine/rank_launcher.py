"""Runs one rank of an MPI job, or one task of a parameter-server cluster, around the user's script.

    python -m mltrain_desktop.engine.rank_launcher --logs-dir DIR [--task-type T --task-index I]
        [--rank R] [--watch-pid PID] [--compat] -- script.py [args...]

Under ``mpirun`` (no ``--task-type``) the rank comes from ``OMPI_COMM_WORLD_RANK``; ``--rank R``
names it where no mpirun runs (one container per rank on a Docker target); a task of a
parameter-server cluster is named by ``--task-type``/``--task-index``. The launcher then:

- sets ``MLTRAIN_RANK``, a metrics file of its own (``logs/metrics.rank1.jsonl``,
  ``logs/metrics.worker0.jsonl``; rank 0 and the chief keep ``MLTRAIN_METRICS_FILE``), and
  ``TF_CONFIG`` built from the cluster in ``MLTRAIN_TF_CLUSTER`` with this task's type and index;
- runs the script with the same interpreter (``python -m mpi4py script.py`` under MPI when the
  environment has mpi4py, so that an exception cannot hang MPI's shutdown), in its own process
  that dies with the launcher (PR_SET_PDEATHSIG);
- copies the script's output to ``logs/rank_1.log`` (``worker_0.log`` ...) as is, and to its own
  stdout with every line prefixed ``[rank 1] `` (``[worker 0] ``): the combined log;
- forwards SIGTERM as SIGTERM and SIGINT (TensorFlow's MultiWorkerMirroredStrategy keeps training
  through SIGTERM; SIGINT stops it), and stops the script when its mpirun (its parent) or the
  process named by ``--watch-pid`` (a ps/worker task watches the chief) goes away;
- writes ``logs/.tasks/<task>.json`` when the script starts and when it ends (pid, exit code,
  signal, times), which the backends read to say which rank failed, how, and when;
- exits with the script's exit code (128 + N when it was killed by signal N).

``--compat`` (a run submitted from an azureml compat session) starts the script as
``python -m mltrain_desktop.compat --job script.py`` so that ``from azureml.core import Run`` works;
An MPI job on an AmlCompute-made target without hosts runs its "nodes" on this machine; the engine
names each rank's node in ``MLTRAIN_RANK_NODES`` (a JSON list, by rank) and the launcher gives the
script its own as ``MLTRAIN_NODE``.

Standard library only: this runs in the job's environment, not the app's.
"""
from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ENV_CLUSTER = "MLTRAIN_TF_CLUSTER"      # JSON cluster spec the engine allocated
ENV_TOKEN = "MLTRAIN_JOB_TOKEN"         # marks every process of one job (for the final sweep)
ENV_METRICS = "MLTRAIN_METRICS_FILE"
ENV_RANK = "MLTRAIN_RANK"
STATUS_DIR = ".tasks"
ENV_NODE = "MLTRAIN_NODE"
ENV_RANK_NODES = "MLTRAIN_RANK_NODES"   # JSON list: the node name of each MPI rank
COMPAT_MODULE = ["-m", "mltrain_desktop.compat", "--job"]
_RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK")
_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
_PR_SET_PDEATHSIG = 1
_FLUSH_PARTIAL_AFTER_S = 1.0
_STOP_GRACE_S = 2.0


# -- naming ----------------------------------------------------------------------------------
def script_argv(entry_script: str, arguments: list[str], compat: bool = False) -> list[str]:
    """What follows the interpreter to start a job's script: ``script args``, or for a run submitted
    with the azureml compat layer on, ``-m mltrain_desktop.compat --job script args``."""
    return [*(COMPAT_MODULE if compat else []), entry_script, *arguments]


def task_tag(task_type: str | None, index: int) -> str:
    """File-name form: ``rank_1``, ``worker_0``, ``ps_0``, ``chief_0``."""
    return f"{task_type or 'rank'}_{index}"


def task_name(tag: str) -> str:
    """Display form: ``rank 1``, ``worker 0``."""
    return tag.replace("_", " ")


def log_file(logs_dir: Path, tag: str) -> Path:
    return Path(logs_dir) / f"{tag}.log"


def metrics_file(logs_dir: Path, tag: str) -> Path:
    """The metrics file of a rank/task other than rank 0 or the chief."""
    return Path(logs_dir) / f"metrics.{tag.replace('_', '')}.jsonl"


def status_file(logs_dir: Path, tag: str) -> Path:
    return Path(logs_dir) / STATUS_DIR / f"{tag}.json"


def is_primary(tag: str) -> bool:
    return tag in ("rank_0", "chief_0")


# -- status files (written here, read by the backends) --------------------------------------
def write_status(path: Path | None, record: dict) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:  # the record helps reporting; the job must not die for want of it
        pass


def read_statuses(logs_dir: Path) -> dict[str, dict]:
    """Every task's last status record, by tag."""
    out = {}
    d = Path(logs_dir) / STATUS_DIR
    try:
        names = os.listdir(d)
    except OSError:
        return out
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            out[name[:-5]] = json.loads((d / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return out


def describe_exit(exit_code: int | None, sig: int | None = None) -> str:
    """``exited with code 3`` / ``was killed by signal 9 (SIGKILL)``."""
    if sig is None and exit_code is not None and exit_code < 0:
        sig = -exit_code
    if sig:
        try:
            sname = signal.Signals(sig).name
        except ValueError:
            sname = f"signal {sig}"
        return f"was killed by signal {sig} ({sname})"
    if exit_code is None:
        return "ended (exit code unknown)"
    return f"exited with code {exit_code}"


def tail(path: Path, n: int = 20, max_bytes: int = 64 * 1024) -> list[str]:
    """The last ``n`` lines of a text file ([] when it does not exist)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[-n:]


def failure_report(name: str, how: str, log_path: Path | None, n: int = 20, hint: str = "") -> str:
    """``worker 1 was killed by signal 9 (SIGKILL)`` + hint + the last lines of its log."""
    text = f"{name} {how}"
    if hint:
        text += f"; {hint}"
    if log_path is not None:
        lines = tail(log_path, n)
        shown = os.path.join(Path(log_path).parent.name, Path(log_path).name)
        if lines:
            text += f"\nlast lines of {shown}:\n" + "\n".join("  " + ln for ln in lines)
        else:
            text += f"\n({shown} is empty)"
    return text


# -- processes -------------------------------------------------------------------------------
def _pdeathsig(sig: int = signal.SIGKILL):
    """A preexec_fn that makes the child get ``sig`` when its parent dies (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):  # not Linux: the watch loop still stops the child
        prctl = None

    def preexec():
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_DFL)

    return preexec


def _start_identity(pid: int) -> str | None:
    """Start time of a process from /proc (with the pid, survives pid reuse); None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, ident: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if ident is not None and _start_identity(pid) != ident:
        return False
    try:  # a zombie is gone for our purpose
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def job_pids(token: str, exclude=()) -> list[int]:
    """Pids of the live processes whose environment holds ``MLTRAIN_JOB_TOKEN=token``.

    Every process of a job inherits the token, even one that left its session, so this finds
    what a process-tree stop missed. Reads /proc (Linux; elsewhere it finds nothing).
    """
    found = []
    needle = f"{ENV_TOKEN}={token}".encode()
    skip = {os.getpid(), *exclude}
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        pids = []
    for pid in pids:
        if pid in skip or not token:
            continue
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):  # a zombie: nothing to stop
                    continue
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    found.append(pid)
        except (OSError, IndexError):
            continue
    return found


# -- the launcher ------------------------------------------------------------------------------
def _parse(argv: list[str]):
    if "--" not in argv:
        raise SystemExit("usage: python -m mltrain_desktop.engine.rank_launcher --logs-dir DIR "
                         "[--task-type T --task-index I] [--rank R] [--watch-pid PID] -- script.py [args]")
    i = argv.index("--")
    opts, program = argv[:i], argv[i + 1:]
    if not program:
        raise SystemExit("rank_launcher: no script given after --")
    values = {"--logs-dir": None, "--task-type": None, "--task-index": "0", "--rank": None, "--watch-pid": None,
              "--compat": None}
    it = iter(opts)
    for o in it:
        if o == "--compat":
            values[o] = "1"
            continue
        if o not in values:
            raise SystemExit(f"rank_launcher: unknown option {o}")
        try:
            values[o] = next(it)
        except StopIteration:
            raise SystemExit(f"rank_launcher: {o} needs a value") from None
    if not values["--logs-dir"]:
        raise SystemExit("rank_launcher: --logs-dir is required")
    return values, program


def _identify(values: dict, environ) -> tuple[str | None, int, int | None]:
    """(task type or None under MPI, index, world size or None)."""
    if values["--task-type"]:
        return values["--task-type"], int(values["--task-index"]), None
    if values.get("--rank") is not None:  # an MPI-style rank without mpirun (a container per rank)
        return None, int(values["--rank"]), None
    for var in _RANK_VARS:
        if environ.get(var, "").strip().isdigit():
            size = next((int(environ[v]) for v in _SIZE_VARS if environ.get(v, "").isdigit()), None)
            return None, int(environ[var]), size
    raise SystemExit("rank_launcher: no --task-type and no MPI rank in the environment "
                     f"({', '.join(_RANK_VARS)}); start it with mpirun or name the task")


def task_environment(environ: dict, logs_dir: Path, task_type: str | None, index: int,
                     world_size: int | None) -> dict:
    """The script's environment: rank, metrics file and TF_CONFIG of this rank/task."""
    from mltrain_desktop.adapters import tf_cluster as tfc  # standard library only

    env = dict(environ)
    tag = task_tag(task_type, index)
    cluster = None
    if env.get(ENV_CLUSTER):
        try:
            cluster = json.loads(env[ENV_CLUSTER])
        except ValueError:
            cluster = None
    if task_type is None:
        rank = index
        workers = (cluster or {}).get("worker") or []
        if index < len(workers) and world_size in (None, len(workers)):
            env["TF_CONFIG"] = tfc.tf_config_json(cluster, "worker", index)
        node = _rank_node(env.get(ENV_RANK_NODES), index)
        if node:
            env[ENV_NODE] = node
    else:
        rank = tfc.task_rank(cluster or {}, task_type, index)
        if cluster:
            env["TF_CONFIG"] = tfc.tf_config_json(cluster, task_type, index, environment="cloud")
        env["MLTRAIN_TASK_TYPE"] = task_type
        env["MLTRAIN_TASK_INDEX"] = str(index)
    env[ENV_RANK] = str(rank)
    env["MLTRAIN_TASK"] = task_name(tag)
    if not is_primary(tag) or not env.get(ENV_METRICS):
        env[ENV_METRICS] = str(metrics_file(logs_dir, tag))
    return env


def _rank_node(nodes_json: str | None, rank: int) -> str | None:
    """This rank's node name from ``MLTRAIN_RANK_NODES``, or None."""
    try:
        nodes = json.loads(nodes_json) if nodes_json else None
    except ValueError:
        return None
    return nodes[rank] if isinstance(nodes, list) and rank < len(nodes) and isinstance(nodes[rank], str) else None


class _Tee:
    """Copies the script's output to its own log and, prefixed, to the combined stdout."""

    def __init__(self, log_path: Path, prefix: str):
        self.log = open(log_path, "ab", buffering=0)
        self.prefix = prefix.encode()
        self.partial = b""
        self.partial_since = 0.0
        self.stdout_ok = True

    def _emit(self, lines: bytes) -> None:
        self.log.write(lines)
        if self.stdout_ok:
            out = b"".join(self.prefix + ln + b"\n" for ln in lines.split(b"\n")[:-1])
            try:
                os.write(1, out)
            except OSError:  # mpirun gone: keep the per-task log
                self.stdout_ok = False

    def feed(self, data: bytes) -> None:
        if not self.partial:
            self.partial_since = time.monotonic()
        data = self.partial + data
        cut = data.rfind(b"\n")
        if cut < 0:
            self.partial = data
            if len(data) > 1 << 16:
                self.flush()
            return
        self._emit(data[: cut + 1])
        self.partial = data[cut + 1:]
        self.partial_since = time.monotonic()

    def flush(self, idle_only: bool = False) -> None:
        if self.partial and (not idle_only or time.monotonic() - self.partial_since > _FLUSH_PARTIAL_AFTER_S):
            data, self.partial = self.partial, b""
            self._emit(data + b"\n")

    def close(self) -> None:
        self.flush()
        self.log.close()


def _open_task_log(logs_dir: Path, tag: str, env: dict) -> bool:
    """Makes sure this task's log can be written; without it the task keeps only the combined log."""
    try:
        logs_dir.mkdir(parents=True, exist_ok=True)
        with open(log_file(logs_dir, tag), "ab"):
            pass
        return True
    except OSError as exc:  # a remote host without the run folder
        print(f"[{task_name(tag)}] rank_launcher: cannot write to {logs_dir} on {socket.gethostname()} "
              f"({exc.strerror}); this rank's output goes only to the combined log and its metrics "
              "are not kept: put the run folder on a shared filesystem", flush=True)
        env[ENV_METRICS] = os.devnull
        return False


def _script_command(program: list[str], under_mpirun: bool, env: dict, compat: bool = False) -> list[str]:
    cmd = [sys.executable]
    if under_mpirun and program[0].endswith(".py") and env.get("MLTRAIN_MPI4PY", "1") != "0" \
            and importlib.util.find_spec("mpi4py") is not None:
        cmd += ["-m", "mpi4py"]  # which runs ``-m mltrain_desktop.compat ...`` as it runs a script
    return cmd + script_argv(program[0], program[1:], compat)


class _Stopper:
    """Stops the script once, for the first reason that comes; every stop path ends with SIGKILL."""

    def __init__(self):
        self.reason: str | None = None
        self.deadline = 0.0
        self.child: subprocess.Popen | None = None

    def stop(self, reason: str, signals=(signal.SIGTERM, signal.SIGINT)) -> None:
        if self.reason is None:
            self.reason = reason
            self.deadline = time.monotonic() + _STOP_GRACE_S
        if self.child is not None and self.child.poll() is None:
            for s in signals:
                try:
                    self.child.send_signal(s)
                except OSError:
                    pass

    def on_signal(self, signum, _frame) -> None:
        if signum == signal.SIGINT:
            self.stop("interrupted (SIGINT)", (signal.SIGINT,))
        else:
            self.stop(f"stopped by {signal.Signals(signum).name}")

    def kill_if_overdue(self) -> None:
        if self.reason is not None and time.monotonic() > self.deadline and self.child.poll() is None:
            self.child.kill()


def _pump(child: subprocess.Popen, tee: "_Tee", stopper: _Stopper, parent: int | None,
          watch_pid: int | None, watch_ident) -> None:
    """Copies the script's output into its log until it ends; stops it when what it depends on goes."""
    fd = child.stdout.fileno()
    while True:
        try:
            ready, _, _ = select.select([fd], [], [], 0.5)
        except InterruptedError:  # pragma: no cover - PEP 475 retries select
            ready = []
        if ready:
            data = os.read(fd, 65536)
            if not data:
                break
            tee.feed(data)
        else:
            tee.flush(idle_only=True)
            if child.poll() is not None:  # ended; a leftover grandchild may hold the pipe open
                break
        if stopper.reason is None:
            if parent is not None and os.getppid() != parent:
                stopper.stop("its mpirun went away")
            elif watch_pid is not None and not _alive(watch_pid, watch_ident):
                stopper.stop(f"the process it watches (pid {watch_pid}, the chief) ended")
        else:
            stopper.kill_if_overdue()


def main(argv: list[str] | None = None) -> int:
    values, program = _parse(list(sys.argv[1:] if argv is None else argv))
    logs_dir = Path(values["--logs-dir"])
    task_type, index, world_size = _identify(values, os.environ)
    tag = task_tag(task_type, index)
    try:
        env = task_environment(dict(os.environ), logs_dir, task_type, index, world_size)
    except ValueError as exc:  # a cluster spec without this task: say so in the combined log
        print(f"[{task_name(tag)}] rank_launcher: error: {exc}", flush=True)
        return 2
    writable = _open_task_log(logs_dir, tag, env)
    cmd = _script_command(program, task_type is None and values["--rank"] is None, env, bool(values["--compat"]))
    watch_pid = int(values["--watch-pid"]) if values["--watch-pid"] else None
    watch_ident = _start_identity(watch_pid) if watch_pid else None
    parent = os.getppid() if task_type is None else None  # under mpirun: stop when it goes

    record = {"tag": tag, "name": task_name(tag), "rank": int(env[ENV_RANK]), "task_type": task_type or "rank",
              "task_index": index, "host": socket.gethostname(), "node": env.get(ENV_NODE),
              "launcher_pid": os.getpid(),
              "log": str(log_file(logs_dir, tag)), "started": time.time()}
    spath = status_file(logs_dir, tag) if writable else None
    tee = _Tee(log_file(logs_dir, tag) if writable else Path(os.devnull), f"[{task_name(tag)}] ")
    stopper = _Stopper()
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, stopper.on_signal)

    if stopper.reason is None:
        try:
            stopper.child = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                             stderr=subprocess.STDOUT, preexec_fn=_pdeathsig(), close_fds=True)
        except OSError as exc:
            tee.feed(f"rank_launcher: cannot start {cmd[0]}: {exc}\n".encode())
            tee.close()
            write_status(spath, {**record, "ended": time.time(), "exit_code": 127, "signal": None})
            return 127
    child = stopper.child
    if child is None:  # stopped before the script started
        tee.close()
        write_status(spath, {**record, "ended": time.time(), "exit_code": 143, "signal": None,
                             "stopped": stopper.reason})
        return 143
    record["pid"] = child.pid
    write_status(spath, record)
    if stopper.reason is not None:  # a signal came while the script was starting
        stopper.reason = None
        stopper.stop("stopped while starting")

    _pump(child, tee, stopper, parent, watch_pid, watch_ident)
    rc = child.wait()
    tee.close()
    sig = -rc if rc < 0 else None
    final = {**record, "ended": time.time(), "exit_code": rc, "signal": sig}
    if stopper.reason:
        final["stopped"] = stopper.reason
    write_status(spath, final)
    return 128 + sig if sig else rc


if __name__ == "__main__":
    sys.exit(main())
