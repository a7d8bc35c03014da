"""Trains a two-hidden-layer dense network on MNIST-format data (TensorFlow 2 / Keras 3).

The Azure ML "train TensorFlow at scale" sample, ported from TF1 graphs to Keras 3:
Flatten -> Dense(first, relu) -> Dense(second, relu) -> Dense(10, softmax), trained with plain
SGD. Metrics go to the run through ``Run.get_context()``; the model is saved to
./outputs/model/model.keras (Keras) and ./outputs/model/saved_model/ (TF SavedModel, for serving).

    python tf_mnist.py --data-folder DIR [--batch-size 50] [--first-layer-neurons 300]
        [--second-layer-neurons 100] [--learning-rate 0.01] [--epochs 2] [--max-train-samples 0]
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import time

import numpy as np

from utils import load_data

try:  # the seed's form
    from mltrain_desktop.core import Run
except ImportError:
    try:
        from mltrain_desktop.run import Run
    except ImportError as exc:  # pragma: no cover - only when the app's package is not importable
        raise ImportError(
            "cannot import mltrain_desktop (needed for Run.get_context()); run this script with "
            "the app, or put the MLTrain Desktop source folder on PYTHONPATH"
        ) from exc

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def say(*args) -> None:
    print(*args, flush=True)


def find_data_files(folder: str) -> dict[str, str]:
    """Finds the four MNIST files in folder or any subfolder; exits with a clear message if not."""
    if not os.path.isdir(folder):
        sys.exit(f"error: --data-folder {folder!r} is not a folder")
    found, missing = {}, []
    for key, name in FILES.items():
        direct = os.path.join(folder, name)
        if os.path.isfile(direct):
            found[key] = direct
            continue
        hits = sorted(glob.glob(os.path.join(glob.escape(folder), "**", name), recursive=True))
        if hits:
            found[key] = hits[0]
        else:
            missing.append(name)
    if missing:
        sys.exit(f"error: not found under {folder}: {', '.join(missing)}")
    return found


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train a dense network on MNIST-format data.")
    p.add_argument("--data-folder", type=str, dest="data_folder", required=True,
                   help="folder holding the four MNIST idx gz files (searched recursively)")
    p.add_argument("--batch-size", type=int, dest="batch_size", default=50)
    p.add_argument("--first-layer-neurons", type=int, dest="n_hidden_1", default=300)
    p.add_argument("--second-layer-neurons", type=int, dest="n_hidden_2", default=100)
    p.add_argument("--learning-rate", type=float, dest="learning_rate", default=0.01)
    p.add_argument("--epochs", type=int, dest="n_epochs", default=2)
    p.add_argument("--max-train-samples", type=int, dest="max_train_samples", default=0,
                   help="use only the first N training examples (0 = all)")
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    for name in ("batch_size", "n_hidden_1", "n_hidden_2", "n_epochs"):
        if getattr(args, name) < 1:
            p.error(f"{name.replace('_', '-')} must be at least 1")
    if args.learning_rate <= 0:
        p.error("--learning-rate must be positive")
    if args.max_train_samples < 0:
        p.error("--max-train-samples must be 0 (all) or positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.time()
    run = Run.get_context()

    files = find_data_files(args.data_folder)
    say("Data folder:", args.data_folder)
    for key, path in files.items():
        say(f"  {key}: {path}")

    # Images as (n, 28, 28) floats in [0, 1]; labels as (n,) ints.
    def images(path):
        x = load_data(path, label=False)
        side = int(round(x.shape[1] ** 0.5))
        return (x.reshape(-1, side, side) / 255.0).astype(np.float32)

    X_train = images(files["train_images"])
    y_train = load_data(files["train_labels"], label=True).reshape(-1).astype(np.int32)
    X_test = images(files["test_images"])
    y_test = load_data(files["test_labels"], label=True).reshape(-1).astype(np.int32)
    if len(X_train) != len(y_train) or len(X_test) != len(y_test):
        sys.exit(f"error: image/label counts differ: train {len(X_train)}/{len(y_train)}, "
                 f"test {len(X_test)}/{len(y_test)}")
    if args.max_train_samples:
        X_train, y_train = X_train[: args.max_train_samples], y_train[: args.max_train_samples]
    say(f"Train: {X_train.shape} images, {y_train.shape} labels; "
        f"test: {X_test.shape} images, {y_test.shape} labels")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # hide TF's INFO lines
    import tensorflow as tf  # imported late so argument and data errors come fast
    import keras

    keras.utils.set_random_seed(args.seed)  # python, numpy and tf seeds
    say(f"TensorFlow {tf.__version__}, Keras {keras.__version__}; "
        f"GPUs: {len(tf.config.list_physical_devices('GPU'))}")

    n_outputs = 10
    model = keras.Sequential(
        [
            keras.Input(shape=X_train.shape[1:], name="images"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(args.n_hidden_1, activation="relu", name="hidden1"),
            keras.layers.Dense(args.n_hidden_2, activation="relu", name="hidden2"),
            keras.layers.Dense(n_outputs, activation="softmax", name="probabilities"),
        ],
        name="tf_mnist_dnn",
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=args.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    model.summary(print_fn=lambda line, **kw: say(line))

    # Hyperparameters as tags (a metric named batch_size would read as a per-batch series).
    run.tag("batch_size", str(args.batch_size))
    run.tag("first_layer_neurons", str(args.n_hidden_1))
    run.tag("second_layer_neurons", str(args.n_hidden_2))
    run.tag("learning_rate", str(args.learning_rate))
    run.tag("epochs", str(args.n_epochs))
    run.tag("train_samples", str(len(X_train)))

    say(f"Training {args.n_epochs} epoch(s), batch size {args.batch_size} ...")
    t_fit = time.time()
    model.fit(
        X_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.n_epochs,
        validation_data=(X_test, y_test),
        shuffle=True,
        verbose=2,  # one line per epoch; no progress bar in the run's log
        callbacks=[run.keras_callback(log_batches=True)],
    )
    say(f"Training took {time.time() - t_fit:.1f}s")

    test_loss, test_acc = model.evaluate(X_test, y_test, batch_size=max(args.batch_size, 256),
                                         verbose=0)
    run.log("final_test_loss", float(test_loss))
    run.log("final_test_accuracy", float(test_acc))
    say(f"Final test accuracy: {test_acc:.4f}, loss: {test_loss:.4f}")

    outputs = os.environ.get("MLTRAIN_OUTPUTS_DIR") or "outputs"
    model_dir = os.path.join(outputs, "model")
    os.makedirs(model_dir, exist_ok=True)
    keras_path = os.path.join(model_dir, "model.keras")
    saved_model_dir = os.path.join(model_dir, "saved_model")
    if os.path.isdir(saved_model_dir):
        shutil.rmtree(saved_model_dir)
    model.save(keras_path)
    say("Saved Keras model:", keras_path)
    model.export(saved_model_dir, format="tf_saved_model", verbose=False)
    say("Exported SavedModel:", saved_model_dir)
    say(f"Done in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    sys.exit(main())
