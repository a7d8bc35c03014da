"""The notebook's sweep on a Docker target (real engine, the mltrain-tf image): 2 children of the sample.

The Docker target runs one run at a time, so the sweep's max_concurrent_runs=2 is bounded to 1 by it.
Uses the Docker fixtures of tests/docker (engine started or skipped, images built, no container left).
"""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

_DOCKER_TESTS = Path(__file__).resolve().parents[1] / "docker"
sys.path.insert(0, str(_DOCKER_TESTS))
_spec = importlib.util.spec_from_file_location("docker_fixtures_for_sweeps", _DOCKER_TESTS / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
docker_api, no_leftovers = _fixtures.docker_api, _fixtures.no_leftovers

from docker_helpers import TF_IMAGE, ca_bundle  # noqa: E402
from mltrain_desktop.core import ComputeTarget, Experiment  # noqa: E402
from mltrain_desktop.core.compute_docker import DockerCompute  # noqa: E402
from mltrain_desktop.core.sample_flow import register_sample_dataset  # noqa: E402
from mltrain_desktop.core.samples import SAMPLE_DIR, SAMPLE_ENTRY_SCRIPT  # noqa: E402
from mltrain_desktop.train.dnn import TensorFlow  # noqa: E402
from mltrain_desktop.train.hyperdrive import (HyperDriveConfig, PrimaryMetricGoal,  # noqa: E402
                                              RandomParameterSampling, choice, loguniform)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.usefixtures("no_leftovers")]


def test_a_sweep_of_the_sample_on_a_docker_target(ws, docker_api):
    target = ComputeTarget.create(ws, "docker1", DockerCompute.provisioning_configuration(
        image=TF_IMAGE, ca_certificates=ca_bundle(), shm_size="1g"))
    assert target.provisioning_state == "Succeeded", target.state_detail
    ds = register_sample_dataset(ws, full=False)
    est = TensorFlow(source_directory=str(SAMPLE_DIR), entry_script=SAMPLE_ENTRY_SCRIPT, compute_target=target,
                     script_params={"--data-folder": ds.as_named_input("mnist").as_mount(), "--epochs": 1,
                                    "--max-train-samples": 500, "--first-layer-neurons": 32,
                                    "--second-layer-neurons": 16})
    ps = RandomParameterSampling({"--batch-size": choice(25, 50), "--learning-rate": loguniform(-6, -1)},
                                 properties={"seed": 1})
    htc = HyperDriveConfig(run_config=est, hyperparameter_sampling=ps, primary_metric_name="val_accuracy",
                           primary_metric_goal=PrimaryMetricGoal.MAXIMIZE, max_total_runs=2, max_concurrent_runs=2)
    htr = Experiment(ws, "tf-mnist-hd-docker").submit(htc)
    details = htr.wait_for_completion(timeout=900, raise_on_error=False)
    children = htr.get_children()
    assert details["status"] == "Completed", [c.get_details().get("error") for c in children]
    assert len(children) == 2 and {c.get_status() for c in children} == {"Completed"}
    assert all(c.get_tags()["docker.image"] == TF_IMAGE for c in children)
    first, second = (c.get_events() for c in children)
    assert first[-1]["at"] <= next(e["at"] for e in second if e["status"] == "Preparing")  # one at a time
    values = {c.id: max(v for v in c.get_metrics("val_accuracy")["val_accuracy"] if not math.isnan(v))
              if isinstance(c.get_metrics("val_accuracy")["val_accuracy"], list)
              else c.get_metrics("val_accuracy")["val_accuracy"] for c in children}
    best = htr.get_best_run_by_primary_metric()
    assert values[best.id] == max(values.values())
    model = best.register_model(model_name="tf-dnn-mnist-hd-docker", model_path="outputs/model")
    assert model.lineage()["run_id"] == best.id
