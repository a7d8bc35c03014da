"""The seed's whole flow on the shipped sample: dataset, compute target, run with live metrics, model."""
from __future__ import annotations

import time
from typing import Callable

from .compute import AmlCompute, ComputeTarget
from .compute_target import ComputeTargetException
from .dataset import Dataset
from .experiment import Experiment
from .model import Model
from .resource_configuration import ResourceConfiguration
from .samples import SAMPLE_DIR, SAMPLE_ENTRY_SCRIPT, sample_data_dir

SAMPLE_DATASET = "mnist dataset"
SAMPLE_EXPERIMENT = "tf-mnist"
SAMPLE_TARGET = "gpucluster"
SAMPLE_MODEL = "tf-dnn-mnist"
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
BATCH_EVERY = 200  # print every 200th batch's loss while an epoch runs


def register_sample_dataset(ws, full: bool | None = None, progress=None):
    data = sample_data_dir(full)
    files = [str(p) for p in sorted(data.glob("*-ubyte.gz"))]
    desc = f"training and test dataset (Fashion-MNIST, {'full' if data.name == 'fashion-mnist' else 'subset'})"
    return Dataset.File.from_files(path=files).register(workspace=ws, name=SAMPLE_DATASET, description=desc,
                                                       create_new_version=True, progress=progress)


def sample_estimator(ws, dataset, epochs: int = 2, compute_target=None):
    from ..train.dnn import TensorFlow
    if compute_target is None:
        try:
            compute_target = ComputeTarget(workspace=ws, name=SAMPLE_TARGET)
        except ComputeTargetException:
            compute_target = ComputeTarget.create(ws, SAMPLE_TARGET, AmlCompute.provisioning_configuration(
                vm_size="STANDARD_NC6", max_nodes=4))
    script_params = {
        "--data-folder": dataset.as_named_input("mnist").as_mount(),
        "--batch-size": 50,
        "--first-layer-neurons": 300,
        "--second-layer-neurons": 100,
        "--learning-rate": 0.01,
        "--epochs": epochs,
    }
    return TensorFlow(source_directory=str(SAMPLE_DIR), entry_script=SAMPLE_ENTRY_SCRIPT,
                      script_params=script_params, compute_target=compute_target, use_gpu=False)


def run_sample(ws, epochs: int = 2, full: bool | None = None, echo: Callable[[str], None] | None = print) -> dict:
    say = echo or (lambda _s: None)
    say(f"Workspace: {ws.path}")
    ds = register_sample_dataset(ws, full)
    say(f"Dataset '{ds.name}' version {ds.version}: {len(ds.files)} files, {ds.total_bytes} bytes")
    est = sample_estimator(ws, ds, epochs)
    run = Experiment(workspace=ws, name=SAMPLE_EXPERIMENT).submit(est)
    say(f"Submitted run {run.id}")
    seen: dict[str, int] = {}
    last_status = None
    while True:
        status = run.get_status()
        if status != last_status:
            say(f"[status] {status}")
            last_status = status
        steps, values, _ = run.get_metric_series("batch_loss", after_step=seen.get("batch_loss", -1))
        for s, v in zip(steps, values):
            if s % BATCH_EVERY == 0 and v is not None:
                say(f"[metric] batch_loss step {s}: {v:.4f}")
        if steps:
            seen["batch_loss"] = steps[-1]
        for name in EPOCH_METRICS + ("final_test_accuracy",):
            steps, values, _ = run.get_metric_series(name, after_step=seen.get(name, -1))
            for s, v in zip(steps, values):
                say(f"[metric] {name} epoch {s}: {v:.4f}" if v is not None else f"[metric] {name} epoch {s}: {v}")
                seen[name] = s
        if run.is_terminal():
            break
        time.sleep(0.5)
    details = run.get_details()
    result = {"run_id": run.id, "status": details["status"], "metrics": run.get_metrics(),
              "batch_points": seen.get("batch_loss", -1) + 1}
    if details["status"] != "Completed":
        say(details.get("error", {}).get("message", ""))
        return result
    model = run.register_model(model_name=SAMPLE_MODEL, model_path="outputs/model",
                               model_framework=Model.Framework.TENSORFLOW,
                               model_framework_version=_tf_version(run),
                               resource_configuration=ResourceConfiguration(cpu=1, memory_in_gb=0.5))
    result["model"] = model.id
    say(f"Registered model {model.id} from run {run.id} (lineage: {model.lineage()})")
    return result


def _tf_version(run) -> str | None:
    text, _ = run.read_log("driver.log")
    for line in text.splitlines():
        if line.startswith("TensorFlow "):
            return line.split()[1].rstrip(",")
    return None
