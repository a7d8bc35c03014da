"""The chaos run's loop: submits the planned runs, fires the faults on time, watches what follows.

One thread (the caller's) does everything but the endpoint hitter: every tick it reads each
run's state through the SDK, fires the run faults that are due (a seeded delay after the run's
first flushed metric point, while it is Running) and the global ones, scans processes,
containers and networks every second, and, like ``Run.wait_for_completion`` does, calls
``Workspace.recover()`` when an unfinished run has no live supervisor.
"""
from __future__ import annotations

import dataclasses
import re
import threading
import time
from pathlib import Path

from . import clients, faults, observe, setup
from .plan import PlannedGlobal, PlannedRun

TICK_S = 0.2
SCAN_EVERY_S = 1.0
RECOVER_EVERY_S = 2.0
FIND_VICTIM_S = 3.0          # a run fault whose victim is not found within this is "missed"
ORPHAN_GRACE_S = 1.5         # a job process, container or network outliving its terminal run by more is an orphan
SUPERVISOR_GRACE_S = 10.0    # a supervisor may take a moment to exit after writing the final state
STUCK_AFTER_S = 60.0
GLOBAL_RETRY_FOR_S = 60.0     # a global fault with nothing to hit is tried again for this long
TERMINAL = ("Completed", "Failed", "Canceled")


@dataclasses.dataclass
class Tracked:
    plan: PlannedRun
    run: object = None
    id: str = ""
    status: str = ""
    submit_error: str = ""
    running_at: float | None = None
    first_point_at: float | None = None
    fault_at: float | None = None       # when the run's own fault (or the engine restart) hit it
    fault: str | None = None            # what actually hit it
    fault_what: str = ""
    tries_since: float | None = None
    terminal_at: float | None = None
    reattached_at: float | None = None
    log_offset: int = 0
    job_seen: bool = False
    job_gone_at: float | None = None
    has_supervisor: bool = True

    @property
    def active(self) -> bool:
        return bool(self.id) and self.status not in TERMINAL


class Monitor:
    def __init__(self, ws, dataset, source: Path, root: Path, planned: list[PlannedRun],
                 globals_: list[PlannedGlobal], engine=None, docker_url: str | None = None, say=print):
        self.ws, self.dataset, self.source, self.root = ws, dataset, source, root
        self.ws_path = str(ws.path)
        self.home = root / "home"
        self.runs = [Tracked(p) for p in planned]
        self.globals = list(globals_)
        self.engine = engine          # what restart_dockerd restarts (chaos_lib.dockerd), or None
        self.docker_url = docker_url  # the engine of the Docker target (None: the default one)
        self.say = say
        self.api = observe.docker_api(docker_url)
        self.injected: list[dict] = []            # every fault that hit: kind, at, what, run
        self.missed: list[dict] = []
        self.orphans = {"processes": {}, "containers": {}, "networks": {}}
        self.client_errors: list[str] = []
        self.window = None
        self.followers: list = []
        self.restarting: threading.Thread | None = None
        self.t0 = 0.0
        self._next_scan = self._next_recover = 0.0
        self.last_scan: dict = {"procs": [], "containers": [], "networks": []}

    # -- the loop ----------------------------------------------------------------------------
    def start_clients(self) -> None:
        self.window = clients.start_window(self.ws_path, self.home, self.root / "window.log")

    def loop(self, deadline_s: float) -> None:
        self.t0 = time.time()
        end = self.t0 + deadline_s
        while time.time() < end:
            now = time.time()
            self._submit_due(now)
            self._watch_runs(now)
            self._fire_run_faults(now)
            self._fire_globals(now)
            if now >= self._next_scan:
                self._next_scan = now + SCAN_EVERY_S
                self.scan(now)
            if now >= self._next_recover:
                self._next_recover = now + RECOVER_EVERY_S
                self._recover_orphaned(now)
            if self._done(now):
                return
            time.sleep(TICK_S)

    def _done(self, now: float) -> bool:
        if self.globals or any(not t.id and not t.submit_error for t in self.runs):
            return False
        if self.restarting is not None and self.restarting.is_alive():
            return False
        return all(not t.active or (t.job_gone_at and now - t.job_gone_at > STUCK_AFTER_S) for t in self.runs)

    # -- runs ----------------------------------------------------------------------------------
    def _submit_due(self, now: float) -> None:
        for t in self.runs:
            if not t.id and not t.submit_error and now - self.t0 >= t.plan.submit_at_s:
                try:
                    t.run = setup.submit(self.ws, t.plan.kind, self.source, self.dataset)
                    t.id = t.run.id
                    t.status = "Queued"
                except Exception as exc:  # noqa: BLE001 - a submit error is a finding
                    t.submit_error = f"{type(exc).__name__}: {exc}"
                    self.client_errors.append(f"submit of run {t.plan.index}: {t.submit_error}")

    def _watch_runs(self, now: float) -> None:
        for t in self.runs:
            if not t.active:
                continue
            status = t.run.get_status()
            if status != t.status:
                t.status = status
                if status == "Running" and t.running_at is None:
                    t.running_at = now
                if status in TERMINAL:
                    t.terminal_at = now
            if t.first_point_at is None and any(self._run_dir(t).glob("logs/*.flushed")):
                if any(p.stat().st_size for p in self._run_dir(t).glob("logs/*.flushed")):
                    t.first_point_at = now
            if t.fault_at is not None and t.reattached_at is None:
                text, t.log_offset = t.run.read_log("driver.log", t.log_offset)
                if "reattached to the running job" in text:
                    t.reattached_at = now

    def _run_dir(self, t: Tracked) -> Path:
        return self.ws.runs_dir / t.id

    def _fire_run_faults(self, now: float) -> None:
        for t in self.runs:
            p = t.plan
            if p.fault is None or t.fault is not None or not t.active or t.status != "Running":
                continue
            if t.first_point_at is None or now < t.first_point_at + p.fault_delay_s:
                continue
            t.tries_since = t.tries_since or now
            state = t.run.get_details().get("backendState") or {}
            what = faults.RUN_INJECTORS[p.fault](self.ws_path, t.id, kind=p.kind, backend_state=state, api=self.api)
            if what:
                t.fault, t.fault_at, t.fault_what = p.fault, time.time(), what
                self.injected.append({"kind": p.fault, "run": t.id, "at": t.fault_at, "what": what})
                self.say(f"[chaos] {p.fault} on {t.id} ({p.kind}): {what}")
            elif now - t.tries_since > FIND_VICTIM_S:
                t.fault = "missed"
                self.missed.append({"kind": p.fault, "run": t.id})

    def _recover_orphaned(self, now: float) -> None:
        """What a waiting client does (``Run.wait_for_completion``): recover when a run's supervisor is gone."""
        if any(t.active and not t.has_supervisor for t in self.runs):
            try:
                self.ws.recover()
            except Exception as exc:  # noqa: BLE001 - a client that cannot recover is a finding
                self.client_errors.append(f"Workspace.recover(): {type(exc).__name__}: {exc}")

    # -- global faults -------------------------------------------------------------------------
    def _fire_globals(self, now: float) -> None:
        while self.globals and now - self.t0 >= self.globals[0].at_s:
            g = self.globals.pop(0)
            what = getattr(self, f"_g_{g.kind}")()
            if what:
                self.injected.append({"kind": g.kind, "run": None, "at": time.time(), "what": what})
                self.say(f"[chaos] {g.kind}: {what}")
            elif self._runs_left() and now - self.t0 - (g.first_at_s or g.at_s) < GLOBAL_RETRY_FOR_S:
                # nothing to hit right now (no run in flight): try again a little later
                self.globals.append(PlannedGlobal(g.kind, now - self.t0 + 2.0, g.first_at_s or g.at_s))
                self.globals.sort(key=lambda x: x.at_s)
                return
            else:
                self.missed.append({"kind": g.kind, "run": None})

    def _runs_left(self) -> bool:
        return any(t.active or (not t.id and not t.submit_error) for t in self.runs)

    def _g_kill_window(self) -> str | None:
        if not clients.sigkill(self.window):
            return None
        self.window = clients.start_window(self.ws_path, self.home, self.root / "window.log")
        return "SIGKILL of the window, then a new window opened on the workspace"

    def _g_kill_cli_follow(self) -> str | None:
        live = [t for t in self.runs if t.active and t.status == "Running"]
        if not live:
            return None
        follower = clients.cli(self.ws_path, self.home, "run", "logs", live[0].id, "--follow",
                               log=self.root / "follow.log", wait=False)
        self.followers.append(follower)
        time.sleep(1.0)  # let it open the workspace and start following
        clients.sigkill(follower)
        return f"SIGKILL of `mltrain run logs {live[0].id} --follow`"

    def _g_second_client(self) -> str | None:
        r = clients.cli(self.ws_path, self.home, "run", "list")
        if r.returncode != 0 or "locked" in r.stderr:
            self.client_errors.append(f"`mltrain run list` exit {r.returncode}: {r.stderr.strip()[-300:]}")
        return "`mltrain --workspace WS run list` (a second client opening the workspace)"

    def _g_restart_dockerd(self) -> str | None:
        """Restarts the engine in a thread (stopping takes dockerd up to ~30 s) while the loop goes on."""
        if self.engine is None:
            return None
        hit = [t for t in self.runs if t.active and t.plan.kind in ("docker", "docker_mpi") and t.fault is None]
        at = time.time()
        for t in hit:
            t.fault, t.fault_at, t.fault_what = "restart_dockerd", at, "the Docker engine restarted"

        def restart() -> None:
            ok, said = self.engine.restart()
            self.say(f"[chaos] restart_dockerd done after {time.time() - at:.1f} s: {said}")
            if not ok:
                self.client_errors.append(f"restarting dockerd failed: {said}")
            self.api = observe.docker_api(self.docker_url)

        self.restarting = threading.Thread(target=restart, name="restart-dockerd", daemon=True)
        self.restarting.start()
        return f"dockerd restart begun; {len(hit)} Docker run(s) in flight"

    # -- scanning ------------------------------------------------------------------------------
    def scan(self, now: float) -> None:
        by_id = {t.id: t for t in self.runs if t.id}
        procs = observe.run_processes(self.ws_path, set(by_id))
        containers = observe.workspace_containers(self.api, self.ws_path)
        networks = observe.workspace_networks(self.api, self.ws_path)
        self.last_scan = {"procs": procs, "containers": containers, "networks": networks}
        alive_job = {p.run_id for p in procs if p.role == "job"}
        alive_job |= {(c.get("Labels") or {}).get("mltrain.run") for c in containers if c.get("State") == "running"}
        supervised = {p.run_id for p in procs if p.role == "supervisor"}
        for t in by_id.values():
            t.has_supervisor = t.id in supervised
            if t.id in alive_job:
                t.job_seen, t.job_gone_at = True, None
            elif (t.job_seen or t.running_at) and t.job_gone_at is None:
                t.job_gone_at = now
        self._orphans(now, by_id, procs, containers, networks)

    def _orphans(self, now, by_id, procs, containers, networks) -> None:
        def over(run_id, grace: float = ORPHAN_GRACE_S) -> bool:
            t = by_id.get(run_id)
            return t is not None and t.terminal_at is not None and now - t.terminal_at > grace
        for p in procs:
            if over(p.run_id, SUPERVISOR_GRACE_S if p.role == "supervisor" else ORPHAN_GRACE_S):
                self.orphans["processes"].setdefault(p.pid, f"{p.role} of {p.run_id}: {' '.join(p.cmdline)[:160]}")
        for c in containers:
            rid = (c.get("Labels") or {}).get("mltrain.run")
            if rid and over(rid):
                self.orphans["containers"].setdefault(c["Id"], f"{c['Names'][0]} of {rid} ({c.get('State')})")
        for n in networks:
            rid = (n.get("Labels") or {}).get("mltrain.run")
            if rid and over(rid):
                self.orphans["networks"].setdefault(n["Id"], f"{n['Name']} of {rid}")

    def settle(self, grace_s: float = SUPERVISOR_GRACE_S + 2) -> None:
        """Every client recovers; then what is left is scanned until the orphan grace has passed."""
        for t in self.runs:  # a run that ended before its fault was due was not hit: say so
            if t.plan.fault and t.fault is None:
                t.fault = "missed"
                self.missed.append({"kind": t.plan.fault, "run": t.id})
        clients.stop(self.window)
        for f in self.followers:
            clients.stop(f)
        try:
            self.ws.recover()
        except Exception as exc:  # noqa: BLE001
            self.client_errors.append(f"final Workspace.recover(): {type(exc).__name__}: {exc}")
        self._g_second_client()
        for log in ("window.log", "follow.log"):
            text = (self.root / log).read_text(errors="replace") if (self.root / log).exists() else ""
            # the client's own traceback starts a line; a job's, relayed by `run logs --follow`,
            # comes prefixed with its task ("[chief 0] Traceback ...") and is the job's business
            found = re.search(r"^Traceback \(most recent call last\)", text, re.MULTILINE)
            if found:
                self.client_errors.append(f"{log} shows an exception: {text[found.start():][:600]}")
        end = time.time() + grace_s
        while time.time() < end:
            self._watch_runs(time.time())
            self.scan(time.time())
            time.sleep(SCAN_EVERY_S)
