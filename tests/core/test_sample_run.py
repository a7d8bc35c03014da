"""The seed's flow for real: the sample trains with TensorFlow on the CPU through exp.submit."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mltrain_desktop.core import Experiment, Model
from mltrain_desktop.core.sample_flow import register_sample_dataset, run_sample, sample_estimator

pytestmark = pytest.mark.slow


def test_sample_trains_logs_and_registers_a_loadable_model(ws, tmp_path):
    ds = register_sample_dataset(ws, full=False)
    run = Experiment(ws, "tf-mnist").submit(sample_estimator(ws, ds, epochs=2))
    details = run.wait_for_completion(show_output=True)
    assert details["status"] == "Completed"
    events = run.get_events()
    assert [e["status"] for e in events] == ["Queued", "Preparing", "Running", "Finalizing", "Completed"]
    assert all(a["at"] <= b["at"] for a, b in zip(events, events[1:]))
    log = run.read_log(max_bytes=1 << 22)[0]
    assert "Training 2 epoch(s)" in log and "Final test accuracy" in log
    m = run.get_metrics()
    assert len(m["loss"]) == 2 and len(m["val_accuracy"]) == 2
    assert len(m["batch_loss"]) == 2 * 2000 // 50
    assert 0.0 <= m["final_test_accuracy"] <= 1.0
    model = run.register_model(model_name="tf-dnn-mnist", model_path="outputs/model",
                               model_framework=Model.Framework.TENSORFLOW, model_framework_version="2.21")
    assert model.version == 1
    lineage = model.lineage()
    assert lineage["run_id"] == run.id and lineage["experiment"] == "tf-mnist"
    assert lineage["datasets"] == [{"input": "mnist", "name": "mnist dataset", "version": 1, "mode": "mount"}]
    dest = model.download(str(tmp_path / "dl"))
    code = ("import sys, numpy as np, tensorflow as tf\n"
            "m = tf.keras.models.load_model(sys.argv[1] + '/model.keras')\n"
            "print(m.predict(np.zeros((2, 28, 28), 'float32'), verbose=0).shape)")
    out = subprocess.run([sys.executable, "-c", code, dest], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("(2, 10)")
    # the seed's download loop
    os.makedirs(tmp_path / "model", exist_ok=True)
    for f in run.get_file_names():
        if f.startswith("outputs/model"):
            run.download_file(name=f, output_file_path=str(tmp_path / "model" / f.split("/")[-1]))
    assert (tmp_path / "model" / "model.keras").is_file()


def test_register_model_from_a_path_outside_outputs(ws, make_script):
    from mltrain_desktop.core import ScriptRunConfig
    from mltrain_desktop.core.errors import ModelError
    src = make_script("open('outputs/weights.bin','w').write('w')")
    run = Experiment(ws, "e").submit(ScriptRunConfig(source_directory=str(src), script="job.py"))
    run.wait_for_completion()
    with pytest.raises(ModelError, match="has no 'outputs/model'.*outputs/weights.bin"):
        run.register_model("m", "outputs/model")
    with pytest.raises(ModelError, match="inside the run's folder"):
        run.register_model("m", "../../etc")
    assert Model.list(ws) == []
    m = run.register_model("m", "outputs/weights.bin", tags={"k": "v"})
    assert (m.version, m.tags, Model(ws, "m").version) == (1, {"k": "v"}, 1)
    assert run.register_model("m", "outputs/weights.bin").version == 2
    with pytest.raises(ModelError, match="no model 'm' version 9"):
        Model(ws, "m", version=9)
