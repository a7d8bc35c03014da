"""The fault-injection suite: kill anything, lose nothing, leave nothing behind (issue 14).

    .venv/bin/python benchmarks/chaos.py [--runs N] [--seed S] [--targets local,docker,mpi,ps]
        [--restart-dockerd [--private-dockerd | --dockerd-pidfile FILE [--allow-foreign-containers]]]
        [--faults KIND,...] [--keep]

Starts N small real training runs (the sample on the shipped Fashion-MNIST subset, a few
seconds each, metrics logged every batch; each job records the points it flushed, see
``chaos_lib/job_wrapper.py``) across the targets, and while they run injects, at times drawn
from the seed (``chaos_lib/plan.py``): SIGKILL of a supervisor, of the job's main process, of
one MPI rank, of one PS worker and of a ps task; ``docker kill`` of a run's container and of
one rank container; SIGKILL of a real window (``python -m mltrain_desktop --workspace WS``
under ``QT_QPA_PLATFORM=offscreen``) and of a CLI ``mltrain run logs --follow``; a second
client opening the workspace (``mltrain --workspace WS run list``); and, with
``--restart-dockerd``, a restart of the Docker engine. A local and a Docker endpoint are hit
with requests throughout. Then every client recovers (``Workspace.recover()``, the CLI) and the
suite checks; it prints one JSON line last and exits 1 when a count that must be 0 is not.

Expected outcomes (``chaos_lib/expect.py`` has the table the suite checks):
- a killed supervisor: on Docker (docker, docker_mpi) the job outlives it, a new supervisor
  reattaches and the run goes on to Completed; on a local target (local, mpi, ps) the job is
  a process tree that cannot be watched again, so the next client stops it and the run ends
  Failed naming the supervisor;
- a killed job main process or container: Failed; a killed rank or task (MPI rank 1, PS
  worker 0, ps 0, a rank container): Failed within 5 s, the error naming it;
- dockerd restarted: runs on Docker end Failed with "Docker engine restarted", or go on when
  their containers survived; with the engine's default ``live-restore: false`` they never do
  (dockerd stops every container when it stops);
- endpoints keep answering through everything except their own kill (a dockerd restart kills
  the Docker endpoint's container: its errors after one are reported apart), and a second
  client never stops them.

The Docker engine restart is opt-in because it stops every container on the engine, other
workspaces' included. It restarts only an engine that ``scripts/ensure_dockerd.sh`` started
(the pid file it wrote, default /run/mltrain-dockerd.pid), with ``scripts/stop_dockerd.sh``
then ``scripts/ensure_dockerd.sh``, and refuses while containers of other workspaces run unless
``--allow-foreign-containers`` is given. On a shared machine use ``--private-dockerd``: the
Docker target then runs on a throwaway engine the suite starts and stops itself (its own data
root, socket and bridge; see ``chaos_lib/dockerd.py``), which it may restart freely; Docker MPI
runs are not sent there (its rank containers could not reach each other), so mpi runs stay local.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaos_lib import checks, clients, dockerd, observe, plan, runner, setup  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

TARGETS = ("local", "docker", "mpi", "ps")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--targets", default="local,docker,mpi,ps", help="comma-separated: " + ", ".join(TARGETS))
    p.add_argument("--max-local", type=int, default=2, help="runs at once on the local target")
    p.add_argument("--max-docker", type=int, default=2, help="runs at once on the Docker target")
    p.add_argument("--spacing", type=float, default=1.5, help="seconds between submissions")
    p.add_argument("--deadline", type=float, default=None, help="seconds the runs may take in all")
    p.add_argument("--faults", help="draw run faults only from these (comma-separated), e.g. kill_supervisor")
    p.add_argument("--restart-dockerd", action="store_true", help="also restart the Docker engine once")
    p.add_argument("--dockerd-pidfile", default="/run/mltrain-dockerd.pid")
    p.add_argument("--private-dockerd", action="store_true",
                   help="run the Docker target on a throwaway engine of the suite's own (see chaos_lib/dockerd.py)")
    p.add_argument("--allow-foreign-containers", action="store_true")
    p.add_argument("--workdir", help="folder for the workspace (default: a new temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the workspace folder")
    args = p.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    bad = [t for t in args.targets if t not in TARGETS]
    if bad or not args.targets:
        p.error(f"unknown target(s) {bad}; choose from {', '.join(TARGETS)}")
    if args.runs < 1:
        p.error("--runs must be at least 1")
    known = {f for fs in plan.RUN_FAULTS.values() for f in fs}
    args.faults = {f.strip() for f in args.faults.split(",") if f.strip()} if args.faults else None
    if args.faults and args.faults - known:
        p.error(f"unknown fault(s) {sorted(args.faults - known)}; choose from {', '.join(sorted(known))}")
    return args


def preflight(args, root: Path, state: dict):
    """Checks Docker; starts the private engine if asked; returns (engine to restart or None, Docker URL)."""
    if "docker" not in args.targets:
        if args.restart_dockerd or args.private_dockerd:
            sys.exit("chaos: --restart-dockerd and --private-dockerd need docker in --targets")
        return None, None
    url = None
    if args.private_dockerd:
        engine = state["private"] = dockerd.PrivateEngine(root / "private-dockerd.log")
        engine.start()
        engine.ensure_image(setup.DOCKER_IMAGE)
        url = dockerd.PRIVATE_URL
    api = observe.docker_api(url)
    if api is None:
        sys.exit("chaos: no Docker engine answers; start one (scripts/ensure_dockerd.sh) or drop docker from --targets")
    try:
        api.inspect_image(setup.DOCKER_IMAGE)
    except Exception:  # noqa: BLE001
        sys.exit(f"chaos: the image {setup.DOCKER_IMAGE} is missing; build it with scripts/docker_base_image.sh")
    if not args.restart_dockerd:
        return None, url
    if args.private_dockerd:
        return state["private"], url
    engine = dockerd.ScriptEngine(REPO, Path(args.dockerd_pidfile))
    if not engine.started_by_script():
        sys.exit(f"chaos: --restart-dockerd restarts only an engine that scripts/ensure_dockerd.sh started; "
                 f"{args.dockerd_pidfile} names no running dockerd (pass --dockerd-pidfile, or --private-dockerd)")
    foreign = observe.foreign_running_containers(api, str(root / "ws"))
    if foreign and not args.allow_foreign_containers:
        sys.exit(f"chaos: restarting dockerd would stop {len(foreign)} container(s) of others "
                 f"({', '.join(foreign[:5])}); use --private-dockerd, or pass --allow-foreign-containers")
    return engine, url


def report(summary: dict, per_run: list[dict], monitor, hitter) -> None:
    for r in per_run:
        mark = "WRONG" if r["wrong_final_state"] else ("UNEXPECTED" if r["problems"] else "ok")
        print(f"[run] {mark:10} {r['kind']:10} {str(r['fault']):16} {r['status']:9} lost={r.get('lost')} "
              f"dup={r.get('dup')} rec={r['recovery_s']} {r['run']} {'; '.join(r['problems'])} "
              f"{r['error'][:120] if r['status'] == 'Failed' else ''}")
    for kind, found in monitor.orphans.items():
        for what in found.values():
            print(f"[orphan {kind}] {what}")
    for e in monitor.client_errors:
        print(f"[client error] {e}")
    for at, name, what in (hitter.errors if hitter else [])[:10]:
        print(f"[endpoint error] {time.strftime('%H:%M:%S', time.localtime(at))} {name}: {what}")
    for m in monitor.missed:
        print(f"[missed] {m['kind']} {m['run'] or ''} (its victim was not there)")


def check_endpoints_gone(ws, names: list[str], monitor, url: str | None) -> None:
    """After deleting the endpoints, their process and container must go."""
    from mltrain_desktop.core import Webservice
    pids = []
    for name in names:
        try:
            pid = Webservice(ws, name).as_dict().get("pid")
            pids.append(pid) if pid else None
        except Exception:  # noqa: BLE001 - deleted already (e.g. by a bug): then nothing to find
            pass
    setup.delete_endpoints(ws, names)
    time.sleep(3)
    import psutil
    for pid in pids:
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            monitor.orphans["processes"].setdefault(pid, f"endpoint server pid {pid} after its endpoint was deleted")
    for c in observe.workspace_containers(observe.docker_api(url), str(ws.path)):
        if (c.get("Labels") or {}).get("mltrain.endpoint"):
            monitor.orphans["containers"].setdefault(c["Id"], f"{c['Names'][0]} after its endpoint was deleted")


def cancel_leftovers(ws) -> None:
    from mltrain_desktop.core.runs import Run
    for r in Run.list(ws):
        if not r.is_terminal():
            try:
                r.cancel(wait_seconds=20)
            except Exception:  # noqa: BLE001
                pass


def main(argv=None) -> int:
    args = parse_args(argv)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="mltrain-chaos-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.environ["MLTRAIN_HOME"] = str(root / "home")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    state: dict = {}
    try:
        engine, url = preflight(args, root, state)
    except BaseException:
        clean_up(state)
        raise
    planned, globals_ = plan.make_plan(args.seed, args.runs, args.targets, engine is not None, args.spacing,
                                       args.faults, docker_mpi=not args.private_dockerd)
    for p in planned:
        print(f"[plan] run {p.index:2} {p.kind:10} fault={p.fault} +{p.fault_delay_s}s submit@{p.submit_at_s}s")
    for g in globals_:
        print(f"[plan] {g.kind} @{g.at_s}s")
    try:
        summary = run_suite(args, root, engine, url, planned, globals_, state)
    finally:
        clean_up(state)
    if not args.keep and not args.workdir:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"[chaos] kept {root}")
    print(json.dumps(summary), flush=True)
    return 1 if checks.failed_counts(summary) else 0


def run_suite(args, root: Path, engine, url, planned, globals_, state: dict) -> dict:
    t_start = time.time()
    docker = "docker" in args.targets
    ws, ds = setup.create_workspace(root, docker, args.max_local, args.max_docker, url)
    state["ws"] = ws
    source = setup.make_source_folder(root)
    state["endpoints"] = endpoints = setup.deploy_endpoints(ws, root, docker)
    print(f"[chaos] workspace {ws.path}; endpoints {', '.join(endpoints)} Healthy after {time.time() - t_start:.1f} s")
    state["hitter"] = hitter = clients.EndpointHitter(str(ws.path), endpoints)
    hitter.start()
    state["monitor"] = monitor = runner.Monitor(ws, ds, source, root, planned, globals_, engine, url,
                                                say=lambda s: print(s, flush=True))
    monitor.start_clients()
    monitor.loop(args.deadline or (90 + 12 * args.runs + runner.STUCK_AFTER_S))
    monitor.settle()
    hitter.stop()
    summary, per_run = checks.summarize(monitor, hitter, time.time() - t_start, args.seed, args.targets)
    check_endpoints_gone(ws, endpoints, monitor, url)
    state["endpoints"] = []
    summary.update(orphan_processes=len(monitor.orphans["processes"]),
                   orphan_containers=len(monitor.orphans["containers"]))
    report(summary, per_run, monitor, hitter)
    return summary


def clean_up(state: dict) -> None:
    """Whatever happened: no client, endpoint or run of the suite is left running."""
    if state.get("hitter"):
        state["hitter"].stop()
    monitor = state.get("monitor")
    if monitor is not None:
        clients.stop(monitor.window)
        for f in monitor.followers:
            clients.stop(f)
    ws = state.get("ws")
    if ws is not None:
        setup.delete_endpoints(ws, state.get("endpoints") or [])
        cancel_leftovers(ws)
        ws.close()
    if state.get("private") is not None:
        state["private"].shut_down()


if __name__ == "__main__":
    sys.exit(main())
