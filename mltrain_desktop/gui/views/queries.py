"""Read-only queries the views need, run on worker threads (each with its own connection).

Plain functions ``f(ws, state, ...) -> data`` for :meth:`Bridge.run`. Most go through the core
objects; a few summaries the core lacks (runs with their primary metric, counts by state) are
small SQL here. They return plain dicts and lists: no Qt objects cross threads.
"""
from __future__ import annotations

import gzip
import json
import sqlite3
import struct
from pathlib import Path

import numpy as np

ACTIVE = ("Queued", "Preparing", "Running", "Finalizing")
TERMINAL = ("Completed", "Failed", "Canceled")
PRIMARY_METRICS = ("final_test_accuracy", "val_accuracy", "accuracy", "val_loss", "loss")


# ------------------------------------------------------------------------------ overview

def overview(ws, state=None) -> dict:
    db = ws.db
    by_state = dict(db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())
    return {
        "path": str(ws.path),
        "name": ws.name,
        "experiments": db.execute("SELECT COUNT(*) FROM experiments").fetchone()[0],
        "datasets": db.execute("SELECT COUNT(*) FROM datasets").fetchone()[0],
        "dataset_versions": db.execute("SELECT COUNT(*) FROM dataset_versions").fetchone()[0],
        "compute_targets": db.execute("SELECT COUNT(*) FROM compute_targets").fetchone()[0],
        "models": db.execute("SELECT COUNT(DISTINCT name) FROM models").fetchone()[0],
        "model_versions": db.execute("SELECT COUNT(*) FROM models").fetchone()[0],
        "runs_by_state": by_state,
        "runs": sum(by_state.values()),
        "recent_runs": list_runs(ws, None, limit=10, with_metrics=False),
    }


def disk_usage(ws, state=None) -> int:
    return ws.disk_usage()


# ------------------------------------------------------------------------------ runs

def list_runs(ws, state=None, experiment: str | None = None, limit: int | None = None,
              with_metrics: bool = True) -> list[dict]:
    """Runs newest first, with experiment name and (optionally) their primary metric."""
    sql = ("SELECT r.id, e.name, r.number, r.status, r.compute, r.created, r.started, r.ended, r.spec, r.tags, "
           "r.error FROM runs r JOIN experiments e ON e.id = r.experiment_id")
    args: list = []
    if experiment:
        sql += " WHERE e.name = ?"
        args.append(experiment)
    sql += " ORDER BY r.created DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    out = []
    for rid, exp, num, status, compute, created, started, ended, spec, tags, error in ws.db.execute(sql, args):
        try:
            spec_d = json.loads(spec or "{}")
        except ValueError:
            spec_d = {}
        try:
            tags_d = json.loads(tags or "{}")
        except ValueError:
            tags_d = {}
        out.append({"id": rid, "experiment": exp, "number": num, "status": status, "compute": compute,
                    "created": created, "started": started, "ended": ended, "tags": tags_d,
                    "script": spec_d.get("entry_script", ""), "distribution": (spec_d.get("distribution") or {}),
                    "error": error or "", "metric_name": "", "metric_value": None})
    if with_metrics and out:
        _attach_primary_metrics(ws, out)
    return out


def _attach_primary_metrics(ws, runs: list[dict]) -> None:
    """Sets metric_name/metric_value: the run's tag ``primary_metric`` or the first of
    PRIMARY_METRICS it logged (else its first metric), last value, rank 0."""
    try:
        rows = ws.db.execute("SELECT id, run_id, name FROM metric_series WHERE rank = 0").fetchall()
    except sqlite3.OperationalError:  # an older schema: no summary, not an error
        return
    series: dict[str, dict[str, int]] = {}
    for sid, rid, name in rows:
        series.setdefault(rid, {})[name] = sid
    for r in runs:
        names = series.get(r["id"])
        if not names:
            continue
        wanted = r["tags"].get("primary_metric")
        pick = wanted if wanted in names else next((n for n in PRIMARY_METRICS if n in names), None)
        if pick is None:
            pick = sorted(names)[0]
        row = ws.db.execute("SELECT value, text FROM metrics WHERE series_id=? ORDER BY step DESC LIMIT 1",
                            [names[pick]]).fetchone()
        if row is not None:
            r["metric_name"] = pick
            r["metric_value"] = row[0] if row[1] is None else row[1]


def list_experiments(ws, state=None) -> list[str]:
    return [r[0] for r in ws.db.execute("SELECT name FROM experiments ORDER BY name")]


def run_compare_data(ws, state, run_ids: list[str]) -> list[dict]:
    """For each run: its arguments as parameters, tags, and the last value of each metric."""
    from ...core.runs import Run
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
    from ...core.runs import Run
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
    from ...core.runs import Run
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
    rows = ws.db.execute(
        "SELECT v.id, d.name, v.version, v.description, v.created, v.file_count, v.total_bytes, v.manifest_sha256, "
        "v.sources FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id "
        "ORDER BY d.name, v.version").fetchall()
    return [{"version_id": vid, "name": n, "version": ver, "description": desc, "created": c, "files": fc,
             "bytes": tb, "sha256": h, "sources": src} for vid, n, ver, desc, c, fc, tb, h, src in rows]


def dataset_files(ws, state, version_id: int) -> list[dict]:
    from ...core.dataset import Dataset
    return list(Dataset.get_by_id(ws, version_id).files)


def mnist_preview(ws, state, version_id: int, count: int = 32) -> dict | None:
    """The first ``count`` images of an MNIST-format images file in the version, as uint8 arrays."""
    from ...core.blobstore import BlobStore
    from ...core.dataset import Dataset
    ds = Dataset.get_by_id(ws, version_id)
    files = [f for f in ds.files if "images-idx3-ubyte" in f["path"]]
    if not files:
        return None
    f = sorted(files, key=lambda f: ("train" not in f["path"], f["path"]))[0]
    store = BlobStore(ws.blobs_dir)
    path = _blob_path(store, f["sha256"])
    if path is None:
        return None
    images = read_idx_images(path, count)
    if images is None:
        return None
    labels = None
    lab = next((g for g in ds.files if g["path"] == f["path"].replace("images-idx3", "labels-idx1")), None)
    if lab is not None:
        lp = _blob_path(store, lab["sha256"])
        labels = read_idx_labels(lp, count) if lp else None
    return {"file": f["path"], "images": images, "labels": labels}


def _blob_path(store, digest: str) -> Path | None:
    p = Path(store.path_of(digest))
    return p if p.is_file() else None


def _open_maybe_gz(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx_images(path: Path, count: int) -> np.ndarray | None:
    try:
        with _open_maybe_gz(path) as fh:
            head = fh.read(16)
            if len(head) < 16:
                return None
            magic, n, rows, cols = struct.unpack(">IIII", head)
            if magic != 2051 or rows * cols == 0 or rows > 512 or cols > 512:
                return None
            k = min(count, n)
            data = fh.read(k * rows * cols)
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    k = len(data) // (rows * cols)
    return np.frombuffer(data[: k * rows * cols], dtype=np.uint8).reshape(k, rows, cols)


def read_idx_labels(path: Path, count: int) -> list[int] | None:
    try:
        with _open_maybe_gz(path) as fh:
            head = fh.read(8)
            magic, n = struct.unpack(">II", head)
            if magic != 2049:
                return None
            return list(fh.read(min(count, n)))
    except (OSError, EOFError, struct.error, gzip.BadGzipFile):
        return None


# ------------------------------------------------------------------------------ compute, models

def list_compute(ws, state=None) -> list[dict]:
    from ...core.compute import ComputeTarget
    busy = dict(ws.db.execute("SELECT compute, COUNT(*) FROM runs WHERE status IN ('Preparing','Running',"
                              "'Finalizing') GROUP BY compute").fetchall())
    out = []
    for t in ComputeTarget.list(ws).values():
        d = t.as_dict()
        d["gpus"] = t.gpus
        d["max_concurrent_runs"] = t.max_concurrent_runs
        d["active_runs"] = busy.get(t.name, 0)
        out.append(d)
    return out


def list_models(ws, state=None) -> list[dict]:
    from ...core.model import Model
    return [m.as_dict() for m in Model.list(ws)]


def submit_choices(ws, state=None) -> dict:
    """Experiments, compute targets (with state) and dataset versions for the submit dialog."""
    from ...core.compute import ComputeTarget
    targets = [{"name": t.name, "kind": t.kind, "state": t.provisioning_state, "detail": t.state_detail,
                "gpus": len(t.gpus)} for t in ComputeTarget.list(ws).values()]
    return {"experiments": list_experiments(ws), "targets": targets,
            "datasets": [{"name": d["name"], "version": d["version"], "version_id": d["version_id"]}
                         for d in list_datasets(ws)]}
