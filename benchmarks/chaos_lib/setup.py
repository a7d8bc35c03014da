"""Builds what a chaos run needs through the public SDK: workspace, data, targets, runs, endpoints.

- a fresh workspace (``Workspace.create``) in a temporary folder;
- the shipped Fashion-MNIST subset registered as a dataset and mounted into every run;
- ``chaos-local`` (LocalCompute) and, when Docker runs are asked for, ``chaos-docker``
  (``DockerCompute.provisioning_configuration`` with the mltrain-tf:2.21 image);
- one source folder: the sample scripts plus :mod:`job_wrapper` as ``chaos_job.py``;
- runs as estimators (``TensorFlow(...)``, with ``MpiConfiguration`` / ``TensorflowConfiguration``);
- two endpoints serving a tiny registered model through an entry script (pure Python, so that
  the serving processes cost no TensorFlow start-up on a 2-core machine): one local, one in a
  container on the Docker target.
"""
from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "resources" / "samples"
DATA = REPO / "resources" / "data" / "fashion-mnist-small"
DOCKER_IMAGE = "mltrain-tf:2.21"
LOCAL_TARGET = "chaos-local"
DOCKER_TARGET = "chaos-docker"
EXPERIMENT = "chaos"
STEP_DELAY_S = 0.02
LOCAL_ENDPOINT = "chaos-local-ep"
DOCKER_ENDPOINT = "chaos-docker-ep"

# Small enough for seconds of training on a shared 2-core machine, long enough to be hit.
_COMMON = ["--batch-size", "10", "--first-layer-neurons", "32", "--second-layer-neurons", "16",
           "--learning-rate", "0.05", "--epochs", "2"]
SCRIPTS = {
    "local": ("tf_mnist.py", ["--max-train-samples", "600"]),
    "docker": ("tf_mnist.py", ["--max-train-samples", "600"]),
    "mpi": ("mwms_mnist.py", ["--max-train-samples", "600"]),
    "docker_mpi": ("mwms_mnist.py", ["--max-train-samples", "600"]),
    "ps": ("ps_mnist.py", ["--max-train-samples", "600"]),
}

SCORE_PY = textwrap.dedent('''
    """Scores rows with the factor stored in the registered model's file (pure Python)."""
    import json
    import os

    FACTOR = None


    def init():
        global FACTOR
        # as on Azure: AZUREML_MODEL_DIR holds the registered folder (named as it was registered)
        path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "chaos-model", "factor.json")
        with open(path, encoding="utf-8") as fh:
            FACTOR = json.load(fh)["factor"]


    def run(raw_data):
        rows = json.loads(raw_data)["data"]
        return {"result": [FACTOR * sum(row) for row in rows]}
''')


def make_source_folder(root: Path) -> Path:
    """The sample scripts and the recording wrapper, in one folder every run snapshots."""
    src = root / "chaos-src"
    src.mkdir(parents=True, exist_ok=True)
    for folder in ("tf-mnist", "tf-mnist-distributed"):
        for f in (SAMPLES / folder).glob("*.py"):
            shutil.copy2(f, src / f.name)
    shutil.copy2(Path(__file__).with_name("job_wrapper.py"), src / "chaos_job.py")
    return src


def create_workspace(root: Path, docker: bool, max_local: int, max_docker: int, docker_url: str | None = None):
    from mltrain_desktop.core import ComputeTarget, Dataset, Workspace
    from mltrain_desktop.core.compute import LocalCompute
    ws = Workspace.create(root / "ws")
    ComputeTarget.create(ws, LOCAL_TARGET, LocalCompute.provisioning_configuration(max_concurrent_runs=max_local))
    if docker:
        from mltrain_desktop.core.compute_docker import DockerCompute
        ComputeTarget.create(ws, DOCKER_TARGET, DockerCompute.provisioning_configuration(
            base_url=docker_url, image=DOCKER_IMAGE, max_concurrent_runs=max_docker))
    files = [str(p) for p in sorted(DATA.glob("*-ubyte.gz"))]
    ds = Dataset.File.from_files(path=files).register(workspace=ws, name="mnist subset",
                                                      description="chaos suite data", create_new_version=True)
    return ws, ds


def estimator_for(kind: str, source: Path, dataset):
    from mltrain_desktop.core.runconfig import MpiConfiguration, TensorflowConfiguration
    from mltrain_desktop.train.dnn import TensorFlow
    script, extra = SCRIPTS[kind]
    target = DOCKER_TARGET if kind in ("docker", "docker_mpi") else LOCAL_TARGET
    dist, nodes, ppn = None, 1, 1
    if kind in ("mpi", "docker_mpi"):
        dist, nodes, ppn = MpiConfiguration(), 1, 2
    elif kind == "ps":
        dist = TensorflowConfiguration(worker_count=1, parameter_server_count=1)
    args = [script, "--data-folder", dataset.as_named_input("mnist").as_mount(), *_COMMON, *extra]
    return TensorFlow(source_directory=str(source), entry_script="chaos_job.py", arguments=args,
                      compute_target=target, distributed_training=dist, node_count=nodes,
                      process_count_per_node=ppn, use_gpu=False,
                      environment_variables={"CHAOS_STEP_DELAY_S": str(STEP_DELAY_S),
                                             "TF_CPP_MIN_LOG_LEVEL": "2"})


def submit(ws, kind: str, source: Path, dataset):
    from mltrain_desktop.core import Experiment
    return Experiment(workspace=ws, name=EXPERIMENT).submit(estimator_for(kind, source, dataset),
                                                            tags={"chaos.kind": kind})


def deploy_endpoints(ws, root: Path, docker: bool) -> list[str]:
    """Registers the tiny model and deploys the endpoints; returns their names (Healthy)."""
    from mltrain_desktop.core import InferenceConfig, LocalWebservice, Model
    from mltrain_desktop.core.webservice import DockerWebservice, deploy
    model_dir = root / "chaos-model"
    model_dir.mkdir(exist_ok=True)
    (model_dir / "factor.json").write_text(json.dumps({"factor": 2}))
    score_dir = root / "chaos-score"
    score_dir.mkdir(exist_ok=True)
    (score_dir / "score.py").write_text(SCORE_PY)
    model = Model.register(ws, str(model_dir), "chaos-model", model_framework="Custom")
    inference = InferenceConfig(entry_script="score.py", source_directory=str(score_dir))
    names = []
    configs = [(LOCAL_ENDPOINT, LocalWebservice.deploy_configuration(auth_enabled=True))]  # keys exercised too
    if docker:
        configs.append((DOCKER_ENDPOINT, DockerWebservice.deploy_configuration(compute_target=DOCKER_TARGET)))
    for name, config in configs:
        service = deploy(ws, name, [model], inference_config=inference, deployment_config=config)
        if str(service.state) != "Healthy":
            raise RuntimeError(f"endpoint {name} is {service.state}: {service.state_detail}\n"
                               f"{service.get_logs(30)}")
        names.append(name)
    return names


def delete_endpoints(ws, names: list[str]) -> None:
    from mltrain_desktop.core import Webservice
    for name in names:
        try:
            Webservice(ws, name).delete()
        except Exception:  # noqa: BLE001 - already gone; the orphan check reports what is left
            pass
