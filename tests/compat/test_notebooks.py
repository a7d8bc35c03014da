"""The seed's companion notebooks, as Azure ML SDK v1 users wrote them, run unchanged through a real Jupyter
kernel (nbclient + ipykernel) after ``%load_ext mltrain_desktop``, and as a script through ``mltrain exec``.

Each notebook's folder holds what the Azure notebook's folder held: an Azure ``config.json``
(``Workspace.from_config()`` maps it to a local workspace of that name), the training script written the
seed's way (``from azureml.core import Run``), ``utils.py``, and the sample subset's MNIST files. Epochs and
data are shrunk so that each runs in about a minute on 2 cores.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from mltrain_desktop.core.samples import DISTRIBUTED_SAMPLE_DIR, MNIST_FILES, SAMPLE_DIR, SUBSET_DIR

from .notebooks import distributed_horovod, distributed_ps, tf_deploy

pytestmark = pytest.mark.slow

def _seed_style(text: str) -> str:
    """The sample script with the seed's own import of Run: its ``try: # the seed's form`` block (which
    imports Run from mltrain_desktop) becomes ``from azureml.core import Run``."""
    lines, out, skipping = text.splitlines(), [], False
    for line in lines:
        if line.startswith("try:  # the seed's form"):
            out += ["from azureml.core import Run", "", ""]
            skipping = True
            continue
        if skipping and (not line.strip() or line[0].isspace() or line.startswith(("except", "else:", "finally:"))):
            continue
        skipping = False
        out.append(line)
    text = "\n".join(out) + "\n"
    assert "mltrain_desktop" not in text.replace("MLTrain Desktop", ""), "the script must use only azureml names"
    return text


def _notebook_folder(tmp_path: Path, name: str, sample_dir: Path) -> Path:
    """A folder as the Azure notebook's: config.json, the sample's scripts (seed-style), data/."""
    folder = tmp_path / name
    (folder / "data").mkdir(parents=True)
    for f in MNIST_FILES:
        shutil.copyfile(SUBSET_DIR / f, folder / "data" / f)
    for script in sample_dir.glob("*.py"):
        (folder / script.name).write_text(_seed_style(script.read_text()))
    if sample_dir != SAMPLE_DIR:
        (folder / "utils.py").write_text((SAMPLE_DIR / "utils.py").read_text())
    (folder / "config.json").write_text(json.dumps({
        "subscription_id": "00000000-1111-2222-3333-444444444444", "resource_group": "nb-rg",
        "workspace_name": f"{name}-{uuid.uuid4().hex[:6]}"}))
    return folder


def _as_script(cells: list[str]) -> str:
    """The notebook's code as a plain script: cell magics become what they do, line magics go."""
    out = []
    for cell in cells:
        src = cell.strip("\n")
        lines = src.splitlines()
        if lines and lines[0].startswith("%%writefile"):
            name = lines[0].split(None, 1)[1].strip()
            out.append(f"with open({name!r}, 'w') as _fh:\n    _fh.write({chr(10).join(lines[1:]) + chr(10)!r})")
            continue
        kept = [ln for ln in lines if not ln.lstrip().startswith("%")]
        out.append("\n".join(kept))
    return "\n\n".join(out) + "\n"


def _kernel_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MLTRAIN_COMPAT", None)  # the notebook turns the layer on itself
    env.pop("MLTRAIN_WORKSPACE", None)  # Workspace.from_config() finds the notebook's config.json
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _execute(folder: Path, cells: list[str]) -> tuple[str, float]:
    """Runs the cells in a python3 Jupyter kernel in ``folder``; every cell must succeed. -> (all output, seconds)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c.strip("\n")) for c in cells]
    nbformat.write(nb, folder / "notebook.ipynb")
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    saved, env = dict(os.environ), _kernel_env()
    os.environ.clear()
    os.environ.update(env)  # the kernel starts with this process's environment
    t0 = time.monotonic()
    try:
        client.execute()  # raises CellExecutionError naming the cell and its traceback when one fails
    finally:
        os.environ.clear()
        os.environ.update(saved)
    seconds = time.monotonic() - t0
    nbformat.write(nb, folder / "notebook.ipynb")
    texts = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"cell {i} failed: {out.get('ename')}: {out.get('evalue')}"
            texts.append(out.get("text", ""))
            data = out.get("data") or {}
            texts.append(data.get("text/plain", ""))
            texts.append(data.get("text/html", ""))
            if "application/vnd.jupyter.widget-view+json" in data:
                texts.append("WIDGET-VIEW")
    return "\n".join(texts), seconds


def _exec_script(folder: Path, cells: list[str]) -> tuple[str, float]:
    """Runs the same code as ``mltrain exec notebook_script.py`` in ``folder``."""
    script = folder / "notebook_script.py"
    script.write_text(_as_script(cells))
    mltrain = Path(sys.executable).with_name("mltrain")
    cmd = [str(mltrain)] if mltrain.is_file() else [sys.executable, "-m", "mltrain_desktop.cli"]
    env = {**_kernel_env(), "QT_QPA_PLATFORM": "offscreen"}
    t0 = time.monotonic()
    log = folder / "exec.log"  # not a pipe: the windows RunDetails opens would hold a pipe open
    try:
        with open(log, "w") as fh:
            proc = subprocess.run([*cmd, "exec", script.name], cwd=folder, env=env, stdout=fh,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=600)
    finally:
        windows = _close_windows(json.loads((folder / "config.json").read_text())["workspace_name"])
    seconds = time.monotonic() - t0
    out = log.read_text(errors="replace")
    assert proc.returncode == 0, f"mltrain exec failed ({proc.returncode}):\n{out[-6000:]}"
    assert windows, "RunDetails(run).show() outside Jupyter should have opened the window on the run"
    return out, seconds


def _close_windows(workspace_name: str) -> int:
    """Closes the windows RunDetails(...).show() opened on this notebook's workspace; returns how many."""
    import psutil
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = p.info.get("cmdline") or []
        if "mltrain_desktop.gui.app" in cmd and any(workspace_name in a for a in cmd):
            found.append(p)
    for p in found:
        p.terminate()
    _, alive = psutil.wait_procs(found, timeout=10)
    for p in alive:
        p.kill()
    return len(found)


def _report(name: str, how: str, cells: list[str], seconds: float) -> None:
    print(f"\n[figure] {name} via {how}: {len(cells)} cells unchanged, {seconds:.1f} s", flush=True)


def _check_tf_deploy(out: str) -> None:
    assert "SDK version:" in out and "Azure region: local" in out and "Resource group: nb-rg" in out
    assert "'provisioningState': 'Succeeded'" in out
    assert "RUN STATUS: Completed" in out
    assert re.search(r"BEST RUN: tf-mnist_\S+", out), out[-3000:]
    m = re.search(r"SERVICE ANSWERED: (\[[0-9, ]+\]) labels: (\[[0-9, ]+\])", out)
    assert m and len(json.loads(m.group(1))) == 5, out[-3000:]
    answered = re.search(r"HTTP 200 prediction: (\[[0-9, ]+\])", out)  # requests.post(scoring_uri) as the notebook
    assert answered and json.loads(answered.group(1)) == json.loads(m.group(1)), out[-3000:]
    assert "Webservice: tf-mnist-svc" in out and "Model: tf-dnn-mnist" in out


def _check_horovod(out: str) -> None:
    assert "RUN STATUS: Completed" in out and "RANKS: 2" in out
    assert "NODES: ['node-0', 'node-1']" in out, out[-3000:]


def _check_ps(out: str) -> None:
    assert "RUN STATUS: Completed" in out, out[-3000:]
    assert "TASKS: ['chief_0', 'ps_0', 'worker_0', 'worker_1']" in out, out[-3000:]


NOTEBOOKS = {
    "train-hyperparameter-tune-deploy-with-tensorflow": (tf_deploy.CELLS, SAMPLE_DIR, _check_tf_deploy),
    "distributed-tensorflow-with-horovod": (distributed_horovod.CELLS, DISTRIBUTED_SAMPLE_DIR, _check_horovod),
    "distributed-tensorflow-with-parameter-server": (distributed_ps.CELLS, DISTRIBUTED_SAMPLE_DIR, _check_ps),
}


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_the_notebook_runs_unchanged_in_a_jupyter_kernel(tmp_path, name):
    cells, sample, check = NOTEBOOKS[name]
    if "horovod" in name and shutil.which("mpirun") is None:
        pytest.skip("Open MPI's mpirun is not installed (apt install openmpi-bin)")
    out, seconds = _execute(_notebook_folder(tmp_path, name, sample), cells)
    _report(name, "nbclient", cells, seconds)
    assert "azureml names served by MLTrain Desktop" in out
    assert "WIDGET-VIEW" in out  # RunDetails(run).show() rendered its ipywidgets view
    check(out)


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_the_notebook_code_runs_unchanged_through_mltrain_exec(tmp_path, name):
    cells, sample, check = NOTEBOOKS[name]
    if "horovod" in name and shutil.which("mpirun") is None:
        pytest.skip("Open MPI's mpirun is not installed (apt install openmpi-bin)")
    out, seconds = _exec_script(_notebook_folder(tmp_path, name, sample), cells)
    _report(name, "mltrain exec", cells, seconds)
    check(out)
