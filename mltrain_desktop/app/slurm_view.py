"""A Slurm target as the Compute view shows it: its partitions and node states (from the last
probe; "Check again" probes anew) and, for each unfinished run on it, what Slurm says about its
job (a PENDING job with its reason, e.g. "Resources"), read from the run's ``slurm/state.json``
that the Slurm backend keeps."""
from __future__ import annotations

import json

from ..store import runs as run_rows

STATE_FILE = "slurm/state.json"


def cluster_text(probe: dict) -> str:
    """Partitions and nodes as lines of text (empty when the probe found no cluster)."""
    if not probe or not probe.get("partitions"):
        return ""
    lines = [f"Cluster {probe.get('cluster') or '?'} (Slurm {probe.get('slurm_version') or '?'}) "
             f"via {probe.get('login_host') or 'this machine'}", "", "Partitions:"]
    for p in probe["partitions"]:
        lines.append(f"  {p['name']}{'*' if p.get('default') else ''}  {p.get('state', '').lower():<6} "
                     f"{p.get('total_nodes') or 0} node(s), {p.get('total_cpus') or 0} CPUs, "
                     f"max {p.get('max_nodes') or 'any'} node(s) per job, max time {p.get('max_time')}")
    lines += ["", "Nodes:"]
    for n in probe.get("nodes") or []:
        gpus = f", {n['gpus']} GPU(s)" if n.get("gpus") else ""
        lines.append(f"  {n['name']:<12} {n.get('state', '?'):<10} {n.get('cpus') or '?'} CPUs{gpus}, "
                     f"partitions {', '.join(n.get('partitions') or [])}")
    files = [f"  shared workspace: {probe['shared']['detail']}"] if probe.get("shared") else []
    if probe.get("staging"):
        files.append(f"  staging: {probe['staging']['detail']}")
    if files:
        lines += ["", "Files:", *files]
    return "\n".join(lines)


def job_states(ws, target: str) -> list[dict]:
    """For each unfinished run on ``target``: run id, run status, Slurm state, reason and nodes."""
    out = []
    for run_id, status in run_rows.unfinished_runs_on(ws.db.conn, target):
        try:
            rec = json.loads((ws.runs_dir / run_id / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            rec = {}
        out.append({"run_id": run_id, "status": status, "slurm_state": rec.get("slurm_state", "not submitted yet"),
                    "reason": rec.get("reason") or "", "nodes": rec.get("nodes") or "", "job_id": rec.get("job_id")})
    return out


def jobs_text(jobs: list[dict]) -> str:
    if not jobs:
        return "No unfinished runs on this target."
    lines = ["Runs on this target:"]
    for j in jobs:
        why = f" ({j['reason']})" if j["reason"] and j["reason"] != "None" else ""
        where = f" on {j['nodes']}" if j["nodes"] and j["slurm_state"] == "RUNNING" else ""
        job = f"job {j['job_id']} " if j["job_id"] else ""
        lines.append(f"  {j['run_id']}: {j['status']}; Slurm {job}{j['slurm_state']}{why}{where}")
    return "\n".join(lines)
