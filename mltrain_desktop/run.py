"""The in-job run API: what a training script imports to log metrics and tags.

Standard library only, so that it works in any environment the engine runs a job in (the
app's interpreter, a virtual environment, a container) without the app being installed there.

Records are appended to a JSON-lines file named by ``MLTRAIN_METRICS_FILE`` and flushed one by
one; the run's supervisor tails that file by byte offset into the workspace database. Outside
a run (no such variable) ``Run.get_context()`` returns an offline run that prints instead.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import threading
import time

ENV_RUN_ID = "MLTRAIN_RUN_ID"
ENV_METRICS_FILE = "MLTRAIN_METRICS_FILE"
ENV_RANK = "MLTRAIN_RANK"
ENV_EXPERIMENT = "MLTRAIN_EXPERIMENT"
ENV_OUTPUTS = "MLTRAIN_OUTPUTS_DIR"
IMAGES_DIR = "images"  # under the run's outputs: what run.log_image() stores, shown in the window

# Built once: json.dumps with options builds a new encoder on every call (~1 us of each log).
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def _clean_value(value):
    """Returns a JSON-safe metric value: numbers stay numbers, NaN/inf become strings."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    # numpy scalars and 0-d tensors expose item()/numpy(); anything else must be text.
    for attr in ("item", "numpy"):
        conv = getattr(value, attr, None)
        if callable(conv):
            try:
                return _clean_value(conv())
            except Exception:  # noqa: BLE001 - fall through to the type error below
                break
    if isinstance(value, str):
        return value
    raise TypeError(
        f"metric value {value!r} of type {type(value).__name__} is not a number or a string; "
        "log a float, an int or a str"
    )


def image_file_name(name: str, index: int, suffix: str = ".png") -> str:
    """``loss curve`` -> ``loss_curve-000.png``: a file name that stays inside the images folder."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("log_image needs a name, e.g. run.log_image('loss curve', plot=plt)")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip()).strip("._")[:100] or "image"
    suffix = suffix.lower() if re.fullmatch(r"\.[A-Za-z0-9]{1,5}", suffix or "") else ".png"
    return f"{safe}-{index:03d}{suffix}"


def save_image(images_dir: str, name: str, index: int, path=None, plot=None) -> str:
    """Stores one image of ``run.log_image`` in ``images_dir``: a copy of the file at ``path``, or
    ``plot.savefig(...)`` (a matplotlib ``pyplot`` module or Figure). Returns the file written."""
    if (path is None) == (plot is None):
        raise ValueError("log_image takes exactly one of path= (an image file) or plot= (matplotlib's pyplot "
                         "or a Figure)")
    os.makedirs(images_dir, exist_ok=True)
    if path is not None:
        if not os.path.isfile(path):
            raise ValueError(f"log_image: {path!r} is not a file")
        dest = os.path.join(images_dir, image_file_name(name, index, os.path.splitext(str(path))[1]))
        shutil.copyfile(path, dest)
        return dest
    if not callable(getattr(plot, "savefig", None)):
        raise ValueError(f"log_image: plot= must have savefig() (matplotlib.pyplot or a Figure); got {plot!r}")
    dest = os.path.join(images_dir, image_file_name(name, index))
    plot.savefig(dest, format="png")
    return dest


class _MetricsWriter:
    """Appends one JSON line per record and flushes it, thread-safe."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._fh = open(path, "a", encoding="utf-8", buffering=1 << 16)

    def write(self, record: dict) -> None:
        line = _encode(record) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


class Run:
    """A run as seen from inside the job. ``Run.get_context()`` is the way to get one."""

    _context: "Run | None" = None

    def __init__(self, run_id: str | None = None, metrics_file: str | None = None, rank: int = 0):
        self.id = run_id
        self._rank = rank
        self._writer = _MetricsWriter(metrics_file) if metrics_file else None
        self._steps: dict[str, int] = {}
        self._steps_lock = threading.Lock()

    # -- construction -------------------------------------------------------------------
    @classmethod
    def get_context(cls, allow_offline: bool = True) -> "Run":
        """The current run: the app's run inside a job, an offline run that prints elsewhere."""
        if Run._context is None:
            metrics = os.environ.get(ENV_METRICS_FILE)
            if metrics:
                rank = int(os.environ.get(ENV_RANK, "0") or 0)
                Run._context = Run(os.environ.get(ENV_RUN_ID), metrics, rank)
            elif allow_offline:
                Run._context = Run(f"OfflineRun_{int(time.time())}", None)
            else:
                raise RuntimeError(
                    f"not inside an MLTrain run ({ENV_METRICS_FILE} is not set); "
                    "submit the script with Experiment.submit() or pass allow_offline=True"
                )
        return Run._context

    @property
    def offline(self) -> bool:
        return self._writer is None

    @property
    def rank(self) -> int:
        return self._rank

    # -- logging ------------------------------------------------------------------------
    def _next_step(self, name: str, step: int | None) -> int:
        with self._steps_lock:
            if step is None:
                step = self._steps.get(name, -1) + 1
            self._steps[name] = max(step, self._steps.get(name, -1))
            return step

    def _emit(self, record: dict) -> None:
        record["t"] = time.time()
        if self._rank:
            record["rank"] = self._rank
        if self._writer is None:
            shown = {k: v for k, v in record.items() if k not in ("t", "k")}
            print(f"[offline run] {record['k']}: {shown}", file=sys.stdout, flush=True)
        else:
            self._writer.write(record)

    def log(self, name: str, value, description: str = "", step: int | None = None) -> None:
        """Logs one value of a metric; repeated calls make a series (step 0, 1, 2, ...)."""
        if not isinstance(name, str) or not name:
            raise ValueError("metric name must be a non-empty string")
        v = _clean_value(value)
        self._emit({"k": "m", "n": name, "s": self._next_step(name, step), "v": v})

    def log_list(self, name: str, value, description: str = "") -> None:
        """Logs a list of values as consecutive steps of one metric."""
        for item in list(value):
            self.log(name, item)

    def log_row(self, name: str, description: str = "", **kwargs) -> None:
        """Logs one row of a table metric: each keyword becomes the column ``name/key``."""
        if not kwargs:
            raise ValueError("log_row needs at least one column, e.g. log_row('acc', epoch=1, value=0.9)")
        row = {k: _clean_value(v) for k, v in kwargs.items()}
        self._emit({"k": "r", "n": name, "s": self._next_step(name, None), "v": row})

    def log_image(self, name: str, path=None, plot=None, description: str = "") -> str | None:
        """Stores an image with the run (``outputs/images/``, shown in the window's Images tab):
        the file at ``path``, or a matplotlib plot (``plot=plt``). Offline, it is only announced."""
        index = self._next_step(f"image:{name}", None)
        if self._writer is None:
            print(f"[offline run] image: {name}", file=sys.stdout, flush=True)
            return None
        outputs = os.environ.get(ENV_OUTPUTS) or os.path.join(os.getcwd(), "outputs")
        return save_image(os.path.join(outputs, IMAGES_DIR), name, index, path, plot)

    def tag(self, key: str, value: str | None = None) -> None:
        """Sets a tag on the run (shown with its details)."""
        self._emit({"k": "t", "n": str(key), "v": "" if value is None else str(value)})

    set_tags_value = tag

    def flush(self) -> None:  # records are flushed one by one; kept for API symmetry
        return None

    def complete(self) -> None:
        return None

    # -- Keras ----------------------------------------------------------------------------
    def keras_callback(self, log_batches: bool = True, prefix: str = ""):
        """A Keras callback that logs every loss and metric per batch and per epoch.

        Per-batch values go to ``batch_<name>``, per-epoch values to ``<name>`` (and
        ``val_<name>`` when Keras reports them).
        """
        return make_keras_callback(self, log_batches=log_batches, prefix=prefix)


def make_keras_callback(run: Run | None = None, log_batches: bool = True, prefix: str = ""):
    """Builds the Keras callback lazily so that this module never imports Keras itself."""
    try:
        import keras  # Keras 3, or tf-keras when TF_USE_LEGACY_KERAS routes it
        base = keras.callbacks.Callback
    except ImportError:  # pragma: no cover - only where keras is not installed standalone
        import tensorflow as tf
        base = tf.keras.callbacks.Callback
    run = run or Run.get_context()

    class MLTrainCallback(base):
        def on_train_batch_end(self, batch, logs=None):
            if log_batches and logs:
                for k, v in logs.items():
                    try:
                        run.log(f"{prefix}batch_{k}", float(v))
                    except (TypeError, ValueError):
                        continue

        def on_epoch_end(self, epoch, logs=None):
            for k, v in (logs or {}).items():
                try:
                    run.log(f"{prefix}{k}", float(v), step=epoch)
                except (TypeError, ValueError):
                    continue

    return MLTrainCallback()
