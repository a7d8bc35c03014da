"""The Docker backend driven directly (a JobContext made by hand), against a real engine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from docker_helpers import BASE_IMAGE, TF_IMAGE, make_ctx, wait_rc, workspace_containers
from mltrain_desktop.core.compute_docker import probe
from mltrain_desktop.engine.backends.base import JobContext, PrepareError
from mltrain_desktop.engine.backends.docker import DockerBackend, clean_orphans

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftovers")]


def test_a_job_runs_with_mounts_user_metrics_and_outputs(docker_api, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("payload")
    os.chmod(data, 0o555)
    ctx = make_ctx(tmp_path, """
        import os, sys
        from mltrain_desktop.core import Run
        run = Run.get_context()
        print("cwd", os.getcwd(), "ids", os.getuid(), os.getgid(), flush=True)
        print("args", sys.argv[1:], flush=True)
        folder = sys.argv[2]
        print("input", open(os.path.join(folder, "a.txt")).read(), flush=True)
        try:
            open(os.path.join(folder, "b.txt"), "w")
        except OSError as e:
            print("input is read-only:", e.errno, flush=True)
        for i in range(3):
            run.log("loss", 1.0 / (i + 1))
        run.tag("where", "container")
        open("outputs/x.txt", "w").write("written in a container")
        print("to stderr", file=sys.stderr)
        """, inputs={"data": {"path": str(data), "mode": "mount", "dataset": "d", "version": 1}},
        arguments=["--data-folder", str(data)], raw_arguments=["--data-folder", {"input": "data"}],
        config={"cpus": 1.5, "memory_gb": 1, "shm_size": "256m"})
    backend = DockerBackend(ctx.target)
    backend.prepare(ctx)
    assert backend.image == TF_IMAGE
    handle = backend.launch(ctx)
    state = handle.state()
    assert state["container_name"] == "mltrain-exp_1_r1" and state["container_id"]
    info = docker_api.inspect_container(state["container_id"])
    assert info["HostConfig"]["Init"] is True and info["HostConfig"]["Privileged"] is False
    assert info["Config"]["Labels"]["mltrain.run"] == "exp_1_r1"
    hc = info["HostConfig"]
    assert (hc["NanoCpus"], hc["Memory"], hc["ShmSize"]) == (1_500_000_000, 1 << 30, 256 << 20)
    assert hc["NetworkMode"] == "default" and hc["SecurityOpt"] == ["no-new-privileges"]
    assert wait_rc(handle) == 0
    log = (ctx.logs_dir / "driver.log").read_text()
    assert "cwd /mltrain/run/snapshot" in log
    assert f"ids {os.getuid()} {os.getgid()}" in log
    assert "args ['--data-folder', '/mltrain/inputs/data']" in log
    assert "input payload" in log and "input is read-only: 30" in log  # EROFS
    assert "to stderr" in log
    out = ctx.outputs_dir / "x.txt"
    assert out.read_text() == "written in a container"
    assert (out.stat().st_uid, out.stat().st_gid) == (os.getuid(), os.getgid())
    records = [json.loads(l) for l in (ctx.logs_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["v"] for r in records if r.get("n") == "loss"] == [1.0, 0.5, pytest.approx(1 / 3)]
    tags = {r["n"]: r["v"] for r in records if r["k"] == "t"}
    assert tags["where"] == "container" and tags["docker.image"] == TF_IMAGE
    assert workspace_containers(docker_api, ctx.workspace_dir) == []  # removed once its exit code was read


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand the run folder to another user")
def test_the_container_runs_as_the_users_uid_and_gid(docker_api, tmp_path):
    ctx = make_ctx(tmp_path, """
        import os
        print("ids", os.getuid(), os.getgid(), "home", os.environ["HOME"], flush=True)
        open("outputs/mine.txt", "w").write("x")
        """)
    for root, dirs, files in os.walk(ctx.run_dir):
        for name in [root] + [os.path.join(root, n) for n in dirs + files]:
            os.lchown(name, 4321, 4322)
    backend = DockerBackend(ctx.target)
    backend.uid, backend.gid = 4321, 4322  # the supervisor runs as the user; here: pretend to be 4321
    backend.prepare(ctx)
    handle = backend.launch(ctx)
    assert wait_rc(handle) == 0, (ctx.logs_dir / "driver.log").read_text()
    assert "ids 4321 4322 home /tmp" in (ctx.logs_dir / "driver.log").read_text()
    st = (ctx.outputs_dir / "mine.txt").stat()
    assert (st.st_uid, st.st_gid) == (4321, 4322)


def test_a_dataset_input_whose_folder_vanished(docker_api, tmp_path):
    gone = tmp_path / "gone"
    ctx = make_ctx(tmp_path, "print('never')",
                   inputs={"mnist": {"path": str(gone), "mode": "mount", "dataset": "mnist dataset", "version": 3}},
                   arguments=[str(gone)], raw_arguments=[{"input": "mnist"}])
    with pytest.raises(PrepareError, match=r"dataset input 'mnist' \(dataset mnist dataset version 3\).*"
                                           + str(gone) + ".*no longer exists"):
        DockerBackend(ctx.target).prepare(ctx)


def test_a_base_image_that_does_not_exist(docker_api, tmp_path):
    ctx = make_ctx(tmp_path, "print('never')", config={"image": "mltrain-no-such-image:0.0"})
    with pytest.raises(PrepareError) as err:
        DockerBackend(ctx.target).prepare(ctx)
    msg = str(err.value)
    assert "'mltrain-no-such-image:0.0' is not on the Docker engine and could not be pulled" in msg
    assert "docker load" in msg


def test_a_killed_supervisor_is_replaced_and_the_log_continues_without_duplicates(docker_api, tmp_path):
    ctx = make_ctx(tmp_path, """
        import time
        from mltrain_desktop.core import Run
        run = Run.get_context()
        for i in range(40):
            print(f"line {i}", flush=True)
            run.log("step", i)
            time.sleep(0.1)
        """)
    # The first "supervisor": another process that launches and follows the job, then is killed.
    driver = tmp_path / "first_supervisor.py"
    driver.write_text(textwrap.dedent(f"""
        import json, sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from docker_helpers import make_ctx
        from mltrain_desktop.engine.backends.docker import DockerBackend
        from pathlib import Path
        ctx = make_ctx(Path({str(tmp_path)!r}), open({str(ctx.snapshot_dir / 'job.py')!r}).read())
        b = DockerBackend(ctx.target); b.prepare(ctx); h = b.launch(ctx)
        print(json.dumps(h.state()), flush=True)
        while h.poll() is None:
            time.sleep(0.1)
    """))
    proc = subprocess.Popen([sys.executable, str(driver)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    state = json.loads(proc.stdout.readline())
    log = ctx.logs_dir / "driver.log"
    deadline = time.monotonic() + 30
    while "line 5" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert "line 39" not in log.read_text()
    handle = DockerBackend(ctx.target).reattach(ctx, state)
    assert handle is not None
    assert wait_rc(handle) == 0
    job_lines = [l for l in log.read_text().splitlines() if l.startswith("line ")]
    assert job_lines == [f"line {i}" for i in range(40)]
    steps = [json.loads(l)["v"] for l in (ctx.logs_dir / "metrics.jsonl").read_text().splitlines()
             if '"n":"step"' in l]
    assert steps == list(range(40))


def test_a_broken_log_stream_is_read_again_at_the_end_each_line_once(docker_api, tmp_path):
    """When the follow stream broke, the handle reads the stopped container's log again at the
    end and writes what came after its cursor; stdout and stderr lines all arrive, once."""
    ctx = make_ctx(tmp_path, """
        import sys
        for i in range(30):
            print(f"line {i}", flush=True)
            print(f"err {i}", file=sys.stderr, flush=True)
        """)
    backend = DockerBackend(ctx.target)
    backend.prepare(ctx)
    handle = backend.launch(ctx)
    docker_api.wait(handle.container_id, timeout=60)
    handle.pump.join(timeout=15)
    log = ctx.logs_dir / "driver.log"
    ours = [l for l in log.read_text().splitlines() if l.startswith("[mltrain]")]
    engine_order = docker_api.logs(handle.container_id).decode().splitlines()
    assert sorted(engine_order) == sorted([f"line {i}" for i in range(30)] + [f"err {i}" for i in range(30)])
    # As if the stream had broken after 25 frames: driver.log and the cursor stop there.
    log.write_text("\n".join(ours + engine_order[:25]) + "\n")
    handle.cursor.written = 25
    handle.pump.complete = False
    assert handle.poll() == 0
    assert [l for l in log.read_text().splitlines() if not l.startswith("[mltrain]")] == engine_order
    assert handle.poll() == 0


def test_stdout_and_stderr_lines_all_reach_the_log(docker_api, tmp_path):
    """The engine's times are not in its log's order across the two streams: none is dropped."""
    ctx = make_ctx(tmp_path, """
        import sys
        for i in range(200):
            print(f"out {i}", flush=True)
            print(f"err {i}", file=sys.stderr, flush=True)
        """)
    backend = DockerBackend(ctx.target)
    backend.prepare(ctx)
    handle = backend.launch(ctx)
    assert wait_rc(handle) == 0
    lines = [l for l in (ctx.logs_dir / "driver.log").read_text().splitlines() if not l.startswith("[mltrain]")]
    assert sorted(lines) == sorted([f"out {i}" for i in range(200)] + [f"err {i}" for i in range(200)])
    assert [l for l in lines if l.startswith("out")] == [f"out {i}" for i in range(200)]


def test_reattach_to_a_container_removed_by_hand(docker_api, tmp_path):
    ctx = make_ctx(tmp_path, "import time; time.sleep(60)")
    backend = DockerBackend(ctx.target)
    backend.prepare(ctx)
    handle = backend.launch(ctx)
    state = handle.state()
    docker_api.remove_container(state["container_id"], force=True)
    assert DockerBackend(ctx.target).reattach(ctx, state) is None
    assert any("is gone" in l for l in ctx.lines)
    # a handle that was watching it sees it vanish
    assert wait_rc(handle) == -1
    assert "disappeared" in handle.failure_detail()


def test_cancel_during_the_environment_build(docker_api, tmp_path, hanging_index):
    ctx = make_ctx(tmp_path, "print('never')", config={"pip_index_url": hanging_index},
                   spec={"environment": {"pip_packages": ["mltrain-test-hangs==1.0"]}})
    images_before = {i for i in docker_api.images(all=True, quiet=True)}
    asked = threading.Event()
    ctx.cancel_requested = asked.is_set
    base_log = ctx.log

    def log(line):
        base_log(line)
        if "Running in" in line and "pip install" in ctx.lines[-2]:
            asked.set()
    ctx.log = log
    t0 = time.monotonic()
    backend = DockerBackend(ctx.target)
    backend.prepare(ctx)
    assert asked.is_set() and time.monotonic() - t0 < 40
    assert backend.image is None
    assert any("build canceled" in l for l in ctx.lines)
    assert {i for i in docker_api.images(all=True, quiet=True)} <= images_before
    assert not [c for c in docker_api.containers(all=True) if c["Image"] and "mltrain-env" in c["Image"]]


def test_clean_orphans_removes_only_containers_of_finished_runs(docker_api, tmp_path):
    ws = (tmp_path / "ws").resolve()
    ids = {}
    for run in ("done_1", "live_1"):
        c = docker_api.create_container(BASE_IMAGE, command=["sleep", "60"], labels={
            "mltrain.workspace": str(ws), "mltrain.run": run, "mltrain.role": "job"})
        docker_api.start(c["Id"])
        ids[run] = c["Id"]
    other = docker_api.create_container(BASE_IMAGE, command=["sleep", "60"], labels={
        "mltrain.workspace": str(ws) + "-other", "mltrain.run": "done_1"})
    try:
        removed = clean_orphans(ws, live_run_ids={"live_1"}, api=docker_api)
        assert len(removed) == 1
        left = {c["Labels"]["mltrain.run"] for c in workspace_containers(docker_api, ws)}
        assert left == {"live_1"}
        assert docker_api.inspect_container(other["Id"])  # another workspace's container is untouched
    finally:
        for cid in (ids["live_1"], other["Id"]):
            docker_api.remove_container(cid, force=True)


def test_probe_reports_the_engine(docker_api):
    r = probe({"image": TF_IMAGE})
    assert r["state"] == "Succeeded"
    e = r["engine"]
    assert e["version"] and e["cpus"] >= 1 and e["memory_bytes"] > 0 and "runc" in e["runtimes"]
    assert isinstance(e["nvidia"], bool) and e["image_present"] is True
    if not e["nvidia"]:
        assert "NVIDIA Container Toolkit" in r["detail"]


def test_probe_of_an_engine_that_is_not_running(tmp_path):
    r = probe({"base_url": f"unix://{tmp_path}/docker.sock"})
    assert r["state"] == "Failed"
    assert "not running" in r["detail"] and "DOCKER_HOST" in r["detail"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to probe as another user")
def test_probe_as_a_user_without_permission(docker_api, tmp_path):
    code = "from mltrain_desktop.core.compute_docker import probe; print(probe({})['detail'])"
    out = subprocess.run([sys.executable, "-c", code], user=65534, group=65534, capture_output=True, text=True,
                         cwd="/", env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": os.environ["PATH"]},
                         timeout=60)
    if "permission denied" not in out.stdout:
        pytest.skip(f"the socket is usable by nobody here: {out.stdout or out.stderr[-300:]}")
    assert "docker group" in out.stdout and "rootless" in out.stdout
