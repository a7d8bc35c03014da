"""Read-only queries the window (on its worker threads) and the CLI share.

Plain functions ``f(ws, state, ...) -> data`` (``state`` reports progress and cancellation; the
CLI passes None). They go through the SDK, or the store's repository functions for summaries
the SDK lacks (runs with their primary metric, counts by state), and return plain dicts and
lists: nothing here knows about Qt, and nothing of Qt crosses threads.
"""
from __future__ import annotations

import json

import numpy as np

from ..store import catalog, endpoints, experiments, info, metrics, runs as run_rows
from .slurm_view import job_states
from .sweeps import sweep_summary

PRIMARY_METRICS = ("final_test_accuracy", "val_accuracy", "accuracy", "val_loss", "loss")


# ------------------------------------------------------------------------------ overview

def overview(ws, state=None) -> dict:
    by_state = run_rows.count_by_status(ws.db.conn)
    return {
        "path": str(ws.path),
        "name": ws.name,
        **info.counts(ws.db.conn),
        "runs_by_state": by_state,
        "runs": sum(by_state.values()),
        "recent_runs": list_runs(ws, None, limit=10, with_metrics=False),
    }


def disk_usage(ws, state=None) -> int:
    return ws.disk_usage()


# ------------------------------------------------------------------------------ runs

def _json_dict(text: str | None) -> dict:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def list_runs(ws, state=None, experiment: str | None = None, limit: int | None = None,
              with_metrics: bool = True, status: str | None = None) -> list[dict]:
    """Runs newest first, with experiment name and (optionally) their primary metric."""
    out = []
    for r in run_rows.summaries(ws.db.conn, experiment=experiment, status=status, limit=limit):
        spec = _json_dict(r.pop("spec"))
        r.update(tags=_json_dict(r["tags"]), script=spec.get("entry_script", ""),
                 distribution=spec.get("distribution") or {}, error=r["error"] or "",
                 metric_name="", metric_value=None)
        out.append(r)
    if with_metrics and out:
        _attach_primary_metrics(ws, out)
    for r in out:
        if r.get("run_type") == "hyperdrive":
            try:
                r["sweep"] = sweep_summary(ws, r["id"])
            except (LookupError, KeyError, ValueError):
                r["sweep"] = None  # a sweep whose settings cannot be read shows as a plain row
    return out


def _attach_primary_metrics(ws, runs: list[dict]) -> None:
    """Sets metric_name/metric_value: the run's tag ``primary_metric`` or the first of
    PRIMARY_METRICS it logged (else its first metric), last value, rank 0."""
    series = metrics.rank0_series(ws.db.conn)
    for r in runs:
        names = series.get(r["id"])
        if not names:
            continue
        wanted = r["tags"].get("primary_metric")
        pick = wanted if wanted in names else next((n for n in PRIMARY_METRICS if n in names), None)
        if pick is None:
            pick = sorted(names)[0]
        point = metrics.last_point(ws.db.conn, names[pick])
        if point is not None:
            r["metric_name"] = pick
            r["metric_value"] = point[0] if point[1] is None else point[1]


def run_state(ws, run) -> dict:
    """One run as its detail view shows it: row, state timeline, inputs and folder."""
    row = run._require_row()
    return {"id": run.id, "experiment": run.experiment.name, "number": row["number"], "status": row["status"],
            "compute": row["compute"], "created": row["created"], "started": row["started"],
            "ended": row["ended"], "exit_code": row["exit_code"], "error": row["error"], "spec": row["spec"],
            "tags": row["tags"], "events": run.get_events(), "run_dir": str(run.run_dir),
            "run_dir_exists": run.run_dir.is_dir(), "inputs": run_rows.inputs(ws.db.conn, run.id)}


def list_experiments(ws, state=None) -> list[str]:
    return experiments.names(ws.db.conn)


def run_compare_data(ws, state, run_ids: list[str]) -> list[dict]:
    """For each run: its arguments as parameters, tags, and the last value of each metric."""
    from ..core.runs import Run
    out = []
    for rid in run_ids:
        try:
            run = Run.get(ws, rid)
            spec = run.spec
        except Exception:  # noqa: BLE001 - deleted meanwhile
            continue
        params = _params_from_args(spec.get("arguments", []))
        finals = {}
        for name, rank in run.get_metric_names():
            if rank != 0:
                continue
            steps, values, _ = run.get_metric_series(name, rank=0, after_step=-1)
            if values:
                finals[name] = values[-1]
        row = run._require_row()
        out.append({"id": rid, "experiment": run.experiment.name, "number": row["number"],
                    "status": row["status"], "params": params, "tags": run.get_tags(), "final": finals,
                    "script": spec.get("entry_script"), "compute": row["compute"]})
    return out


def _params_from_args(args: list) -> dict:
    params, i = {}, 0
    while i < len(args):
        a = args[i]
        if isinstance(a, str) and a.startswith("-"):
            nxt = args[i + 1] if i + 1 < len(args) else None
            if nxt is None or (isinstance(nxt, str) and nxt.startswith("--")):
                params[a] = ""
                i += 1
            else:
                params[a] = nxt if isinstance(nxt, str) else f"dataset {nxt.get('dataset')}:{nxt.get('version')}"
                i += 2
        else:
            params[f"arg{i}"] = a if isinstance(a, str) else f"dataset {a.get('dataset')}:{a.get('version')}"
            i += 1
    return params


def metric_series_for(ws, state, run_ids: list[str], name: str, rank: int = 0) -> list[tuple]:
    """(run_id, label, steps, values, walls) for one metric across runs (compare view)."""
    from ..core.runs import Run
    out = []
    for rid in run_ids:
        try:
            run = Run.get(ws, rid)
        except Exception:  # noqa: BLE001
            continue
        s, v, w = run.get_metric_series(name, rank=rank)
        vals = np.array([x if isinstance(x, (int, float)) else None for x in v], dtype=np.float64)
        out.append((rid, f"{run.experiment.name} #{run.number}", np.asarray(s, dtype=np.float64), vals,
                    np.asarray(w, dtype=np.float64)))
    return out


def register_model_defaults(ws, state, run_id: str) -> dict:
    """What the Register model dialog offers: output folders/files and a framework version guess."""
    from ..core.runs import Run
    run = Run.get(ws, run_id)
    outputs = [n for n in run.get_file_names() if n.startswith("outputs/")]
    choices = sorted({"/".join(n.split("/")[:k]) for n in outputs for k in range(2, len(n.split("/")) + 1)})
    text, _ = run.read_log("driver.log", max_bytes=1 << 20)
    tf_version = None
    for line in text.splitlines():
        if line.startswith("TensorFlow "):
            tf_version = line.split()[1].rstrip(",")
            break
    spec = run.spec
    framework = spec.get("framework") or ("TensorFlow" if tf_version else None)
    return {"choices": choices, "framework": framework, "framework_version": tf_version,
            "default": "outputs/model" if "outputs/model" in choices else (choices[0] if choices else "")}


# ------------------------------------------------------------------------------ datasets

def list_datasets(ws, state=None) -> list[dict]:
    return catalog.version_listing(ws.db.conn)


def dataset_files(ws, state, version_id: int) -> list[dict]:
    from ..core.dataset import Dataset
    return list(Dataset.get_by_id(ws, version_id).files)


# ------------------------------------------------------------------------------ compute, models, endpoints

def list_compute(ws, state=None) -> list[dict]:
    from ..core.compute import ComputeTarget
    busy = run_rows.slots_in_use(ws.db.conn)
    out = []
    for t in ComputeTarget.list(ws).values():
        d = t.as_dict()
        d["gpus"] = t.gpus
        d["max_concurrent_runs"] = t.max_concurrent_runs
        d["active_runs"] = busy.get(t.name, 0)
        if t.kind == "slurm":
            d["slurm_jobs"] = job_states(ws, t.name)
        out.append(d)
    return out


def target_exists(ws, name: str) -> bool:
    from ..store import targets
    return targets.exists(ws.db.conn, name)


def list_models(ws, state=None) -> list[dict]:
    from ..core.model import Model
    return [m.as_dict() for m in Model.list(ws)]


def endpoint_names(ws) -> list[str]:
    """Every endpoint's name, sorted."""
    return endpoints.names(ws.db.conn)


def endpoint_exists(ws, name: str) -> bool:
    return endpoints.exists(ws.db.conn, name)


def submit_choices(ws, state=None) -> dict:
    """Experiments, compute targets (with state) and dataset versions for the submit dialog."""
    from ..core.compute import ComputeTarget
    targets = [{"name": t.name, "kind": t.kind, "state": t.provisioning_state, "detail": t.state_detail,
                "gpus": len(t.gpus)} for t in ComputeTarget.list(ws).values()]
    return {"experiments": list_experiments(ws), "targets": targets,
            "datasets": [{"name": d["name"], "version": d["version"], "version_id": d["version_id"]}
                         for d in list_datasets(ws)]}
