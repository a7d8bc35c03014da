"""The seed's network trained data-parallel with MultiWorkerMirroredStrategy (an MPI job's ranks).

Flatten -> Dense(first, relu) -> Dense(second, relu) -> Dense(10), plain SGD, on MNIST-format
data. Every rank reads the ``TF_CONFIG`` the engine gave it (a worker list, its own index), so
no Horovod is needed; run it on an MPI target::

    TensorFlow(source_directory=..., entry_script="mwms_mnist.py",
               script_params={"--data-folder": ds.as_mount()},
               distributed_training=MpiConfiguration(process_count_per_node=2))

Keras 3's ``model.fit`` does not work under MultiWorkerMirroredStrategy with more than one
worker, so this trains with a custom loop (``strategy.run`` + ``GradientTape``), which needs
nothing beyond TensorFlow and Keras. Each rank logs its loss per step and per epoch (the app
tags the records with the rank) and, at the end, a checksum of its weights: all ranks must
print the same one. Rank 0 alone evaluates and saves the model to ./outputs/model.

Without TF_CONFIG (run by hand) it trains on one worker.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time

import numpy as np

import mnist_common  # beside this script (the whole source folder is snapshotted)
from mnist_common import FILES, find, load_idx, say

try:  # the seed's form
    from mltrain_desktop.core import Run
except ImportError:
    from mltrain_desktop.run import Run


def parse_args(argv=None):
    return mnist_common.parse_args(__doc__.splitlines()[0], 'examples per rank per step', argv)


def weights_digest(model) -> tuple[str, float]:
    """sha256 of every weight's bytes in order, and their float64 sum."""
    h = hashlib.sha256()
    total = 0.0
    for v in model.weights:
        a = np.asarray(v.numpy(), dtype=np.float32)
        h.update(a.tobytes())
        total += float(a.astype(np.float64).sum())
    return h.hexdigest(), total


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.time()
    run = Run.get_context()
    x_train = load_idx(find(args.data_folder, FILES["train_images"]), True)
    y_train = load_idx(find(args.data_folder, FILES["train_labels"]), False)
    x_test = load_idx(find(args.data_folder, FILES["test_images"]), True)
    y_test = load_idx(find(args.data_folder, FILES["test_labels"]), False)
    if args.max_train_samples:
        x_train, y_train = x_train[: args.max_train_samples], y_train[: args.max_train_samples]

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = tf_config.get("task", {})
    rank = int(task.get("index", 0))
    # Creating the strategy starts this worker's gRPC server and waits for all the others.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    workers = strategy.num_replicas_in_sync
    say(f"rank {rank} of {workers}: TensorFlow {tf.__version__}, Keras {keras.__version__}; "
        f"{len(x_train)} training examples")

    global_batch = args.batch_size * workers
    keras.utils.set_random_seed(args.seed)  # same initial weights on every rank
    with strategy.scope():
        model = keras.Sequential([
            keras.Input(shape=x_train.shape[1:], name="images"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(args.n_hidden_1, activation="relu", name="hidden1"),
            keras.layers.Dense(args.n_hidden_2, activation="relu", name="hidden2"),
            keras.layers.Dense(10, name="logits"),
        ], name="tf_mnist_dnn")
        optimizer = keras.optimizers.SGD(learning_rate=args.learning_rate)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    steps = len(x_train) // global_batch
    if steps < 1:
        sys.exit(f"error: {len(x_train)} examples are fewer than one global batch ({global_batch})")
    dataset = (tf.data.Dataset.from_tensor_slices((x_train, y_train))
               .shuffle(len(x_train), seed=args.seed, reshuffle_each_iteration=True)
               .batch(global_batch, drop_remainder=True).with_options(options))
    dist_dataset = strategy.experimental_distribute_dataset(dataset)

    @tf.function
    def train_step(x, y):
        def replica_step(x, y):
            with tf.GradientTape() as tape:
                per_example = loss_fn(y, model(x, training=True))
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))  # all-reduced
            return loss
        return strategy.reduce("SUM", strategy.run(replica_step, args=(x, y)), axis=None)

    if rank == 0:
        for key, value in (("batch_size", args.batch_size), ("workers", workers),
                           ("first_layer_neurons", args.n_hidden_1), ("second_layer_neurons", args.n_hidden_2),
                           ("learning_rate", args.learning_rate), ("epochs", args.epochs)):
            run.tag(key, str(value))
    say(f"training {args.epochs} epoch(s) of {steps} steps, global batch {global_batch}")
    step = 0
    for epoch in range(args.epochs):
        total = 0.0
        t_epoch = time.time()
        for x, y in dist_dataset:
            loss = float(train_step(x, y))
            run.log("loss", loss, step=step)
            total += loss
            step += 1
        run.log("epoch_loss", total / steps, step=epoch)
        say(f"epoch {epoch + 1}/{args.epochs}: loss {total / steps:.4f} ({time.time() - t_epoch:.1f}s)")

    digest, checksum = weights_digest(model)
    run.log("weights_checksum", checksum)
    say(f"weights sha256 {digest} sum {checksum!r}")

    if rank == 0:
        mnist_common.evaluate_and_save(model, x_test, y_test, run)  # a plain call: no collective op
    say(f"done in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
