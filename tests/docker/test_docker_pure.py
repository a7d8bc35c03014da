"""The Docker backend's pure parts: no engine needed."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import docker
import pytest

from mltrain_desktop.adapters.docker.engine import (explain_engine_error, normalize_gpus, nvidia_support, validate)
from mltrain_desktop.core.compute_docker import DockerCompute
from mltrain_desktop.engine.backends.base import JobContext
from mltrain_desktop.engine.backends.docker import (LogCursor, container_name, container_run_kwargs,
                                                    gpu_device_requests, gpu_pinning, parse_log_timestamp,
                                                    to_container_path, path_map)
from mltrain_desktop.adapters.docker.images import (EnvironmentSpec, _BuildLog, build_context,
                                                  build_failure_message, dockerfile, environment_hash,
                                                  environment_spec, environment_tag)


# -- GPUs ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, count, ids", [
    ("all", -1, None), (None, -1, None), (True, -1, None), ("ALL", -1, None),
    (2, 2, None), ("3", 3, None),
    ([0, 1], None, ["0", "1"]), ("0,1", None, ["0", "1"]), ("0", None, ["0"]),
    (["GPU-9f3c1d2e"], None, ["GPU-9f3c1d2e"]),
    ("count=2", 2, None), ("count=all", -1, None), ("device=1", None, ["1"]), ('"device=0,2"', None, ["0", "2"]),
    ("1,", None, ["1"]),
])
def test_gpu_device_requests_match_docker_run_gpus(spec, count, ids):
    reqs = gpu_device_requests(spec)
    assert len(reqs) == 1
    r = reqs[0]
    assert isinstance(r, docker.types.DeviceRequest)
    assert r["Driver"] == "nvidia"
    assert r["Capabilities"] == [["gpu"]]
    if count is not None:
        assert r["Count"] == count and not r["DeviceIDs"]
    else:
        assert r["DeviceIDs"] == ids and not r["Count"]


def test_gpu_pinning_is_written_like_cuda_visible_devices():
    assert gpu_pinning("all") == "all"
    assert gpu_pinning(2) == "count=2"
    assert gpu_pinning([0, 2]) == "0,2"
    assert gpu_pinning("1,3") == "1,3"


@pytest.mark.parametrize("bad", [0, -1, False, [], [""], 1.5, {"a": 1}, "", ",", "count=x", "device="])
def test_bad_gpu_specs_are_refused(bad):
    with pytest.raises(ValueError, match="gpus"):
        normalize_gpus(bad)


def test_nvidia_support_from_engine_info():
    assert nvidia_support({"Runtimes": {"runc": {}, "nvidia": {}}}, local=False)[0] is True
    ok, how = nvidia_support({"Runtimes": {"runc": {}}}, local=False)
    assert ok is False and "no NVIDIA" in how


# -- target configuration -------------------------------------------------------------------------

def test_provisioning_configuration_and_validation(tmp_path):
    pem = tmp_path / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    cfg = DockerCompute.provisioning_configuration(image="mltrain-tf:2.21", shm_size="1g", cpus=1.5,
                                                   memory_gb=4, gpus="0,1", ca_certificates=str(pem),
                                                   pip_index_url="https://pypi.example/simple")
    assert cfg.kind == "docker"
    d = validate(cfg.to_dict())
    assert d["gpus"] == ["0", "1"] and d["ca_certificates"] == str(pem.resolve())
    assert d["image"] == "mltrain-tf:2.21" and d["shm_size"] == "1g" and d["max_concurrent_runs"] == 1
    assert "base_url" not in d and "network" not in d and "tls" not in d
    json.dumps(d)


@pytest.mark.parametrize("config, match", [
    ({"base_url": "http:/x"}, "base_url"),
    ({"base_url": "docker.example:2375"}, "base_url"),
    ({"shm_size": "lots"}, "shm_size"),
    ({"cpus": 0}, "cpus"),
    ({"memory_gb": -2}, "memory_gb"),
    ({"gpus": 0}, "gpus"),
    ({"ca_certificates": "/no/such/bundle.pem"}, "does not exist"),
    ({"pip_index_url": "pypi.org/simple"}, "pip_index_url"),
    ({"image": "has space"}, "image"),
    ({"tls": {"ca_cert": "/no/such/ca.pem"}}, "tls ca_cert"),
    ({"max_concurrent_runs": 0}, "max_concurrent_runs"),
])
def test_bad_target_configurations_say_what_is_wrong(config, match):
    with pytest.raises(ValueError, match=match):
        validate(config)


def test_ca_certificates_must_hold_a_certificate(tmp_path):
    f = tmp_path / "notpem.txt"
    f.write_text("hello")
    with pytest.raises(ValueError, match="no PEM certificate"):
        validate({"ca_certificates": str(f)})


def test_engine_errors_say_what_to_do():
    sock = "unix:///var/run/docker.sock"
    exc = docker.errors.DockerException(
        "Error while fetching server API version: ('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))")
    msg = explain_engine_error(exc, sock)
    assert "not running" in msg and "systemctl start docker" in msg and "DOCKER_HOST" in msg
    exc = docker.errors.DockerException(
        "Error while fetching server API version: ('Connection aborted.', PermissionError(13, 'Permission denied'))")
    msg = explain_engine_error(exc, sock)
    assert "permission denied" in msg and "docker group" in msg and "rootless" in msg
    msg = explain_engine_error(ConnectionRefusedError(111, "Connection refused"), "tcp://10.0.0.5:2376")
    assert "tcp://10.0.0.5:2376" in msg and "dockerd" in msg
    msg = explain_engine_error(Exception("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), "tcp://h:2376")
    assert "TLS" in msg and "ca_cert" in msg
    msg = explain_engine_error(docker.errors.DockerException("Install paramiko package to enable ssh:// support"),
                               "ssh://me@gpu-box")
    assert "pip install paramiko" in msg and "ssh://me@gpu-box" in msg


# -- container arguments -----------------------------------------------------------------------------

def _ctx(tmp_path, use_gpu=False, docker_spec=None, config=None, env=None) -> JobContext:
    ws = tmp_path / "ws"
    rd = ws / "runs" / "exp_1_ab"
    for d in ("snapshot", "outputs", "logs"):
        (rd / d).mkdir(parents=True, exist_ok=True)
    kit = ws / "jobkit" / "abc"
    kit.mkdir(parents=True)
    data = ws / "datasets" / "7"
    data.mkdir(parents=True)
    environment = {"MLTRAIN_RUN_ID": "exp_1_ab", "MLTRAIN_METRICS_FILE": str(rd / "logs" / "metrics.jsonl"),
                   "MLTRAIN_OUTPUTS_DIR": str(rd / "outputs"), "MLTRAIN_INPUT_mnist": str(data),
                   "USER_VAR": "plain", **(env or {})}
    return JobContext(
        run_id="exp_1_ab", workspace_dir=ws, run_dir=rd, snapshot_dir=rd / "snapshot", outputs_dir=rd / "outputs",
        logs_dir=rd / "logs", jobkit_dir=kit, entry_script="train.py",
        arguments=["--data-folder", str(data), "--epochs", "1", f"--out={rd}/outputs/m"],
        environment_variables=environment,
        target={"name": "docker1", "kind": "docker", "config": config or {}},
        spec={"use_gpu": use_gpu, "environment": {"docker": docker_spec or {}}},
        inputs={"mnist": {"path": str(data), "mode": "mount"}},
        raw_arguments=["--data-folder", {"input": "mnist", "version_id": 1}, "--epochs", "1", f"--out={rd}/outputs/m"])


def test_container_run_kwargs(tmp_path):
    ctx = _ctx(tmp_path, config={"shm_size": "1g", "cpus": 1.5, "memory_gb": 2})
    kw = container_run_kwargs(ctx, "mltrain-env:abc", uid=1000, gid=1001)
    assert kw["image"] == "mltrain-env:abc"
    assert kw["user"] == "1000:1001"
    assert kw["init"] is True and kw["privileged"] is False
    assert "network_mode" not in kw  # the default bridge; host network only when asked
    assert "device_requests" not in kw
    assert kw["labels"] == {"mltrain.workspace": str((tmp_path / "ws").resolve()), "mltrain.run": "exp_1_ab",
                            "mltrain.target": "docker1", "mltrain.role": "job",
                            "mltrain.owner.kind": "run", "mltrain.owner.id": "exp_1_ab"}
    assert kw["name"] == "mltrain-exp_1_ab"
    assert kw["working_dir"] == "/mltrain/run/snapshot"
    assert kw["command"] == ["train.py", "--data-folder", "/mltrain/inputs/mnist", "--epochs", "1",
                             "--out=/mltrain/run/outputs/m"]
    assert kw["entrypoint"][:2] == ["/bin/sh", "-c"]
    mounts = {m["Target"]: (m["Source"], m["ReadOnly"], m["Type"]) for m in kw["mounts"]}
    assert mounts == {
        "/mltrain/run": (str(ctx.run_dir), False, "bind"),
        "/mltrain/jobkit": (str(ctx.jobkit_dir), True, "bind"),
        "/mltrain/inputs/mnist": (ctx.inputs["mnist"]["path"], True, "bind"),
    }
    env = kw["environment"]
    assert env["MLTRAIN_METRICS_FILE"] == "/mltrain/run/logs/metrics.jsonl"
    assert env["MLTRAIN_OUTPUTS_DIR"] == "/mltrain/run/outputs"
    assert env["MLTRAIN_INPUT_mnist"] == "/mltrain/inputs/mnist"
    assert env["MLTRAIN_RUN_ID"] == "exp_1_ab" and env["USER_VAR"] == "plain"
    assert env["PYTHONPATH"] == "/mltrain/jobkit" and env["PYTHONUNBUFFERED"] == "1" and env["HOME"] == "/tmp"
    assert kw["shm_size"] == "1g" and kw["nano_cpus"] == 1_500_000_000 and kw["mem_limit"] == "2048m"
    assert kw["security_opt"] == ["no-new-privileges"]
    # what the SDK makes of it: a valid create request
    from docker.models.containers import _create_container_args
    args = _create_container_args({**kw, "version": "1.41"})
    hc = args["host_config"]
    assert hc["Init"] is True and not hc.get("Privileged") and hc["ShmSize"] == 1 << 30
    assert hc.get("NetworkMode", "default") == "default"


def test_run_settings_override_target_and_gpus_only_with_use_gpu(tmp_path):
    ctx = _ctx(tmp_path, use_gpu=True, docker_spec={"shm_size": "4g", "cpus": 2},
               config={"shm_size": "1g", "cpus": 1, "gpus": [1, 3], "network": "host"},
               env={"PYTHONPATH": "/opt/lib"})
    kw = container_run_kwargs(ctx, "img", uid=0, gid=0)
    assert kw["shm_size"] == "4g" and kw["nano_cpus"] == 2_000_000_000 and "mem_limit" not in kw
    assert kw["network_mode"] == "host"
    (req,) = kw["device_requests"]
    assert req["DeviceIDs"] == ["1", "3"] and req["Capabilities"] == [["gpu"]]
    assert kw["environment"]["MLTRAIN_GPUS"] == "1,3"
    assert kw["environment"]["PYTHONPATH"] == "/mltrain/jobkit:/opt/lib"
    ctx2 = _ctx(tmp_path / "b", use_gpu=True)
    kw2 = container_run_kwargs(ctx2, "img", uid=0, gid=0)
    assert kw2["device_requests"][0]["Count"] == -1 and kw2["environment"]["MLTRAIN_GPUS"] == "all"
    assert kw2["shm_size"] == "2g"


def test_path_translation(tmp_path):
    ctx = _ctx(tmp_path)
    m = path_map(ctx)
    assert to_container_path(str(ctx.run_dir / "outputs" / "a.txt"), m) == "/mltrain/run/outputs/a.txt"
    assert to_container_path(str(ctx.run_dir) + "-other", m) == str(ctx.run_dir) + "-other"
    assert to_container_path("--x=" + str(ctx.jobkit_dir), m) == "--x=/mltrain/jobkit"
    assert to_container_path("relative/path", m) == "relative/path"


def test_container_names_are_valid():
    assert container_name("my exp/é_17_ab") == "mltrain-my-exp--_17_ab"


# -- logs ------------------------------------------------------------------------------------------

def test_parse_log_timestamp():
    ts, msg = parse_log_timestamp(b"2024-05-01T12:00:00.123456789Z hello world\n")
    assert msg == b"hello world\n" and ts == 1714564800_123456789
    ts, msg = parse_log_timestamp(b"2024-05-01T12:00:00Z x\n")
    assert ts == 1714564800_000000000
    ts, _ = parse_log_timestamp(b"2024-05-01T12:00:00.5Z x\n")
    assert ts == 1714564800_500000000
    assert parse_log_timestamp(b"no timestamp\n") == (None, b"no timestamp\n")


def test_log_cursor_resumes_without_duplicates(tmp_path):
    path = tmp_path / "cursor"
    c = LogCursor(path)
    c.new_stream()
    # Times are not in the log's order (stdout and stderr have their own copiers): every frame
    # of a stream is written, whatever its time.
    stream = [10, 20, 20, 15, 30]
    assert [ts for ts in stream if c.accept(ts * 1000)] == stream
    c.save()
    again = LogCursor(path)
    assert again.written == 5
    again.new_stream()  # a resumed stream starts at the log's first frame: the 5 written are skipped
    assert [ts for ts in stream + [12, 40] if again.accept(ts * 1000)] == [12, 40]
    again.save()
    assert LogCursor(path).written == 7
    assert path.read_text() == "n 00000000000000000007\n"


def test_log_cursor_saved_by_the_first_version_resumes_after_its_time(tmp_path):
    path = tmp_path / "cursor"
    path.write_text("00000000000000030000 000000001\n")  # 0.1.0: the last time written and a count
    c = LogCursor(path)
    c.new_stream()
    assert [ts for ts in [10, 20, 30, 40, 35] if c.accept(ts * 1000)] == [40, 35]
    assert c.written == 5
    c.save()
    assert LogCursor(path).written == 5


def test_log_cursor_ignores_a_damaged_file(tmp_path):
    for text in ("", "garbage", "n", "n x"):
        path = tmp_path / "cursor"
        path.write_text(text)
        c = LogCursor(path)
        c.new_stream()
        assert c.written == 0 and c.accept(1) and c.written == 1


# -- environment images ---------------------------------------------------------------------------

def test_environment_spec_from_a_run():
    spec = {"framework": "TensorFlow", "use_gpu": False,
            "environment": {"pip_packages": ["pandas", "six==1.17.0", "pandas"], "framework_version": "2.21",
                            "docker": {}}}
    env = environment_spec(spec, {"image": "target-image:1"}, "default:1")
    assert env.base_image == "target-image:1"
    assert env.pip_packages == ("pandas", "six==1.17.0")
    assert env.framework_requirement == "tensorflow-cpu==2.21.*"
    spec["environment"]["docker"] = {"base_image": "run-image:2"}
    assert environment_spec(spec, {"image": "target-image:1"}, "default:1").base_image == "run-image:2"
    bare = environment_spec({"environment": {}}, {}, "default:1")
    assert bare.base_image == "default:1" and not bare.needs_build


def test_environment_hash_and_tag():
    a = EnvironmentSpec("mltrain-tf:2.21", ("six",))
    assert environment_hash(a, "sha256:1") == environment_hash(EnvironmentSpec("mltrain-tf:2.21", ("six",)), "sha256:1")
    assert environment_hash(a, "sha256:1") != environment_hash(a, "sha256:2")  # a rebuilt base
    assert environment_hash(a) != environment_hash(EnvironmentSpec("mltrain-tf:2.21", ("six", "tqdm")))
    assert environment_hash(a) != environment_hash(EnvironmentSpec("other:1", ("six",)))
    tag = environment_tag(a, "sha256:1")
    assert tag.startswith("mltrain-env:") and len(tag.split(":")[1]) == 16


def test_dockerfile_generation():
    env = EnvironmentSpec("mltrain-tf:2.21", ("six==1.17.0", "weird name; rm -rf /"), "TensorFlow", "2.21")
    text = dockerfile(env, "f" * 64, ca_certificates=True, pip_index_url="https://mirror.example/simple")
    lines = text.splitlines()
    assert lines[1] == "FROM mltrain-tf:2.21"
    assert "COPY mltrain-build-ca.pem /etc/mltrain/build-ca.pem" in lines
    arg = next(l for l in lines if l.startswith("ARG "))
    assert "PIP_CERT=/etc/mltrain/build-ca.pem" in arg and "PIP_INDEX_URL=https://mirror.example/simple" in arg
    assert not any(l.startswith("ENV ") for l in lines)  # build settings do not stay in the image
    pip = [l for l in lines if l.startswith("RUN ") and "pip install six" in l]
    assert pip and "'weird name; rm -rf /'" in pip[0]
    assert any("TensorFlow 2.21 is not in the base image" in l and "tensorflow-cpu==2.21.*" in l for l in lines)
    assert lines[-1].startswith("LABEL mltrain.environment=\"ffffffffffffffff\"")
    assert dockerfile(env, "f" * 64, ca_certificates=True, pip_index_url="https://mirror.example/simple") == text
    plain = dockerfile(EnvironmentSpec("b:1", ("six",)), "0" * 64)
    assert "COPY" not in plain and "PIP_CERT" not in plain and "tensorflow" not in plain.split("LABEL")[0]


def test_build_context_tar():
    data = build_context("FROM x\n", b"-----BEGIN CERTIFICATE-----\n")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert sorted(tar.getnames()) == ["Dockerfile", "mltrain-build-ca.pem"]
        assert tar.extractfile("Dockerfile").read() == b"FROM x\n"
    assert build_context("FROM x\n") == build_context("FROM x\n")


def test_build_log_parsing_and_failure_message():
    blog = _BuildLog()
    chunks = [
        {"stream": "Step 1/3 : FROM mltrain-tf:2.21\n"}, {"stream": " ---> 350b971a62f1\n"},
        {"stream": "Step 2/3 : RUN \"$(command -v python3 || echo python)\" -m pip install nope==1\n"},
        {"stream": " ---> Running in 1234567890ab\n"},
        {"stream": "\x1b[91mERROR: Could not find a version that satisfies the requirement nope==1\n\x1b[0m"},
        {"stream": "\x1b[91mERROR: No matching distribution found for nope==1\n"},
        {"error": "The command '/bin/sh -c pip install nope==1' returned a non-zero code: 1",
         "errorDetail": {"code": 1, "message": "The command '/bin/sh -c pip install nope==1' returned a non-zero code: 1"}},
    ]
    for c in chunks:
        blog.feed(c)
    assert blog.image_ids == ["350b971a62f1"] and blog.container_ids == ["1234567890ab"]
    msg = build_failure_message("mltrain-env:abc", blog)
    assert msg.splitlines()[0].startswith("building the environment image mltrain-env:abc failed at step 2/3")
    assert "exit code 1" in msg.splitlines()[0]
    assert "ERROR: No matching distribution found for nope==1" in msg
    assert "\x1b" not in msg


def test_tls_settings_for_a_tcp_engine(tmp_path):
    from mltrain_desktop.adapters.docker.engine import _tls_config
    files = {}
    for key in ("ca_cert", "client_cert", "client_key"):
        files[key] = tmp_path / f"{key}.pem"
        files[key].write_text("x")
    cfg = validate({"base_url": "tcp://gpu-box:2376", "tls": {k: str(v) for k, v in files.items()}})
    tls = _tls_config(cfg["tls"])
    assert isinstance(tls, docker.tls.TLSConfig)
    assert tls.ca_cert == str(files["ca_cert"]) and tls.verify is True
    assert tls.cert == (str(files["client_cert"]), str(files["client_key"]))


def test_cancel_is_seen_from_the_context_or_the_runs_row(tmp_path):
    import sqlite3
    from mltrain_desktop.engine.backends.docker import _cancel_checker
    ws = tmp_path / "a workspace?#"
    ws.mkdir()
    ctx = _ctx(tmp_path)
    ctx.workspace_dir = ws
    assert _cancel_checker(ctx)() is False  # no database: not canceled
    conn = sqlite3.connect(ws / "workspace.db")
    conn.execute("CREATE TABLE runs (id TEXT, cancel_requested INTEGER)")
    conn.execute("INSERT INTO runs VALUES (?, 1)", [ctx.run_id])
    conn.commit()
    conn.close()
    assert _cancel_checker(ctx)() is True
    ctx.workspace_dir = tmp_path / "elsewhere"
    ctx.cancel_requested = lambda: True
    assert _cancel_checker(ctx)() is True


def test_engine_silence_is_logged_once_each_way_and_times_out(monkeypatch):
    from mltrain_desktop.engine.backends import docker as dk
    clock = [1000.0]
    monkeypatch.setattr(dk.time, "monotonic", lambda: clock[0])
    lines: list[str] = []
    s = dk.EngineSilence(lines.append)
    s.answered()
    assert lines == [] and not s.too_long() and not s.was_silent
    s.failed(ConnectionError("refused"))
    assert s.was_silent  # stays so once the engine went quiet: an exit after it is blamed on the engine
    clock[0] += 30
    s.failed(ConnectionError("refused again"))  # still the same silence: not logged twice
    assert lines == ["[mltrain] the Docker engine does not answer (ConnectionError: refused); waiting"]
    assert not s.too_long()
    s.answered()
    assert lines[-1] == "[mltrain] the Docker engine answers again" and len(lines) == 2
    s.failed(OSError("gone"))  # a new silence starts its own clock
    clock[0] += dk.ENGINE_PATIENCE_S - 1
    assert not s.too_long()
    clock[0] += 1
    assert s.too_long() and len(lines) == 3
    assert "stopped answering for 60 s while the run's container c ran" in s.lost_detail("unix://x", "the run's container c")
