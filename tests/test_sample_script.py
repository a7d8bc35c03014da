"""The shipped sample (resources/samples/tf-mnist) and its data subset.

The training tests run the real script in a subprocess on the shipped Fashion-MNIST subset
(a few seconds on a CPU); they are skipped where TensorFlow is not installed.
"""
from __future__ import annotations

import gzip
import importlib.util
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from mltrain_desktop.core import samples

REPO = Path(__file__).resolve().parent.parent
SCRIPT = samples.SAMPLE_DIR / samples.SAMPLE_ENTRY_SCRIPT
UTILS = samples.SAMPLE_DIR / "utils.py"

needs_tf = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed"
)

EXPECTED_HEADERS = {
    "train-images-idx3-ubyte.gz": (2051, 2000, 28, 28),
    "train-labels-idx1-ubyte.gz": (2049, 2000),
    "t10k-images-idx3-ubyte.gz": (2051, 500, 28, 28),
    "t10k-labels-idx1-ubyte.gz": (2049, 500),
}


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLTRAIN_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    )
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env.update(extra)
    return env


def _run_script(cwd: Path, *args: str, env: dict | None = None, timeout: int = 300):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _load_utils():
    spec = importlib.util.spec_from_file_location("tf_mnist_sample_utils", UTILS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _header(path: Path) -> tuple[int, ...]:
    with gzip.open(path, "rb") as fh:
        (magic,) = struct.unpack(">i", fh.read(4))
        ndim = magic & 0xFF
        return (magic, *struct.unpack(f">{ndim}i", fh.read(4 * ndim)))


# -- the shipped data ---------------------------------------------------------------------
def test_subset_has_four_files_with_expected_headers():
    folder = samples.sample_data_dir(full=False)
    assert folder == samples.SUBSET_DIR
    assert samples.has_mnist_files(folder)
    total = 0
    for name, expected in EXPECTED_HEADERS.items():
        path = folder / name
        assert _header(path) == expected, name
        total += path.stat().st_size
        # gzip header: no file name flag, mtime 0 (reproducible bytes)
        raw = path.read_bytes()[:10]
        assert raw[:2] == b"\x1f\x8b" and raw[3] & 0x08 == 0 and raw[4:8] == b"\0\0\0\0", name
    assert total < 2 * 1024 * 1024
    assert (folder / "README.md").is_file()


def test_sample_data_dir_choice(monkeypatch, tmp_path):
    assert samples.sample_data_dir(full=True) == samples.FULL_DATA_DIR
    monkeypatch.setattr(samples, "FULL_DATA_DIR", tmp_path / "absent")
    assert samples.sample_data_dir() == samples.SUBSET_DIR
    assert samples.sample_data_dir(full=True) == tmp_path / "absent"
    monkeypatch.setattr(samples, "FULL_DATA_DIR", samples.SUBSET_DIR)  # a folder with the 4 files
    assert samples.sample_data_dir() == samples.SUBSET_DIR


def test_sample_dir_has_script_and_utils():
    assert SCRIPT.is_file() and UTILS.is_file()


def test_generator_is_reproducible(tmp_path):
    spec = importlib.util.spec_from_file_location("make_sample_subset", REPO / "scripts" / "make_sample_subset.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    a, b = tmp_path / "a", tmp_path / "b"
    gen.make_subset(samples.SUBSET_DIR, a, 100, 20)
    gen.make_subset(samples.SUBSET_DIR, b, 100, 20)
    for name in samples.MNIST_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert _header(a / "train-images-idx3-ubyte.gz") == (2051, 100, 28, 28)
    assert _header(a / "t10k-labels-idx1-ubyte.gz") == (2049, 20)
    if gen.DEFAULT_SOURCE.is_dir() and samples.has_mnist_files(gen.DEFAULT_SOURCE):
        c = tmp_path / "c"
        gen.make_subset(gen.DEFAULT_SOURCE, c, 2000, 500)
        for name in samples.MNIST_FILES:  # the committed subset is exactly what the script makes
            assert (c / name).read_bytes() == (samples.SUBSET_DIR / name).read_bytes(), name


# -- utils.load_data ------------------------------------------------------------------------
def test_load_data_reads_subset():
    utils = _load_utils()
    x = utils.load_data(samples.SUBSET_DIR / "train-images-idx3-ubyte.gz")
    y = utils.load_data(samples.SUBSET_DIR / "train-labels-idx1-ubyte.gz", label=True)
    assert x.shape == (2000, 784) and x.dtype.name == "uint8"
    assert y.shape == (2000, 1) and set(y.reshape(-1).tolist()) <= set(range(10))


def test_load_data_missing_file_names_it(tmp_path):
    utils = _load_utils()
    missing = tmp_path / "nope" / "train-images-idx3-ubyte.gz"
    with pytest.raises(FileNotFoundError) as err:
        utils.load_data(missing)
    assert str(missing) in str(err.value)


def test_load_data_wrong_magic_names_file(tmp_path):
    utils = _load_utils()
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(bad, "wb") as fh:
        fh.write(struct.pack(">iiii", 1234, 1, 28, 28) + bytes(784))
    with pytest.raises(ValueError) as err:
        utils.load_data(bad)
    assert str(bad) in str(err.value) and "magic" in str(err.value)
    # a labels file read as images says so
    with pytest.raises(ValueError, match="label=True"):
        utils.load_data(samples.SUBSET_DIR / "train-labels-idx1-ubyte.gz", label=False)


def test_load_data_not_gzip_or_truncated(tmp_path):
    utils = _load_utils()
    plain = tmp_path / "plain.gz"
    plain.write_bytes(b"this is not gzip at all")
    with pytest.raises(ValueError, match="plain.gz"):
        utils.load_data(plain)
    short = tmp_path / "short.gz"
    with gzip.open(short, "wb") as fh:
        fh.write(struct.pack(">ii", 2049, 10) + bytes(3))
    with pytest.raises(ValueError, match="truncated"):
        utils.load_data(short, label=True)


# -- the script -----------------------------------------------------------------------------
def test_script_reports_missing_data_files(tmp_path):
    (tmp_path / "data").mkdir()
    proc = _run_script(tmp_path, "--data-folder", str(tmp_path / "data"), timeout=120)
    assert proc.returncode != 0
    assert "train-images-idx3-ubyte.gz" in proc.stderr


@needs_tf
@pytest.mark.slow
def test_script_trains_offline_and_saves_loadable_model(tmp_path):
    proc = _run_script(
        tmp_path,
        "--data-folder", str(samples.sample_data_dir(full=False)),
        "--epochs", "1",
        "--max-train-samples", "500",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "[offline run]" in proc.stdout and "final_test_accuracy" in proc.stdout
    model = tmp_path / "outputs" / "model" / "model.keras"
    assert model.is_file()
    assert (tmp_path / "outputs" / "model" / "saved_model" / "saved_model.pb").is_file()
    check = (
        "import sys, numpy as np, tensorflow as tf\n"
        "m = tf.keras.models.load_model(sys.argv[1])\n"
        "p = m.predict(np.zeros((3, 28, 28), np.float32), verbose=0)\n"
        "assert p.shape == (3, 10), p.shape\n"
        "assert np.allclose(p.sum(axis=1), 1.0, atol=1e-4)\n"
        "s = tf.saved_model.load(sys.argv[2])\n"
        "assert 'serving_default' in s.signatures\n"
        "print('LOADED')\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", check, str(model), str(model.parent / "saved_model")],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert loaded.returncode == 0 and "LOADED" in loaded.stdout, loaded.stderr[-3000:]


@needs_tf
@pytest.mark.slow
def test_script_logs_metrics_to_run_file(tmp_path):
    """Inside a run: metrics go to the file, nothing per batch on stdout; data in a subfolder."""
    nested = tmp_path / "mount" / "fashion"
    nested.mkdir(parents=True)
    for name in samples.MNIST_FILES:
        (nested / name).write_bytes((samples.SUBSET_DIR / name).read_bytes())
    metrics = tmp_path / "metrics.jsonl"
    work = tmp_path / "job"
    work.mkdir()
    env = _env(MLTRAIN_METRICS_FILE=str(metrics), MLTRAIN_RUN_ID="run-test")
    proc = _run_script(
        work, "--data-folder", str(tmp_path / "mount"), "--epochs", "2",
        "--max-train-samples", "200", "--batch-size", "50", env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "[offline run]" not in proc.stdout and "batch_loss" not in proc.stdout
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    series: dict[str, list] = {}
    for r in records:
        if r["k"] == "m":
            series.setdefault(r["n"], []).append(r["v"])
    assert len(series["batch_loss"]) == 2 * 4 and len(series["batch_accuracy"]) == 8
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(series[name]) == 2, name
    assert len(series["final_test_accuracy"]) == 1 and 0.0 <= series["final_test_accuracy"][0] <= 1.0
    assert len(series["final_test_loss"]) == 1
    tags = {r["n"]: r["v"] for r in records if r["k"] == "t"}
    assert tags["batch_size"] == "50" and tags["train_samples"] == "200"
    assert (work / "outputs" / "model" / "model.keras").is_file()
