"""What both distributed samples share: the MNIST idx reader and the seed's command line."""
from __future__ import annotations

import argparse
import glob
import gzip
import os
import sys

import numpy as np

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def say(*args) -> None:
    print(*args, flush=True)


def load_idx(path: str, images: bool) -> np.ndarray:
    """Reads an idx gz file: images as (n, rows, cols) float32 in [0, 1], labels as (n,) int32."""
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    if images:
        n, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
        return (np.frombuffer(data, np.uint8, n * rows * cols, 16).reshape(n, rows, cols) / 255.0).astype(np.float32)
    n = int.from_bytes(data[4:8], "big")
    return np.frombuffer(data, np.uint8, n, 8).astype(np.int32)


def find(folder: str, name: str) -> str:
    hits = [os.path.join(folder, name)] + sorted(glob.glob(os.path.join(glob.escape(folder), "**", name),
                                                           recursive=True))
    for h in hits:
        if os.path.isfile(h):
            return h
    sys.exit(f"error: {name} not found under --data-folder {folder}")


def parse_args(description: str, batch_help: str, argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data-folder", required=True, help="folder holding the four MNIST idx gz files")
    p.add_argument("--batch-size", type=int, default=50, help=batch_help)
    p.add_argument("--first-layer-neurons", type=int, dest="n_hidden_1", default=300)
    p.add_argument("--second-layer-neurons", type=int, dest="n_hidden_2", default=100)
    p.add_argument("--learning-rate", type=float, default=0.01)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--max-train-samples", type=int, default=0, help="use the first N examples (0 = all)")
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    if min(args.batch_size, args.n_hidden_1, args.n_hidden_2, args.epochs) < 1 or args.learning_rate <= 0:
        p.error("sizes and epochs must be at least 1, the learning rate positive")
    return args


def evaluate_and_save(model, x_test, y_test, run) -> float:
    """Logs the test accuracy and saves the model to ./outputs/model/model.keras (chief/rank 0 only)."""
    logits = model(x_test, training=False)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))
    run.log("final_test_accuracy", accuracy)
    say(f"test accuracy {accuracy:.4f}")
    model_dir = os.path.join(os.environ.get("MLTRAIN_OUTPUTS_DIR") or "outputs", "model")
    os.makedirs(model_dir, exist_ok=True)
    model.save(os.path.join(model_dir, "model.keras"))
    say("saved", os.path.join(model_dir, "model.keras"))
    return accuracy
