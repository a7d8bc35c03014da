"""Runs on the local target, end to end through real supervisor processes (tiny scripts, no TF)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from mltrain_desktop.core import Dataset, Experiment, ScriptRunConfig, Workspace
from mltrain_desktop.core.compute import ComputeTarget, LocalCompute
from mltrain_desktop.core.compute_target import ComputeTargetException
from mltrain_desktop.core.errors import RunError, UserErrorException
from mltrain_desktop.core.runs import Run
from mltrain_desktop.train.dnn import TensorFlow

LOGGING_SCRIPT = """
    import sys, math
    from mltrain_desktop.core import Run
    run = Run.get_context()
    print("hello from the job", sys.argv[1:], flush=True)
    for i in range(50):
        run.log("loss", 1.0 / (i + 1))
    run.log("weird", float("nan"))
    run.log("weird", float("inf"))
    run.log("label", "not a number")
    run.log_list("accs", [0.1, 0.2, 0.3])
    run.log_row("table", epoch=1, acc=0.5)
    run.tag("color", "blue")
    try:
        run.log("bad", object())
    except TypeError as e:
        print("rejected:", e, flush=True)
    import os
    open("outputs/result.txt", "w").write("done")
"""


def submit(ws, src, script="job.py", args=None, target="local", **kw):
    cfg = ScriptRunConfig(source_directory=str(src), script=script, arguments=args or [], compute_target=target, **kw)
    return Experiment(ws, "tests").submit(cfg)


def test_run_logs_metrics_and_outputs(ws, make_script):
    src = make_script(LOGGING_SCRIPT)
    run = submit(ws, src, args=["--alpha", 3, "--beta", 0.5])
    details = run.wait_for_completion()
    assert details["status"] == "Completed"
    states = [e["status"] for e in run.get_events()]
    assert states == ["Queued", "Preparing", "Running", "Finalizing", "Completed"]
    times = [e["at"] for e in run.get_events()]
    assert times == sorted(times)
    m = run.get_metrics()
    assert len(m["loss"]) == 50 and m["loss"][0] == 1.0
    assert m["accs"] == [0.1, 0.2, 0.3]
    assert m["label"] == "not a number"
    assert m["table"] == {"epoch": [1], "acc": [0.5]}
    weird = m["weird"]
    assert weird[0] != weird[0] and weird[1] == float("inf")
    assert run.get_tags() == {"color": "blue"}
    text, _ = run.read_log()
    assert "hello from the job ['--alpha', '3', '--beta', '0.5']" in text
    assert "rejected: metric value" in text
    assert "outputs/result.txt" in run.get_file_names()
    assert details["exitCode"] == 0


def test_failed_script_records_exit_code_and_traceback(ws, make_script):
    src = make_script("""
        def deep():
            raise ValueError("the data is wrong")
        deep()
    """)
    run = submit(ws, src)
    with pytest.raises(RunError, match="the data is wrong"):
        run.wait_for_completion()
    d = run.get_details()
    assert d["status"] == "Failed" and d["exitCode"] == 1
    assert "Traceback (most recent call last)" in d["error"]["message"]
    assert "ValueError: the data is wrong" in d["error"]["message"]


def test_non_utf8_output_and_a_one_megabyte_line(ws, make_script):
    src = make_script("""
        import sys
        sys.stdout.buffer.write(b"bad bytes: \\xff\\xfe\\x80 end\\n")
        sys.stdout.buffer.write(b"x" * (1 << 20) + b"\\n")
        sys.stdout.flush()
        from mltrain_desktop.run import Run
        Run.get_context().log("n" * 300, 1)
        print("after", flush=True)
    """)
    run = submit(ws, src)
    run.wait_for_completion(show_output=True)
    text, _ = run.read_log(max_bytes=4 << 20)
    assert "bad bytes: \ufffd\ufffd\ufffd end" in text
    assert "x" * 1000 in text and "after" in text
    assert run.get_metrics()["n" * 300] == 1


def test_entry_script_and_source_directory_missing(ws, tmp_path, make_script):
    with pytest.raises(UserErrorException, match="source_directory .* does not exist"):
        submit(ws, tmp_path / "nope")
    src = make_script("print(1)")
    with pytest.raises(UserErrorException, match="entry script other.py was not found"):
        submit(ws, src, script="other.py")
    assert ws.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_script_param_of_a_bad_type(ws, make_script):
    src = make_script("print(1)")
    for bad in ([1, 2], {"a": 1}, None, object()):
        with pytest.raises(UserErrorException, match="must be a string, a number or a dataset input"):
            submit(ws, src, args=["--x", bad])
    est = TensorFlow(source_directory=str(src), entry_script="job.py", script_params={"--x": [1]})
    with pytest.raises(UserErrorException, match="script parameter --x"):
        Experiment(ws, "e").submit(est)
    assert ws.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_unknown_compute_target(ws, make_script):
    src = make_script("print(1)")
    with pytest.raises(ComputeTargetException, match="no compute target named 'gpucluster'"):
        submit(ws, src, target="gpucluster")
    with pytest.raises(ComputeTargetException):
        ComputeTarget(workspace=ws, name="gpucluster")


def test_use_gpu_on_a_target_without_gpu(ws, make_script):
    src = make_script("print('should not run')")
    run = submit(ws, src, use_gpu=True)
    with pytest.raises(RunError):
        run.wait_for_completion()
    d = run.get_details()
    assert [e["status"] for e in d["events"]][-1] == "Failed"
    assert "Preparing" in [e["status"] for e in d["events"]] and "Running" not in [e["status"] for e in d["events"]]
    assert "target 'local' has no GPU" in d["error"]["message"]
    assert "should not run" not in run.read_log()[0]


def test_dataset_input_is_mounted_read_only(ws, make_script, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f.txt").write_text("payload")
    ds = Dataset.File.from_files(path=[str(tmp_path / "data")]).register(ws, "data")
    src = make_script("""
        import sys, os
        folder = sys.argv[2]
        print("read:", open(os.path.join(folder, "f.txt")).read(), flush=True)
        print("env:", os.environ["AZUREML_DATAREFERENCE_data"] == folder, flush=True)
        print("writable file:", oct(os.stat(os.path.join(folder, "f.txt")).st_mode & 0o777), flush=True)
    """)
    run = submit(ws, src, args=["--data-folder", ds.as_named_input("data").as_mount()])
    run.wait_for_completion()
    text = run.read_log()[0]
    assert "read: payload" in text and "env: True" in text and "writable file: 0o444" in text
    assert run.get_details()["inputDatasets"] == [{"name": "data", "mode": "mount", "dataset": "data", "version": 1}]
    run2 = submit(ws, src, args=["--d", ds.as_named_input("data").as_download()])
    run2.wait_for_completion()
    assert "read: payload" in run2.read_log()[0]
    assert (run2.run_dir / "inputs" / "data" / "f.txt").is_file()


def _job_tree_pids(run) -> list[int]:
    state = json.loads(run._row()["backend_state"])
    p = psutil.Process(state["pid"])
    return [p.pid] + [c.pid for c in p.children(recursive=True)]


def test_cancel_ends_the_whole_process_tree(ws, make_script):
    src = make_script("""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print("child", child.pid, flush=True)
        time.sleep(600)
    """)
    run = submit(ws, src)
    deadline = time.time() + 60
    while "child" not in run.read_log()[0] and time.time() < deadline:
        time.sleep(0.2)
    pids = _job_tree_pids(run)
    assert len(pids) == 2
    assert run.cancel() == "Canceled"
    gone, alive = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)], timeout=10)
    assert not alive
    assert [e["status"] for e in run.get_events()][-1] == "Canceled"


def test_cancel_while_queued(ws, make_script):
    ComputeTarget.create(ws, "one", LocalCompute.provisioning_configuration(max_concurrent_runs=1))
    src = make_script("import time; time.sleep(600)")
    first = submit(ws, src, target="one")
    second = submit(ws, src, target="one")
    time.sleep(2)
    assert second.get_status() == "Queued"
    assert second.cancel() == "Canceled"
    assert first.get_status() in ("Preparing", "Running")
    assert first.cancel() == "Canceled"


def test_max_concurrent_runs_is_respected(ws, make_script):
    ComputeTarget.create(ws, "two", LocalCompute.provisioning_configuration(max_concurrent_runs=2))
    src = make_script("import time; time.sleep(3)")
    runs = [submit(ws, src, target="two") for _ in range(3)]
    for r in runs:
        r.wait_for_completion()
    spans = []
    for r in runs:
        ev = {e["status"]: e["at"] for e in r.get_events()}
        spans.append((ev["Preparing"], ev["Completed"]))
    overlaps = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert overlaps == 2


def test_run_survives_the_submitting_process(ws, make_script):
    src = make_script("""
        import time
        from mltrain_desktop.core import Run
        r = Run.get_context()
        for i in range(6):
            r.log("tick", i); time.sleep(0.5)
    """)
    code = textwrap.dedent(f"""
        from mltrain_desktop.core import Workspace, Experiment, ScriptRunConfig
        ws = Workspace({str(ws.path)!r})
        run = Experiment(ws, "detached").submit(ScriptRunConfig(source_directory={str(src)!r}, script="job.py"))
        print(run.id)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    run = Run.get(Workspace(ws.path), out.stdout.strip())
    assert run.wait_for_completion()["status"] == "Completed"
    assert run.get_metrics()["tick"] == [0, 1, 2, 3, 4, 5]


def test_dead_supervisor_marks_the_run_failed_when_a_client_recovers(ws, make_script):
    src = make_script("import time; time.sleep(600)")
    run = submit(ws, src)
    deadline = time.time() + 60
    while run.get_status() != "Running" and time.time() < deadline:
        time.sleep(0.2)
    job_pids = _job_tree_pids(run)
    sup = run._row()["supervisor_pid"]
    psutil.Process(sup).kill()
    psutil.Process(sup).wait(5) if psutil.pid_exists(sup) else None
    reopened = Workspace(ws.path)
    assert Run.get(reopened, run.id).get_status() == "Running"  # opening alone changes nothing
    assert reopened.recover() == [run.id]
    r = Run.get(reopened, run.id)
    assert r.get_status() == "Failed"
    assert "supervisor process" in r.get_details()["error"]["message"]
    _gone, alive = psutil.wait_procs([psutil.Process(p) for p in job_pids if psutil.pid_exists(p)], timeout=10)
    assert not alive


def test_virtual_environment_built_once_and_reused(ws, make_script):
    src = make_script("""
        import tomli_w, sys
        print("tomli_w from", tomli_w.__file__, flush=True)
        import psutil  # from the base environment, layered underneath
        print("base visible", flush=True)
    """)
    runs = []
    for _ in range(2):
        cfg = ScriptRunConfig(source_directory=str(src), script="job.py")
        cfg.environment.pip_packages = ["tomli-w==1.0.0"]
        runs.append(Experiment(ws, "env").submit(cfg))
        runs[-1].wait_for_completion()
    first, second = (r.read_log()[0] for r in runs)
    assert "building a virtual environment" in first and "base visible" in first
    assert "found in cache" in second and "building" not in second
    assert "/envs/" in second
    hashes = {r.get_details()["environmentHash"] for r in runs}
    rows = ws.db.execute("SELECT hash, kind, state, last_used >= created FROM environments").fetchall()
    assert len(hashes) == 1 and rows == [(hashes.pop(), "venv", "Ready", 1)]


def test_pip_package_that_does_not_exist(ws, make_script):
    src = make_script("print('never')")
    cfg = ScriptRunConfig(source_directory=str(src), script="job.py")
    cfg.environment.pip_packages = ["mltrain-no-such-package-xyz==9.9.9"]
    run = Experiment(ws, "env").submit(cfg)
    with pytest.raises(RunError, match="pip install .* failed"):
        run.wait_for_completion()
    msg = run.get_details()["error"]["message"]
    assert "No matching distribution" in msg or "Could not find a version" in msg
    assert not any(p.name != ".lock" and (p / ".complete").exists() for p in (ws.path / "envs").iterdir() if p.is_dir())


def test_two_clients_submit_to_the_same_workspace(ws, make_script):
    src = make_script("from mltrain_desktop.core import Run; Run.get_context().log('x', 1)")
    code = textwrap.dedent(f"""
        from mltrain_desktop.core import Workspace, Experiment, ScriptRunConfig
        ws = Workspace({str(ws.path)!r})
        ids = [Experiment(ws, "shared").submit(ScriptRunConfig(source_directory={str(src)!r}, script="job.py")).id
               for _ in range(2)]
        print(" ".join(ids))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    ids = sum((p.communicate(timeout=120)[0].split() for p in procs), [])
    assert len(set(ids)) == 4
    numbers = sorted(Run.get(ws, i).number for i in ids)
    assert numbers == [1, 2, 3, 4]
    for i in ids:
        assert Run.get(ws, i).wait_for_completion()["status"] == "Completed"


def test_resubmit_and_delete(ws, make_script):
    import shutil
    src = make_script("import sys; from mltrain_desktop.core import Run; Run.get_context().log('a', float(sys.argv[2]))")
    run = submit(ws, src, args=["--a", 2.5])
    run.wait_for_completion()
    shutil.rmtree(src)  # the re-run comes from the snapshot
    again = run.resubmit()
    assert again.wait_for_completion()["status"] == "Completed"
    assert again.get_metrics() == {"a": 2.5} and again.number == run.number + 1
    run.delete()
    assert not run.run_dir.exists()
    with pytest.raises(RunError, match="no run with id"):
        Run.get(ws, run.id)
    assert ws.db.execute("SELECT COUNT(*) FROM metric_series WHERE run_id=?", [run.id]).fetchone()[0] == 0
    again.register_model("m", "outputs")
    with pytest.raises(RunError, match="registered models"):
        again.delete()
