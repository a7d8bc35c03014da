"""Fuzzing every place a user's value reaches a command line or a container spec (issue 14).

The pure builders are driven with arbitrary text (hypothesis): script arguments and
environment variables into ``container_run_kwargs`` / ``task_container_kwargs`` and the
``mpirun`` argument list, pip package strings and framework versions into the environment
image's Dockerfile, hosts lists into ``parse_hosts``. What a builder hands to a shell is run
for real with ``sh`` and a stub ``python3`` that records its argv, so "no shell
interpolation" is checked by what the shell did, not by reading the text. Names that reach the
file system (datasets, experiments, models, endpoints) are fed through the SDK in a workspace
inside a folder whose other contents must not change.

Inputs the product got wrong are pinned by the tests of test_regressions.py; the tests here
feed every text (NUL, newlines, '..', absolute paths included) and check that it is either
refused with a clear error at submit or passed on verbatim, never interpolated.
"""
from __future__ import annotations

import json
import re
import stat
import subprocess
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chaos_helpers import job_context, tree_listing

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])
# Text a process can receive in argv or its environment: anything but NUL.
arg_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
env_name = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,20}\Z")
safe_pkg = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=30)


# -- script arguments and environment variables into containers ------------------------------
@FUZZ
@given(args=st.lists(arg_text.filter(lambda a: not a.startswith("/")), max_size=6),
       env=st.dictionaries(env_name, arg_text.filter(lambda v: not v.startswith("/")), max_size=5))
def test_container_spec_passes_arguments_and_variables_verbatim(tmp_path, args, env):
    from mltrain_desktop.engine.backends.docker import container_run_kwargs
    kw = container_run_kwargs(job_context(tmp_path, args, env), "img:1", uid=1000, gid=1000)
    assert kw["command"] == ["job.py", *args]               # argv items, never one shell string
    assert kw["entrypoint"][:2] == ["/bin/sh", "-c"]
    launcher = kw["entrypoint"][2]
    assert all(a not in launcher for a in args if len(a) > 3)  # the shell's script holds no user text
    assert kw["entrypoint"][3:] == ["mltrain-job"]          # "$0"; the arguments follow as "$@"
    for k, v in env.items():
        if k not in ("PYTHONPATH", "PYTHONUNBUFFERED", "HOME"):
            assert kw["environment"][k] == v


@FUZZ
@given(args=st.lists(arg_text.filter(lambda a: not a.startswith("/")), max_size=5))
def test_the_container_launcher_hands_arguments_to_python_unchanged(tmp_path, args):
    """Runs the entrypoint's shell script for real with a stub python3: it gets the exact argv."""
    from mltrain_desktop.engine.backends.docker import container_run_kwargs
    kw = container_run_kwargs(job_context(tmp_path, args, {}), "img:1", uid=0, gid=0)
    got = _run_with_stub_python(tmp_path, kw["entrypoint"] + kw["command"])
    assert got == [["job.py", *args]]


@FUZZ
@given(args=st.lists(arg_text.filter(lambda a: not a.startswith("/")), max_size=5),
       task=st.sampled_from([(None, 1), ("worker", 0), ("ps", 0), ("chief", 0)]))
def test_rank_containers_pass_arguments_after_the_launcher(tmp_path, args, task):
    from mltrain_desktop.engine.backends.docker_cluster import task_container_kwargs
    kw = task_container_kwargs(job_context(tmp_path, args, {}), "img:1", task[0], task[1], {"worker": []},
                               token="tok", uid=0, gid=0)
    cmd = kw["command"]
    assert cmd[:2] == ["-m", "mltrain_desktop.engine.rank_launcher"]
    assert cmd[cmd.index("--") + 1:] == ["job.py", *args]
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", kw["name"]) and len(kw["hostname"]) <= 63


# -- mpirun -------------------------------------------------------------------------------------
@FUZZ
@given(args=st.lists(arg_text, max_size=5), names=st.lists(st.text(max_size=12), max_size=4))
def test_mpirun_command_is_a_list_with_the_program_last(args, names):
    from mltrain_desktop.adapters import mpirun as mc
    program = ["python", "-m", "launcher", "--", "job.py", *args]
    try:
        argv = mc.build_mpirun_command(program, nodes=[mc.HostSlots("localhost", 2)], forward_env=names)
    except ValueError as exc:
        bad = [n for n in names if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n)]
        assert bad and any(repr(b) in str(exc) for b in bad)
        return
    assert argv[-len(program):] == program
    for n in names:  # forwarded by name (-x NAME): values never reach the command line
        assert argv[argv.index(n) - 1] == "-x"


@FUZZ
@given(value=st.one_of(st.text(max_size=40),
                       st.lists(st.one_of(st.text(max_size=20),
                                          st.fixed_dictionaries({"host": st.text(max_size=15),
                                                                 "slots": st.integers(-2, 5)})), max_size=4)))
@example(value="node1:2,-oProxyCommand=touch_x:1")
@example(value=["node1 slots=2", "--host:1"])
@example(value="a;b:1")
def test_hosts_lists_give_safe_host_names_or_a_clear_error(value):
    from mltrain_desktop.adapters import mpirun as mc
    try:
        hosts = mc.parse_hosts(value)
    except mc.HostsError as exc:
        assert str(exc)  # says what is wrong
        return
    for h in hosts:
        assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", h.host), h
        assert h.slots >= 1
    if hosts:
        argv = mc.build_mpirun_command(["p"], nodes=hosts)
        assert argv[argv.index("--host") + 1] == ",".join(f"{h.host}:{h.slots}" for h in hosts)
        probe = mc.ssh_probe_command(hosts[0].host)
        assert probe[-2:] == [hosts[0].host, "true"] and not probe[-2].startswith("-")


# -- pip packages and framework versions into the environment image ----------------------------
@FUZZ
@given(pkgs=st.lists(safe_pkg, min_size=1, max_size=4))
@example(pkgs=["numpy; touch PWNED", "$(touch PWNED)", "`touch PWNED`", "'\"'"])
def test_pip_packages_reach_pip_as_separate_arguments(tmp_path, pkgs):
    from mltrain_desktop.adapters.docker.images import dockerfile, environment_spec
    from mltrain_desktop.core.errors import UserErrorException
    from mltrain_desktop.core.run_spec import build_spec
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "job.py").write_text("")
    try:
        run_spec = build_spec(source_directory=src, entry_script="job.py", arguments=[], compute_target="d",
                              pip_packages=pkgs)
    except UserErrorException as exc:
        assert "pip package" in str(exc)
        assert any(not p.strip() or p.strip().startswith("-") for p in pkgs)  # options for pip are refused
        return
    spec = environment_spec(run_spec, {}, "base:1")
    text = dockerfile(spec, "0" * 16)
    assert _instructions(text) == ["FROM", "ARG", "RUN", "LABEL"], text
    runs = [line[4:] for line in text.splitlines() if line.startswith("RUN ")]
    got = _run_with_stub_python(tmp_path, ["sh", "-c", runs[-1]])
    assert got == [["-m", "pip", "install", *spec.pip_packages]]
    assert not (tmp_path / "PWNED").exists()


any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@FUZZ
@given(pkgs=st.lists(any_text, min_size=1, max_size=3))
@example(pkgs=["numpy\nRUN touch /pwned"])
@example(pkgs=["numpy\rRUN touch /pwned", "a\u2028b"])
@example(pkgs=["--index-url=http://attacker.invalid/simple"])
@example(pkgs=["-r", "/etc/passwd"])
def test_any_pip_package_text_is_refused_or_stays_one_requirement(tmp_path, pkgs):
    """Control characters, line separators and leading '-' are refused; the rest is one pip argument each."""
    from mltrain_desktop.adapters.docker.images import dockerfile, environment_spec
    from mltrain_desktop.core.errors import UserErrorException
    from mltrain_desktop.core.run_spec import build_spec
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "job.py").write_text("")
    try:
        run_spec = build_spec(source_directory=src, entry_script="job.py", arguments=[], compute_target="d",
                              pip_packages=pkgs)
    except UserErrorException as exc:
        assert re.match(r"pip package .* (must be a non-empty|holds the control character|starts with '-')",
                        str(exc)), str(exc)
        return
    for p in run_spec["environment"]["pip_packages"]:
        assert not p.startswith("-") and len(p.splitlines()) == 1
    text = dockerfile(environment_spec(run_spec, {}, "base:1"), "0" * 16)
    assert _instructions(text) == ["FROM", "ARG", "RUN", "LABEL"], text
    runs = [line[4:] for line in text.splitlines() if line.startswith("RUN ")]
    got = _run_with_stub_python(tmp_path, ["sh", "-c", runs[-1]])
    assert got == [["-m", "pip", "install", *sorted(set(run_spec["environment"]["pip_packages"]))]]


@FUZZ
@given(image=any_text)
@example(image="base:1\nRUN touch /x")
@example(image="base:1 AS x")
@example(image="-v")
def test_a_custom_base_image_is_one_reference_on_the_from_line(tmp_path, image):
    from mltrain_desktop.adapters.docker.images import dockerfile, environment_spec
    from mltrain_desktop.core.errors import UserErrorException
    from mltrain_desktop.core.run_spec import build_spec
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "job.py").write_text("")
    t = image.strip()
    refusable = not t or t.startswith("-") or any(c.isspace() or unicodedata.category(c) in ("Cc", "Zl", "Zp")
                                                  for c in t)
    try:
        run_spec = build_spec(source_directory=src, entry_script="job.py", arguments=[], compute_target="d",
                              pip_packages=["numpy"], docker={"base_image": image})
    except UserErrorException as exc:
        assert refusable and "custom Docker image" in str(exc)
        return
    assert not refusable
    base = run_spec["environment"]["docker"]["base_image"]
    assert base == t
    text = dockerfile(environment_spec(run_spec, {}, "default:1"), "0" * 16)
    assert _instructions(text) == ["FROM", "ARG", "RUN", "LABEL"], text
    assert f"FROM {base}" in text.splitlines()


# -- script arguments and environment variables through the run spec ----------------------------
@FUZZ
@given(args=st.lists(any_text, max_size=5),
       env=st.dictionaries(any_text, any_text, max_size=4))
@example(args=["a\x00b"], env={})
@example(args=[], env={"A-B": "1"})
@example(args=[], env={"A": "x\x00y"})
def test_the_run_spec_refuses_what_no_process_can_receive_and_keeps_the_rest(tmp_path, args, env):
    """NUL anywhere, or an environment name that is not an identifier: a clear error at submit;
    anything else reaches the container's argv and environment verbatim, and mpirun by name."""
    from mltrain_desktop.adapters import mpirun as mc
    from mltrain_desktop.core.errors import UserErrorException
    from mltrain_desktop.core.run_spec import build_spec
    from mltrain_desktop.engine.backends.docker import container_run_kwargs
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "job.py").write_text("")
    bad_arg = any("\x00" in a for a in args)
    bad_env = any(not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k) or "\x00" in v for k, v in env.items())
    try:
        spec = build_spec(source_directory=src, entry_script="job.py", arguments=list(args), compute_target="d",
                          environment_variables=env)
    except UserErrorException as exc:
        assert bad_arg or bad_env
        assert ("script argument" in str(exc)) if bad_arg else ("environment variable" in str(exc))
        return
    assert not bad_arg and not bad_env
    assert spec["arguments"] == args and spec["environment_variables"] == env
    kw = container_run_kwargs(job_context(tmp_path, spec["arguments"], spec["environment_variables"]), "img:1",
                              uid=1000, gid=1000)
    assert kw["command"] == ["job.py", *args]
    argv = mc.build_mpirun_command(["python", "job.py", *args], nodes=[mc.HostSlots("localhost", 1)],
                                   forward_env=list(env))
    assert argv[-len(args) - 2:] == ["python", "job.py", *args]
    launcher = argv[:-len(args) - 2]
    forwarded = {launcher[i + 1] for i, a in enumerate(launcher[:-1]) if a == "-x"}
    assert set(env) <= forwarded  # by name (-x NAME): values never reach the command line
    assert not any(a.startswith(f"{k}=") for k in env for a in launcher)


# -- dataset input names: they name a folder of the run ---------------------------------------------
@settings(max_examples=60, deadline=None)
@given(name=any_text)
@example(name="../../../../escaped")
@example(name="..")
@example(name="a/b")
@example(name="/abs")
@example(name="a\x00b")
def test_dataset_input_names_name_one_folder_inside_the_run(name):
    from mltrain_desktop.core.dataset import DatasetConsumptionConfig, FileDataset, input_name_for
    from mltrain_desktop.core.errors import DatasetError
    ds = FileDataset(name="d", version=1, version_id=1)
    run_inputs = Path("/ws/runs/r1/inputs")
    for candidate in (name, input_name_for(name)):
        try:
            inp = DatasetConsumptionConfig(candidate, ds, "download")
        except DatasetError as exc:
            assert candidate == name and "input name" in str(exc)
            continue
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", inp.name)
        assert (run_inputs / inp.name).parent == run_inputs and (run_inputs / inp.name).name == inp.name


@FUZZ
@given(version=st.from_regex(r"\A[0-9]{1,2}(\.[0-9]{1,2}){0,2}\Z"))
def test_a_framework_version_is_checked_and_pinned_without_interpolation(tmp_path, version):
    from mltrain_desktop.adapters.docker.images import EnvironmentSpec, dockerfile
    spec = EnvironmentSpec("base:1", (), "TensorFlow", version)
    text = dockerfile(spec, "0" * 16)
    assert _instructions(text) == ["FROM", "ARG", "RUN", "LABEL"], text
    check = next(line[4:] for line in text.splitlines() if line.startswith("RUN "))
    got = _run_with_stub_python(tmp_path, ["sh", "-c", check])
    assert got[-1] == ["-m", "pip", "install", spec.framework_requirement]


# -- names that reach the file system ------------------------------------------------------------
names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=30)
_nasty = ["..", ".", "../../outside", "/abs/path", "a/../../b", "a\x00b", "a\nb", " lead", "C:\\x", "~"]


@pytest.fixture(scope="module")
def fs_ws(tmp_path_factory):
    from mltrain_desktop.core import Workspace
    root = tmp_path_factory.mktemp("fuzz-fs")
    ws = Workspace.create(root / "ws")
    (root / "data.txt").write_text("x")
    (root / "model").mkdir()
    (root / "model" / "weights").write_text("1")
    yield root, ws
    ws.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names)
@example(name=_nasty[0])
@example(name=" sp ")
@example(name="a\x00b")
def test_dataset_names_stay_in_the_database(fs_ws, name):
    from mltrain_desktop.core import Dataset
    from mltrain_desktop.core.errors import DatasetError
    root, ws = fs_ws
    before = tree_listing(root, skip=ws.path)
    datasets_before = tree_listing(ws.path / "datasets")
    try:
        ds = Dataset.File.from_files(path=[str(root / "data.txt")]).register(ws, name, create_new_version=True)
    except DatasetError as exc:
        assert str(exc)
        return
    assert tree_listing(root, skip=ws.path) == before
    # a version's folder is named by its number, never by the dataset's name
    assert all(Path(p).parts[0].lstrip(".").split("-")[0].isdigit()
               for p in tree_listing(ws.path / "datasets") - datasets_before)
    assert Dataset.get_by_name(ws, name).version == ds.version  # by the name as given (B14)
    assert Dataset.get_by_name(ws, ds.name).version == ds.version


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names)
def test_experiment_names_are_checked(fs_ws, name):
    from mltrain_desktop.core import Experiment
    from mltrain_desktop.core.errors import UserErrorException
    root, ws = fs_ws
    before = tree_listing(root)
    try:
        Experiment(ws, name)
    except UserErrorException as exc:
        assert "experiment name" in str(exc)
        return
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name)
    assert {p for p in tree_listing(root) - before if not p.startswith("ws/workspace.db")} == set()


@settings(max_examples=60, deadline=None)
@given(name=names)
def test_endpoint_names_are_valid_container_and_folder_names(name):
    from mltrain_desktop.core.webservice import endpoint_name_problem
    problem = endpoint_name_problem(name)
    if problem is None:
        assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name) and len(name) <= 32
    else:
        assert problem.endswith(".") and len(problem) > 20


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names)
@example(name=".")
@example(name="..")
@example(name="a\x00b")
@example(name="a\nb")
@example(name="..\\..\\x")
@example(name="1")
def test_model_names_stay_in_their_own_folder(fs_ws, name):
    from mltrain_desktop.core import Model
    from mltrain_desktop.core.errors import MLTrainError
    root, ws = fs_ws
    outside = tree_listing(root, skip=ws.path / "models")
    others = {p for p in tree_listing(ws.path / "models")}
    try:
        m = Model.register(ws, str(root / "model"), name)
    except MLTrainError as exc:
        assert "model_name must be a name such as" in str(exc)
        assert others <= tree_listing(ws.path / "models")
        return
    assert name not in (".", "..") and not any(c in name for c in "/\\:\x00\n\r")
    assert {p for p in tree_listing(root, skip=ws.path / "models") - outside
            if not p.startswith("ws/workspace.db")} == set()
    assert others <= tree_listing(ws.path / "models")          # nothing of another model went
    assert (ws.path / "models") in m.local_path.parents and (m.local_path / "weights").is_file()


# -- helpers ---------------------------------------------------------------------------------------
def _instructions(text: str) -> list[str]:
    """The instruction of each Dockerfile line (comments left out): a value that adds a line shows here."""
    return [line.split(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")]


def _run_with_stub_python(tmp_path: Path, argv: list[str]) -> list[list[str]]:
    """Runs ``argv`` with PATH's first python3 a stub that appends its argv (JSON) to a file."""
    stub_dir = tmp_path / "stub-bin"
    stub_dir.mkdir(exist_ok=True)
    record = tmp_path / "argv.jsonl"
    record.unlink(missing_ok=True)
    stub = stub_dir / "python3"
    stub.write_text(f"#!{_python()}\nimport json, sys\n"
                    f"open({str(record)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    env = {"PATH": f"{stub_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, timeout=30)
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines()]


def _python() -> str:
    import sys
    return sys.executable

