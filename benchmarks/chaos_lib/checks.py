"""After the chaos: each run's metrics against what its job flushed, its final state, the figures.

Definitions (issue 14):
- a metric point is *lost* if the job recorded it as flushed to its metrics file (the
  ``*.flushed`` side files of :mod:`job_wrapper`) and the database does not have it after
  recovery; *duplicated* if the database holds it more often than the job flushed it;
- an *orphan* is a process, container or network of the workspace that outlives its run (by
  more than the suite's grace period, see ``runner.ORPHAN_GRACE_S``);
- a *stuck* run is one not terminal 60 s after its job is gone (or at the suite's deadline);
- a *wrong final state* is a run whose job a fault killed that ends Completed, or a run that
  nothing killed that ends Failed;
- *recovery time* is fault -> the run's state saying what happened;
- *unexpected outcomes* are runs whose end differs from :mod:`expect` in any other way
  (the error does not name what was killed, a rank failure took more than 5 s, a Docker
  supervisor was not replaced).
"""
from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path

from . import expect, setup

MUST_BE_ZERO = ("metrics_lost", "metrics_duplicated", "orphan_processes", "orphan_containers",
                "orphan_networks", "stuck_runs", "wrong_final_state", "endpoint_errors",
                "unexpected_outcomes", "client_errors")


def flushed_points(run_dir: Path) -> Counter:
    points: Counter = Counter()
    for side in sorted((run_dir / "logs").glob("*.flushed")):
        for line in side.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                name, step, rank = json.loads(line)
            except ValueError:
                continue  # not a point (one os.write per line, so SIGKILL cannot cut one)
            points[(name, int(step), int(rank))] += 1
    return points


def stored_points(run) -> Counter:
    points: Counter = Counter()
    for name, rank in run.get_metric_names():
        steps, _values, _walls = run.get_metric_series(name, rank=rank)
        for s in steps:
            points[(name, int(s), int(rank))] += 1
    return points


def compare_metrics(run, run_dir: Path) -> tuple[int, int, int]:
    """(lost, duplicated, flushed) points of one run."""
    flushed, stored = flushed_points(run_dir), stored_points(run)
    lost = sum(max(0, n - stored.get(k, 0)) for k, n in flushed.items())
    dup = sum(max(0, n - max(1, flushed.get(k, 0))) for k, n in stored.items())
    return lost, dup, sum(flushed.values())


def judge_run(t) -> dict:
    """One run's outcome against its expectation."""
    details = t.run.get_details() if t.run is not None else {}
    status = details.get("status", t.status or "not submitted")
    error = (details.get("error") or {}).get("message", "") or ""
    fault = t.fault if t.fault not in (None, "missed") else None
    end_s = (t.terminal_at - t.fault_at) if (t.terminal_at and t.fault_at) else None
    problems = expect.judge(fault, t.plan.kind, status, error, end_s, t.reattached_at is not None)
    killed = expect.killed_job(fault, t.plan.kind)
    wrong = (killed and status == "Completed") or (fault is None and status == "Failed")
    recovery = None
    if fault is not None:
        said_at = t.reattached_at if expect.expectation(fault, t.plan.kind).reattach else t.terminal_at
        recovery = round(said_at - t.fault_at, 2) if said_at else None
    return {"run": t.id, "kind": t.plan.kind, "fault": fault, "planned_fault": t.plan.fault,
            "what": t.fault_what, "status": status, "error": error.splitlines()[0][:200] if error else "",
            "problems": [] if wrong else problems, "wrong_final_state": wrong, "recovery_s": recovery}


def summarize(monitor, hitter, wall_s: float, seed: int, targets: list[str]) -> tuple[dict, list[dict]]:
    per_run, lost, dup, flushed = [], 0, 0, 0
    for t in monitor.runs:
        row = judge_run(t)
        if t.run is not None:
            row["lost"], row["dup"], row["flushed"] = compare_metrics(t.run, monitor.ws.runs_dir / t.id)
            lost, dup, flushed = lost + row["lost"], dup + row["dup"], flushed + row["flushed"]
        row["stuck"] = t.active
        per_run.append(row)
    rec = [r["recovery_s"] for r in per_run if r["recovery_s"] is not None]
    by_kind = Counter(f["kind"] for f in monitor.injected)
    restarts = [f["at"] for f in monitor.injected if f["kind"] == "restart_dockerd"]
    own_kill = [e for e in (hitter.errors if hitter else [])
                if restarts and e[1] == setup.DOCKER_ENDPOINT and e[0] >= min(restarts)]
    endpoint_errors = (len(hitter.errors) if hitter else 0) - len(own_kill)
    summary = {
        "runs": len(monitor.runs),
        "faults": len(monitor.injected),
        "metrics_lost": lost,
        "metrics_duplicated": dup,
        "orphan_processes": len(monitor.orphans["processes"]),
        "orphan_containers": len(monitor.orphans["containers"]),
        "orphan_networks": len(monitor.orphans["networks"]),
        "stuck_runs": sum(1 for r in per_run if r["stuck"]),
        "wrong_final_state": sum(1 for r in per_run if r["wrong_final_state"]),
        "endpoint_errors": endpoint_errors,
        "recovery_s_p50": round(statistics.median(rec), 2) if rec else None,
        "recovery_s_max": round(max(rec), 2) if rec else None,
        "unexpected_outcomes": sum(1 for r in per_run if r["problems"]),
        "client_errors": len(monitor.client_errors),
        "faults_by_kind": dict(sorted(by_kind.items())),
        "faults_missed": len(monitor.missed),
        "metric_points_flushed": flushed,
        "endpoint_requests_ok": sum(hitter.ok.values()) if hitter else 0,
        "endpoint_errors_after_engine_restart": len(own_kill),
        "seed": seed, "targets": ",".join(targets), "wall_s": round(wall_s, 1),
    }
    return summary, per_run


def failed_counts(summary: dict) -> list[str]:
    return [k for k in MUST_BE_ZERO if summary.get(k)]
