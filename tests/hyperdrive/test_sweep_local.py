"""The notebook's sweep for real: the shipped TensorFlow sample on its data subset, on the local target.

The notebook's numbers (8 children, 4 at once, on an AmlCompute-made target of 4 nodes) with small
children (2 epochs on 500 training examples, small layers): it checks the whole path (sampler ->
children -> metrics -> policy -> best run -> registered model), not accuracy.
"""
from __future__ import annotations

import importlib.util
import math

import pytest

from mltrain_desktop.core import Experiment, Model
from mltrain_desktop.core.sample_flow import register_sample_dataset
from mltrain_desktop.core.samples import SAMPLE_DIR, SAMPLE_ENTRY_SCRIPT
from mltrain_desktop.train.dnn import TensorFlow
from mltrain_desktop.train.hyperdrive import (BanditPolicy, HyperDriveConfig, PrimaryMetricGoal,
                                              RandomParameterSampling, choice, loguniform)

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")]


def _stored_best(children, name):
    values = {}
    for c in children:
        points = c.get_metrics(name).get(name, [])
        points = points if isinstance(points, list) else [points]
        numeric = [v for v in points if isinstance(v, float) and not math.isnan(v)]
        if numeric:
            values[c.id] = max(numeric)
    return max(values, key=values.get), values


def _most_at_once(children) -> int:
    edges = []
    for c in children:
        d = c.get_details()
        start, end = d["startTimeUtc"], d["endTimeUtc"]
        if start and end:
            edges += [(start, 1), (end, -1)]
    now = most = 0
    for _t, step in sorted(edges, key=lambda e: (e[0], e[1])):
        now += step
        most = max(most, now)
    return most


def test_the_notebook_sweep_on_the_sample_subset(ws, capsys):
    from mltrain_desktop.core.compute import AmlCompute, ComputeTarget
    ComputeTarget.create(ws, "cpu-cluster", AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2",
                                                                                  max_nodes=4))
    ds = register_sample_dataset(ws, full=False)
    est = TensorFlow(source_directory=str(SAMPLE_DIR), entry_script=SAMPLE_ENTRY_SCRIPT, compute_target="cpu-cluster",
                     script_params={"--data-folder": ds.as_named_input("mnist").as_mount(), "--epochs": 2,
                                    "--max-train-samples": 500, "--first-layer-neurons": 32,
                                    "--second-layer-neurons": 16})
    ps = RandomParameterSampling({"--batch-size": choice(25, 50, 100),
                                  "--learning-rate": loguniform(-6, -1)}, properties={"seed": 7})
    htc = HyperDriveConfig(run_config=est, hyperparameter_sampling=ps,
                           policy=BanditPolicy(evaluation_interval=1, slack_factor=0.1),
                           primary_metric_name="val_accuracy", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
                           max_total_runs=8, max_concurrent_runs=4, max_duration_minutes=20)
    htr = Experiment(ws, "tf-mnist-hd").submit(htc)
    details = htr.wait_for_completion(show_output=True, timeout=900)
    assert "Children:" in capsys.readouterr().out
    assert details["status"] == "Completed", details.get("error")
    children = htr.get_children()
    assert len(children) == 8
    assert 2 <= _most_at_once(children) <= 4
    for c in children:
        d = c.get_details()
        assert set(c.hyperparameters) == {"--batch-size", "--learning-rate"}
        assert c.hyperparameters["--batch-size"] in (25, 50, 100)
        assert math.exp(-6) <= c.hyperparameters["--learning-rate"] <= math.exp(-1)
        assert d["status"] in ("Completed", "Canceled"), d.get("error")
        if d["status"] == "Canceled":
            assert d["earlyTermination"].startswith("early terminated by BanditPolicy: ")
    expected, values = _stored_best(children, "val_accuracy")
    best = htr.get_best_run_by_primary_metric()
    assert best.id == expected or values[best.id] == values[expected]
    top = htr.get_children_sorted_by_primary_metric(top=1)[0]
    assert top["run_id"] == best.id and top["best_primary_metric"] == pytest.approx(values[best.id])
    if best.get_status() == "Completed":
        model = best.register_model(model_name="tf-dnn-mnist-hd", model_path="outputs/model",
                                    model_framework=Model.Framework.TENSORFLOW,
                                    tags={"hyperparameters": str(best.hyperparameters)})
        assert model.version == 1 and model.lineage()["run_id"] == best.id
    else:  # the best value came from a child Bandit stopped: it has no finished model to register
        pytest.fail(f"the best child {best.id} was early terminated: {best.get_details()['earlyTermination']}")
