"""How a run's supervisor starts: without ``site``, yet the job sees its submitter's environment.

Also the job kit's name (from the sources' sizes and times, so finding it reads no file) and
the supervisor's own command line.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psutil

from mltrain_desktop.core import Experiment, ScriptRunConfig
from mltrain_desktop.engine import jobkit, supervisor
from mltrain_desktop.engine.backends.base import JobContext

ENV_SCRIPT = """
    import json, os, sys
    print("ENV " + json.dumps({"pythonpath": os.environ.get("PYTHONPATH"), "no_site": sys.flags.no_site,
                               "saved": os.environ.get("MLTRAIN_SUBMITTER_PYTHONPATH")}), flush=True)
"""


def _job_env(ws, src) -> dict:
    run = Experiment(ws, "start").submit(ScriptRunConfig(source_directory=str(src), script="job.py"))
    assert run.wait_for_completion()["status"] == "Completed", run.read_log()[0]
    line = next(l for l in run.read_log()[0].splitlines() if l.startswith("ENV "))
    return json.loads(line[4:]), run


def test_job_gets_the_submitters_pythonpath_not_the_supervisors(ws, make_script, monkeypatch):
    src = make_script(ENV_SCRIPT)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    env, run = _job_env(ws, src)
    kit = jobkit.jobkit_dir(ws.path)
    assert env["pythonpath"] == str(kit)  # only the job kit: none of the supervisor's import path
    assert env["no_site"] == 0            # the job's interpreter starts normally
    assert env["saved"] is None
    # The supervisor reports what it cost: its CPU time, a small number for a short job.
    import re
    cpu = float(re.search(r"\[mltrain\] supervisor CPU time: ([\d.]+) s", run.read_log()[0]).group(1))
    assert 0 < cpu < 30

    extra = str(ws.path / "my-libs")
    monkeypatch.setenv("PYTHONPATH", extra)
    env, _ = _job_env(ws, src)
    assert env["pythonpath"] == os.pathsep.join([str(kit), extra])


def test_supervisor_runs_without_site_and_imports_this_package(ws, make_script):
    src = make_script("import time; time.sleep(30)")
    run = Experiment(ws, "start").submit(ScriptRunConfig(source_directory=str(src), script="job.py"))
    deadline = time.time() + 30
    while run.get_status() != "Running" and time.time() < deadline:
        time.sleep(0.1)
    proc = psutil.Process(run._row()["supervisor_pid"])
    cmd = proc.cmdline()
    assert cmd[1] == "-S" and "mltrain_desktop.engine.supervisor" in " ".join(cmd)
    sup_path = proc.environ()["PYTHONPATH"].split(os.pathsep)
    import mltrain_desktop
    assert sup_path[0] == os.path.dirname(os.path.dirname(os.path.realpath(mltrain_desktop.__file__)))
    assert any(p.endswith("site-packages") for p in sup_path)  # psutil, docker, ... stay importable
    # Both the pid and the create time of the supervisor are on record once the job runs.
    row = run._row()
    assert row["supervisor_started"] is not None
    assert abs(row["supervisor_started"] - proc.create_time()) < 0.5
    run.cancel(wait_seconds=20)
    assert run.get_status() == "Canceled"


def test_supervisor_command_line_is_checked():
    for argv in ([], ["only-one"], ["a", "b", "c"], ["--reattach"], ["-x", "run"]):
        out = subprocess.run([sys.executable, "-c", "from mltrain_desktop.engine.supervisor import main; "
                              "raise SystemExit(main())", *argv], capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, argv
        assert "usage: mltrain-supervisor WORKSPACE RUN_ID [--reattach]" in out.stderr


def _fake_package(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "core").mkdir(parents=True)
    (pkg / "gui").mkdir()
    (pkg / "run.py").write_text("RUN = 1\n")
    (pkg / "core" / "a.py").write_text("A = 1\n")
    (pkg / "gui" / "window.py").write_text("import PySide6\n")
    return pkg


def test_jobkit_is_named_after_the_sources_and_reused(tmp_path, monkeypatch):
    pkg = _fake_package(tmp_path)
    monkeypatch.setattr(jobkit, "PACKAGE_DIR", pkg)
    ws = tmp_path / "ws"
    first = jobkit.jobkit_dir(ws)
    assert (first / "mltrain_desktop" / "run.py").read_text() == "RUN = 1\n"
    assert (first / "mltrain_desktop" / "core" / "a.py").is_file()
    assert not (first / "mltrain_desktop" / "gui").exists()  # the GUI never runs in a job
    assert jobkit.jobkit_dir(ws) == first

    # An edit (new size or time) makes a new kit; the old one is left for jobs still using it.
    (pkg / "core" / "a.py").write_text("A = 22\n")
    second = jobkit.jobkit_dir(ws)
    assert second != first and (second / "mltrain_desktop" / "core" / "a.py").read_text() == "A = 22\n"
    assert (first / "mltrain_desktop" / "core" / "a.py").read_text() == "A = 1\n"
    st = (pkg / "core" / "a.py").stat()
    os.utime(pkg / "core" / "a.py", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert jobkit.jobkit_dir(ws) not in (first, second)
    # A new file changes the name too; a file in a skipped folder does not.
    (pkg / "gui" / "other.py").write_text("x = 1\n")
    third = jobkit.jobkit_dir(ws)
    (pkg / "core" / "b.py").write_text("B = 1\n")
    assert jobkit.jobkit_dir(ws) != third


def test_a_damaged_jobkit_is_rebuilt(tmp_path, monkeypatch):
    pkg = _fake_package(tmp_path)
    monkeypatch.setattr(jobkit, "PACKAGE_DIR", pkg)
    ws = tmp_path / "ws"
    kit = jobkit.jobkit_dir(ws)
    (kit / "mltrain_desktop" / "run.py").unlink()  # e.g. a clean-up tool removed part of it
    again = jobkit.jobkit_dir(ws)
    assert again == kit
    assert (again / "mltrain_desktop" / "run.py").read_text() == "RUN = 1\n"
    assert (again / "mltrain_desktop" / "core" / "a.py").read_text() == "A = 1\n"
    assert not [p for p in (ws / "jobkit").iterdir() if p.name.startswith(".kit-")]  # no leftovers


def test_job_context_replace_copies(tmp_path):
    ctx = JobContext(run_id="r", workspace_dir=tmp_path, run_dir=tmp_path, snapshot_dir=tmp_path,
                     outputs_dir=tmp_path, logs_dir=tmp_path, jobkit_dir=tmp_path, entry_script="x.py",
                     arguments=["1"], environment_variables={"A": "1"}, target={}, spec={"use_gpu": True})
    assert ctx.inputs == {} and ctx.raw_arguments == [] and ctx.interpreter is None and ctx.use_gpu
    other = ctx.replace(environment_variables={"B": "2"}, interpreter="/usr/bin/python3")
    assert other.environment_variables == {"B": "2"} and other.interpreter == "/usr/bin/python3"
    assert ctx.environment_variables == {"A": "1"} and ctx.interpreter is None
    assert other.arguments is ctx.arguments and other.run_id == "r"
    try:
        ctx.replace(no_such_field=1)
    except TypeError as exc:
        assert "no_such_field" in str(exc)
    else:
        raise AssertionError("an unknown field must be refused")
