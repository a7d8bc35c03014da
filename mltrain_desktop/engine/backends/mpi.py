"""The MPI backend: Open MPI's ``mpirun`` starts the ranks of a Horovod-style job.

Each rank runs ``python -m mltrain_desktop.engine.rank_launcher -- script args``, which gives it
its own log, metrics file and TF_CONFIG (a worker list with ports the engine allocated), so a
script may use Horovod when its environment has it, or ``MultiWorkerMirroredStrategy`` with no
Horovod at all. The target's config may hold::

    hosts                 [{"host": "node1", "slots": 2}, ...]  (default: this machine; for a target
                          made with AmlCompute, up to max_nodes "nodes" node-0, node-1, ... on it)
    slots                 ranks this machine may run when no hosts are listed (default: its CPUs)
    oversubscribe         true to run more ranks than slots
    mpirun                path of Open MPI's mpirun (default: found on PATH)
    mpirun_args           extra arguments for mpirun, e.g. ["--mca", "btl_tcp_if_include", "eth0"]
    startup_timeout_s     how long every rank has to join the TensorFlow cluster (default 120)
    base_port             first of consecutive TF_CONFIG ports (default: free ports picked)
    ssh_connect_timeout_s how long a remote host has to answer SSH (default 5)
    ssh_config            an ssh_config file for the remote hosts (ssh -F: host names, users, keys,
                          known_hosts), used by the SSH check and by mpirun's ssh
    ssh_key               a private key file for the remote hosts (ssh -i)

Remote hosts must see the job at the same paths as this machine: the interpreter, the job kit
and the run folder (a shared file system or the same layout); docs/distributed.md says how.

Failure: mpirun stops every rank within 1-2 s when one exits non-zero or is killed; the engine
does not wait for it: it reads the ranks' records (written by the rank launcher) and sockets on
every poll and asks the MPI rules (:class:`~mltrain_desktop.domain.distributed_policy.MpiPolicy`),
which fail the job as soon as one shows a failed script, and also see what mpirun cannot: a rank
that exits 0 without ever joining the TensorFlow cluster while the others wait for it, and a
rank that has not joined by the startup deadline. Every stop path ends with SIGKILL and a sweep
for any process of the job that is left.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from ...adapters import mpirun as mc
from ...adapters import tf_cluster as tfc
from ...adapters.process import is_same_process_alive, process_identity, start_process, tree
from ...domain import distribution as dd
from ...domain.distributed_policy import STOP_GRACE_S, Decision, MpiPolicy, TaskObservation
from .. import rank_launcher as rl
from .base import Backend, JobContext, JobHandle, PrepareError
from .local import job_environment

FAILURE_GRACE_S = STOP_GRACE_S


# -- helpers shared with the parameter-server backend ---------------------------------------
def kill_job_processes(token: str, rounds: int = 5) -> list[int]:
    """SIGKILLs every process left of a job (found by its token) until none is found."""
    killed: list[int] = []
    for _ in range(rounds):
        pids = rl.job_pids(token)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
        time.sleep(0.05)
    return killed


def signal_processes(procs, sig: int) -> None:
    for p in procs:
        try:
            p.send_signal(sig)
        except psutil.Error:
            pass


def _ended(p: psutil.Process) -> bool:
    """Gone, or a zombie its parent has not reaped yet (mpirun reaps its ranks late)."""
    try:
        return p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def _wait_ended(procs, timeout: float) -> list[psutil.Process]:
    """Waits until every process has ended (or is a zombie); returns those still running."""
    alive = list(procs)
    deadline = time.monotonic() + timeout
    while alive:
        alive = [p for p in alive if not _ended(p)]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    return alive


def stop_processes(procs, grace: float, first_signal: int | None = signal.SIGTERM) -> None:
    """Sends ``first_signal`` (None: already sent), waits up to ``grace`` s, SIGKILLs the rest."""
    procs = list(procs)
    if first_signal is not None:
        signal_processes(procs, first_signal)
    alive = _wait_ended(procs, grace)
    signal_processes(alive, signal.SIGKILL)
    _wait_ended(alive, 5.0)


def startup_timeout(config: dict) -> float:
    """The target's ``startup_timeout_s``, or PrepareError saying what is wrong with it."""
    try:
        return dd.startup_timeout_s(config)
    except dd.DistributionError as exc:
        raise PrepareError(str(exc)) from exc


def checked_distribution(settings: dict | None, kind: type[dd.MpiDistribution] | type[dd.PsDistribution]):
    """The run's distribution counts as ``kind`` (MpiDistribution / PsDistribution), or PrepareError."""
    try:
        return kind.from_settings(settings)
    except dd.DistributionError as exc:
        raise PrepareError(str(exc)) from exc


def failure_report(decision: Decision, logs_dir: Path) -> str:
    """A failed decision's message with the last lines of the log of the task it names."""
    return rl.failure_report(decision.subject, decision.how, rl.log_file(logs_dir, decision.task),
                             hint=decision.hint)


def job_ports(config: dict, count: int, purposes: list[str], local: list[bool]) -> list[int]:
    """Ports for ``count`` tasks: consecutive from ``base_port`` (checked free) or picked free."""
    base = config.get("base_port")
    try:
        if base is None:
            return tfc.allocate_ports(count)
        ports = tfc.ports_from_base(base, count)
        for port, purpose, is_local in zip(ports, purposes, local):
            if is_local:
                tfc.check_port_free(port, purpose)
        return ports
    except (tfc.PortInUseError, OSError) as exc:
        raise PrepareError(str(exc)) from exc


@functools.lru_cache(maxsize=8)
def _mpirun_version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PrepareError(f"cannot run {path} --version: {exc}") from exc
    return (out.stdout + out.stderr).strip()


def find_mpirun(config: dict) -> str:
    """The path of Open MPI's mpirun, or PrepareError saying how to get one."""
    wanted = config.get("mpirun") or "mpirun"
    path = shutil.which(wanted)
    if path is None:
        raise PrepareError(
            f"mpirun (Open MPI) was not found ({'no ' + wanted if os.sep in wanted else wanted + ' is not on PATH'}); "
            "install Open MPI (Debian/Ubuntu: sudo apt install openmpi-bin; Fedora: sudo dnf install "
            "openmpi; macOS: brew install open-mpi), or set 'mpirun' in the compute target's config "
            "to its full path"
        )
    # Open MPI takes the folder it was started from for its install prefix: /bin/mpirun (a merged-/usr
    # system, PATH with /bin first) would mean prefix "/", which it refuses; /usr/bin/mpirun works.
    path = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    version = _mpirun_version(path)
    if "Open MPI" not in version and "OpenRTE" not in version:
        first = version.splitlines()[0] if version else "nothing"
        raise PrepareError(
            f"{path} is not Open MPI's mpirun (it says: {first}); MLTrain builds Open MPI command "
            "lines: install Open MPI, or set 'mpirun' in the compute target's config to Open MPI's"
        )
    return path


def _local_names() -> set[str]:
    names = set(mc.LOCAL_NAMES)
    for f in (socket.gethostname, socket.getfqdn):
        try:
            names.add(f())
        except OSError:
            pass
    return names


def _local_slots(config: dict) -> int:
    slots = config.get("slots")
    if slots is None:
        try:
            return len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            return os.cpu_count() or 1
    return slots


def ssh_options(config: dict) -> list[str]:
    """ssh's -F/-i options from the target's ``ssh_config`` / ``ssh_key``; PrepareError when a file is missing."""
    paths = {}
    for key in ("ssh_config", "ssh_key"):
        value = config.get(key)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or not Path(value).expanduser().is_file():
            raise PrepareError(f"{key} in the compute target's config must name a file on this machine, "
                               f"got {value!r}; give the path of an existing file, or remove {key}")
        paths[key] = str(Path(value).expanduser())
    return mc.ssh_options(paths.get("ssh_config"), paths.get("ssh_key"))


def _ssh_check(host: str, timeout_s: int, ssh: str, options: list[str]) -> tuple[list[str], str | None]:
    """Runs the SSH probe: (its command, None when the host answered, else what went wrong)."""
    cmd = mc.ssh_probe_command(host, timeout_s, ssh, options)
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + 5, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return cmd, "no answer"
    if out.returncode == 0:
        return cmd, None
    return cmd, (out.stderr.strip().splitlines() or [""])[-1] or f"exit code {out.returncode}"


def _probe_host(host: str, timeout_s: int, options: list[str]) -> None:
    ssh = shutil.which("ssh")
    if ssh is None:
        raise PrepareError(f"host {host!r} is remote but ssh is not installed here; install an "
                           "OpenSSH client (mpirun starts remote ranks over SSH)")
    cmd, said = _ssh_check(host, timeout_s, ssh, options)
    if said is not None:
        raise PrepareError(
            f"host {host!r} did not answer over SSH within {timeout_s} s ({mc.display(cmd)}: {said}); "
            "check the name, that the host is on, and that key-based SSH login works without a prompt (ssh-copy-id)"
        )


def _answers_ssh(host: str, state: dict) -> bool:
    """Whether a job's remote host still answers SSH (asked once, when the job failed)."""
    ssh = shutil.which("ssh")
    if ssh is None:
        return True
    timeout = int(state.get("ssh_connect_timeout_s") or 5)
    return _ssh_check(host, timeout, ssh, state.get("ssh_options") or [])[1] is None


def max_nodes(config: dict) -> int:
    """An AmlCompute-made target's max_nodes (stored as its max_concurrent_runs)."""
    return int(config.get("max_concurrent_runs", 1) or 1)


def check_node_count(target: dict, distribution: dict | None) -> None:
    """Before a run is submitted: an MPI job's node_count must fit an AmlCompute-made target without
    hosts (its max_nodes); raises PrepareError naming both numbers."""
    config = dict(target.get("config") or {})
    if target.get("kind") != "local" or (distribution or {}).get("kind") != dd.MPI \
            or config.get("azure_type") != "AmlCompute" or config.get("hosts"):
        return
    nodes = checked_distribution(distribution, dd.MpiDistribution).node_count
    if nodes > max_nodes(config):
        raise PrepareError(
            f"node_count={nodes} but compute target {target.get('name')!r} has max_nodes={max_nodes(config)}; "
            f"lower node_count, or create the target with AmlCompute.provisioning_configuration(max_nodes={nodes})")


# -- the backend -------------------------------------------------------------------------------
class MpiBackend(Backend):
    kind = "mpi"

    def __init__(self, target: dict):
        self.target = target
        self.config = dict(target.get("config") or {})

    def _distribution(self, ctx: JobContext) -> tuple[int, int]:
        dist = checked_distribution(ctx.distribution, dd.MpiDistribution)
        return dist.node_count, dist.process_count_per_node

    def plan(self, ctx: JobContext) -> list[mc.HostSlots]:
        """mpirun's nodes for this job, each with its ranks; PrepareError when they do not fit."""
        return self.layout(ctx)[0]

    def layout(self, ctx: JobContext) -> tuple[list[mc.HostSlots], list[str] | None]:
        """mpirun's nodes, and for an AmlCompute-made target without hosts the node name of each rank.

        The target's hosts when it lists them; else, for an AmlCompute target, up to ``max_nodes``
        "nodes" on this machine (node-0, node-1, ...: one mpirun on localhost with a slot per rank);
        else this machine alone (node_count 1).
        """
        nodes, ppn = self._distribution(ctx)
        oversubscribe = bool(self.config.get("oversubscribe"))
        try:
            hosts = mc.parse_hosts(self.config.get("hosts"))
            if not hosts and self.config.get("azure_type") == "AmlCompute":
                return mc.machine_nodes(nodes, ppn, max_nodes(self.config), _local_slots(self.config), oversubscribe)
            if not hosts:
                hosts = [mc.this_machine(_local_slots(self.config))]
            return mc.plan_nodes(hosts, nodes, ppn, oversubscribe), None
        except mc.HostsError as exc:
            raise PrepareError(f"compute target {self.target.get('name')!r}: {exc}") from exc

    def prepare(self, ctx: JobContext) -> None:
        find_mpirun(self.config)
        startup_timeout(self.config)
        nodes = self.plan(ctx)
        local = _local_names()
        remote = [n.host for n in nodes if not mc.is_local_host(n.host, local)]
        timeout = self.config.get("ssh_connect_timeout_s", 5)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
            raise PrepareError(f"ssh_connect_timeout_s in the compute target's config must be a whole "
                               f"number of seconds, got {timeout!r}")
        options = ssh_options(self.config)
        for host in remote:
            ctx.log(f"[mltrain] checking host {host} answers over SSH")
            _probe_host(host, timeout, options)
        if not (ctx.snapshot_dir / ctx.entry_script).is_file():
            raise PrepareError(f"entry script {ctx.entry_script!r} is not in the source snapshot")

    def launch(self, ctx: JobContext) -> JobHandle:
        mpirun = find_mpirun(self.config)
        nodes, rank_nodes = self.layout(ctx)
        local = _local_names()
        all_local = all(mc.is_local_host(n.host, local) for n in nodes)
        options = [] if all_local else ssh_options(self.config)
        hosts = mc.rank_hosts(nodes)
        n = len(hosts)
        is_local = [mc.is_local_host(h, local) for h in hosts]
        ports = job_ports(self.config, n, [f"rank {r}" for r in range(n)], is_local)
        here = tfc.LOOPBACK if all_local else socket.gethostname()
        cluster = tfc.mpi_cluster([tfc.address(here if loc else h, p)
                                   for h, p, loc in zip(hosts, ports, is_local)])
        token = f"{ctx.run_id}-{secrets.token_hex(4)}"

        env = job_environment(ctx)
        extra = {rl.ENV_CLUSTER: json.dumps(cluster, separators=(",", ":")),
                 rl.ENV_TOKEN: token, "MLTRAIN_WORLD_SIZE": str(n)}
        if rank_nodes:
            extra[rl.ENV_RANK_NODES] = json.dumps(rank_nodes)
        env.update(extra)
        forward = sorted(set(ctx.environment_variables) | set(extra) | {"PYTHONPATH", "PYTHONUNBUFFERED"})
        interpreter = ctx.interpreter or sys.executable
        logs_dir = Path(os.path.abspath(ctx.logs_dir))
        workdir = os.path.abspath(ctx.snapshot_dir)
        program = [interpreter, "-m", "mltrain_desktop.engine.rank_launcher", "--logs-dir", str(logs_dir),
                   *(["--compat"] if ctx.spec.get("compat") else []), "--", ctx.entry_script, *ctx.arguments]
        argv = mc.build_mpirun_command(
            program, nodes=nodes, forward_env=forward, as_root=hasattr(os, "geteuid") and os.geteuid() == 0,
            mpirun=mpirun, workdir=workdir, oversubscribe=bool(self.config.get("oversubscribe")),
            ssh_args=None if all_local else mc.default_ssh_args(options=options),
            extra_args=list(self.config.get("mpirun_args") or []))
        ctx.log(f"[mltrain] MPI job: {n} rank(s) on {', '.join(str(x) for x in nodes)}; TF_CONFIG workers "
                f"{', '.join(cluster['worker'])}")
        if rank_nodes:
            groups = {}
            for rank, node in enumerate(rank_nodes):
                groups.setdefault(node, []).append(str(rank))
            ctx.log(f"[mltrain] AmlCompute nodes on this machine (max_nodes={max_nodes(self.config)}): "
                    + ", ".join(f"{node} = rank {'/'.join(ranks)}" for node, ranks in groups.items())
                    + " (each rank's MLTRAIN_NODE)")
        ctx.log(f"[mltrain] starting: {mc.display(argv)}")
        logs_dir.mkdir(parents=True, exist_ok=True)
        popen = start_process(argv, workdir, env, logs_dir / "driver.log")
        state = {"kind": "mpi", "pid": popen.pid, "create_time": process_identity(popen.pid), "token": token,
                 "started": time.time(), "ranks": n, "ports": ports, "local": is_local, "hosts": hosts,
                 "ssh_options": options,
                 "ssh_connect_timeout_s": self.config.get("ssh_connect_timeout_s", 5),
                 "startup_timeout_s": startup_timeout(self.config), "logs_dir": str(logs_dir)}
        return MpiJobHandle(state, popen)

    def reattach(self, ctx: JobContext, state: dict) -> JobHandle | None:
        if state.get("kind") != "mpi" or not is_same_process_alive(state.get("pid"), state.get("create_time")):
            return None
        return MpiJobHandle(state, None)


# -- the running job ---------------------------------------------------------------------------
_MPIRUN_EXIT = re.compile(r"Process name: \[\[\d+,\d+\],(\d+)\]\s*\n\s*Exit code:\s*(-?\d+)")
_MPIRUN_SIGNAL = re.compile(r"process rank (\d+) with PID \d+ on node (\S+) exited on signal (\d+)")


def rank_observation(tag: str, status: dict, address: str, listening: bool | None,
                     where: str = "") -> TaskObservation:
    """One rank as the MPI rules need it, from its launcher's record (``status``, {} before it ends)."""
    look = TaskObservation(tag, address=address, listening=listening, where=where)
    if status.get("ended"):
        code, sig = status.get("exit_code"), status.get("signal")
        look = dataclasses.replace(
            look, ended=True, exit_code=128 + sig if sig else code, ended_at=status["ended"],
            how=rl.describe_exit(code, sig), stopped=bool(status.get("stopped")))
    return look


def mpirun_rank_report(logs_dir: Path, rc: int | None) -> str | None:
    """When a rank's launcher died (SIGKILL) and wrote nothing: mpirun's own report of that rank, from
    driver.log, with the rank's log; None when mpirun named no rank."""
    driver = "\n".join(rl.tail(logs_dir / "driver.log", 200))
    m = _MPIRUN_SIGNAL.search(driver)
    if m:
        rank, how = int(m.group(1)), rl.describe_exit(None, int(m.group(3)))
    else:
        m = _MPIRUN_EXIT.search(driver)
        rank, how = (int(m.group(1)), rl.describe_exit(int(m.group(2)))) if m else (None, None)
    if rank is None:
        return None
    return rl.failure_report(f"rank {rank}", how, rl.log_file(logs_dir, rl.task_tag(None, rank)),
                             hint=f"mpirun stopped the other rank(s) (mpirun exit code {rc})")


class MpiJobHandle(JobHandle):
    """One mpirun and its ranks; the ranks' records and sockets are looked at, the MpiPolicy decides."""

    def __init__(self, state: dict, popen: subprocess.Popen | None):
        self._state = state
        self.popen = popen
        self.pid = state["pid"]
        self.logs_dir = Path(state["logs_dir"])
        self.n = int(state["ranks"])
        self._rc: int | None = None
        self._detail: str | None = None
        self._lost: str | None = None
        self._lost_asked = False
        local = state.get("local", [])
        tags = [rl.task_tag(None, r) for r in range(self.n)]
        # the start-up watchdog sees only the sockets of the ranks on this machine
        self.policy = MpiPolicy(tags, state["startup_timeout_s"], state["started"], under_mpirun=True,
                                watched=[t for t, is_local in zip(tags, local) if is_local])

    # -- JobHandle ---------------------------------------------------------------------------
    def state(self) -> dict:
        return dict(self._state)

    def metrics_files(self) -> list[Path]:
        return [rl.metrics_file(self.logs_dir, rl.task_tag(None, r)) for r in range(1, self.n)]

    def poll(self) -> int | None:
        if self._rc is not None:
            return self._rc
        rc = self._mpirun_exit()
        if rc is not None:
            kill_job_processes(self._state["token"])  # normally nothing is left
            self._rc = rc
            return rc
        now = time.time()
        decision = self.policy.decide(self._observe(now), now)
        if decision is None or decision.succeeded:
            return None  # every rank ended with 0: mpirun's own exit (it flushes their output) ends the job
        # a failed rank (do not wait the 1-2 s mpirun takes to notice), or the start-up watchdog
        self._stop_all(decision.grace_s)
        self._rc = decision.exit_code
        self._detail = self._lost_host_report() or failure_report(decision, self.logs_dir)
        return self._rc

    def cancel(self, grace_seconds: float = 5.0) -> None:
        self._stop_all(grace_seconds)

    def failure_detail(self) -> str | None:
        if self._detail:
            return self._detail
        if self._rc in (None, 0):
            return None
        failed = self.policy.first_failure(self._observe(None))
        if failed is not None:
            return failure_report(failed, self.logs_dir)
        said = mpirun_rank_report(self.logs_dir, self._rc)
        if said is not None:
            return said
        lost = self._lost_host_report()
        if lost is not None:
            return lost
        return rl.failure_report("mpirun", rl.describe_exit(self._rc), self.logs_dir / "driver.log")

    def _lost_host_report(self) -> str | None:
        """When a rank on another host started, never reported an end and its host no longer answers
        SSH: that host was lost (the other ranks' errors follow from it), said with what to do. Asked once."""
        if not self._lost_asked:
            self._lost, self._lost_asked = self._find_lost_host(), True
        return self._lost

    def _find_lost_host(self) -> str | None:
        statuses = rl.read_statuses(self.logs_dir)
        local = self._state.get("local", [True] * self.n)
        hosts = self._state.get("hosts") or [None] * self.n
        for r in range(self.n):
            st = statuses.get(rl.task_tag(None, r), {})
            host = hosts[r] or st.get("host")
            if local[r] or not st or st.get("ended") or not host or _answers_ssh(host, self._state):
                continue
            return rl.failure_report(
                f"host {host} (rank {r})", "was lost mid-run: its rank never reported an end and the host no "
                "longer answers SSH", rl.log_file(self.logs_dir, rl.task_tag(None, r)),
                hint=f"mpirun stopped the other rank(s) (exit code {self._rc}); check that {host} is up and "
                     "answers ssh, then submit the run again")
        return None

    # -- internals ---------------------------------------------------------------------------
    def _observe(self, now: float | None) -> list[TaskObservation]:
        """Every rank from its launcher's record; with its socket when the policy wants a look at ``now``."""
        statuses = rl.read_statuses(self.logs_dir)
        ports = None
        if now is not None and self.policy.port_check_due(now):
            ports = tfc.listening_ports()  # reading /proc/net/tcp costs ~5-10 ms: not on every poll
            if ports is None:
                self.policy.stop_watching()
        local = self._state.get("local", [])
        looks = []
        for r in range(self.n):
            tag = rl.task_tag(None, r)
            port = self._state["ports"][r]
            looks.append(rank_observation(tag, statuses.get(tag, {}), f"{tfc.LOOPBACK}:{port}",
                                          port in ports if ports is not None and local[r] else None))
        return looks

    def _mpirun_exit(self) -> int | None:
        if self.popen is not None:
            return self.popen.poll()
        if is_same_process_alive(self.pid, self._state.get("create_time")):
            return None
        # Reattached, so mpirun was not our child: rebuild its result from the ranks' records.
        statuses = rl.read_statuses(self.logs_dir)
        codes = [s.get("exit_code") for s in statuses.values() if s.get("ended")]
        bad = [c for c in codes if c not in (0, None)]
        if bad:
            return bad[0] if bad[0] > 0 else 128 - bad[0]
        return 0 if len(codes) == self.n else -1

    def _stop_all(self, grace: float) -> None:
        """TERM mpirun and every rank at once; KILL the ranks left after ``grace``, then mpirun.

        mpirun alone takes about 2 s to clean up after a SIGTERM; the ranks on this machine are
        stopped directly instead, and mpirun gets a short wait once they are gone (the whole
        grace when some ranks are remote, which only mpirun can stop).
        """
        if self.popen is not None:
            running = self.popen.poll() is None
        else:
            running = is_same_process_alive(self.pid, self._state.get("create_time"))
        if running:
            procs = tree(self.pid)
            signal_processes(procs, signal.SIGTERM)
            stop_processes([p for p in procs if p.pid != self.pid], grace, first_signal=None)
            remote = not all(self._state.get("local", [True]))
            stop_processes([p for p in procs if p.pid == self.pid], grace if remote else 0.5, first_signal=None)
        kill_job_processes(self._state["token"])
        if self.popen is not None:
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
