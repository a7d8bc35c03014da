"""The seed's network trained with ParameterServerStrategy (a parameter-server cluster's tasks).

Flatten -> Dense(first, relu) -> Dense(second, relu) -> Dense(10), plain SGD, on MNIST-format
data. The engine starts ps tasks, workers and one chief, each running this script with its own
``TF_CONFIG``; run it on a parameter-server target::

    TensorFlow(source_directory=..., entry_script="ps_mnist.py",
               script_params={"--data-folder": ds.as_mount()},
               distributed_training=TensorflowConfiguration(worker_count=2, parameter_server_count=1))

- ps and worker tasks start a TensorFlow server and serve until the engine stops them (when
  the chief ends);
- the chief creates the variables on the ps tasks, schedules training steps on the workers
  with a ClusterCoordinator, logs the loss per step and per epoch, evaluates, and saves the
  model to ./outputs/model.

Keras 3's ``model.fit`` does not work under ParameterServerStrategy, so the chief trains with a
custom loop (``strategy.run`` + ``GradientTape``), which needs nothing beyond TensorFlow and
Keras. Without TF_CONFIG (run by hand) it trains in this one process.
"""
from __future__ import annotations

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
    return mnist_common.parse_args(__doc__.splitlines()[0], 'examples per step (per worker)', argv)


def serve(tf, resolver) -> int:
    """A ps or worker task: serve the cluster until the engine stops this process."""
    server = tf.distribute.Server(resolver.cluster_spec(), job_name=resolver.task_type,
                                  task_index=resolver.task_id, protocol=resolver.rpc_layer or "grpc",
                                  start=True)
    say(f"{resolver.task_type} {resolver.task_id}: serving at {server.target}")
    server.join()
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    resolver = None
    if os.environ.get("TF_CONFIG"):
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        if resolver.task_type in ("ps", "worker"):
            return serve(tf, resolver)

    import keras

    t0 = time.time()
    run = Run.get_context()
    x_train = load_idx(find(args.data_folder, FILES["train_images"]), True)
    y_train = load_idx(find(args.data_folder, FILES["train_labels"]), False)
    x_test = load_idx(find(args.data_folder, FILES["test_images"]), True)
    y_test = load_idx(find(args.data_folder, FILES["test_labels"]), False)
    if args.max_train_samples:
        x_train, y_train = x_train[: args.max_train_samples], y_train[: args.max_train_samples]

    if resolver is not None:
        strategy = tf.distribute.ParameterServerStrategy(resolver)
        coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
        workers = len(resolver.cluster_spec().as_dict().get("worker", []))
        ps_tasks = len(resolver.cluster_spec().as_dict().get("ps", []))
    else:
        strategy, coordinator, workers, ps_tasks = tf.distribute.get_strategy(), None, 1, 0
    say(f"chief: TensorFlow {tf.__version__}, Keras {keras.__version__}; {workers} worker(s), "
        f"{ps_tasks} ps task(s); {len(x_train)} training examples")

    keras.utils.set_random_seed(args.seed)
    with strategy.scope():  # variables live on the ps tasks
        model = keras.Sequential([
            keras.Input(shape=x_train.shape[1:], name="images"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(args.n_hidden_1, activation="relu", name="hidden1"),
            keras.layers.Dense(args.n_hidden_2, activation="relu", name="hidden2"),
            keras.layers.Dense(10, name="logits"),
        ], name="tf_mnist_dnn")
        optimizer = keras.optimizers.SGD(learning_rate=args.learning_rate)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
    batch = args.batch_size
    steps = len(x_train) // batch
    if steps < 1:
        sys.exit(f"error: {len(x_train)} examples are fewer than one batch ({batch})")

    def dataset_fn(_context=None):
        return (tf.data.Dataset.from_tensor_slices((x_train, y_train))
                .shuffle(len(x_train), seed=args.seed).repeat().batch(batch, drop_remainder=True))

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            per_example = loss_fn(y, model(x, training=True))
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=batch)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    if coordinator is not None:
        per_worker_iter = iter(coordinator.create_per_worker_dataset(dataset_fn))

        @tf.function
        def worker_step(iterator):
            x, y = next(iterator)
            return strategy.run(replica_step, args=(x, y))

        def run_epoch():
            results = [coordinator.schedule(worker_step, args=(per_worker_iter,)) for _ in range(steps)]
            coordinator.join()
            return [float(r.fetch()) for r in results]
    else:
        local_iter = iter(dataset_fn())
        local_step = tf.function(replica_step)

        def run_epoch():
            return [float(local_step(*next(local_iter))) for _ in range(steps)]

    for key, value in (("batch_size", batch), ("workers", workers), ("ps_tasks", ps_tasks),
                       ("first_layer_neurons", args.n_hidden_1), ("second_layer_neurons", args.n_hidden_2),
                       ("learning_rate", args.learning_rate), ("epochs", args.epochs)):
        run.tag(key, str(value))
    say(f"training {args.epochs} epoch(s) of {steps} steps, batch {batch}")
    step = 0
    for epoch in range(args.epochs):
        t_epoch = time.time()
        losses = run_epoch()
        for loss in losses:
            run.log("loss", loss, step=step)
            step += 1
        run.log("epoch_loss", float(np.mean(losses)), step=epoch)
        say(f"epoch {epoch + 1}/{args.epochs}: loss {np.mean(losses):.4f} ({time.time() - t_epoch:.1f}s)")

    mnist_common.evaluate_and_save(model, x_test, y_test, run)  # the model call reads the ps variables
    say(f"done in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
