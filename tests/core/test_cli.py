"""The mltrain command line: every command has help; the seed's flow through subprocesses."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import click
from click.testing import CliRunner

from mltrain_desktop.cli import cli
from mltrain_desktop.core.samples import SUBSET_DIR


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))


def test_every_command_has_help():
    for path, cmd in _commands(cli):
        assert cmd.help or cmd.short_help, f"mltrain {' '.join(path)} has no help text"
        res = CliRunner().invoke(cli, [*path, "--help"])
        assert res.exit_code == 0, res.output


def mltrain(*args, ok=True):
    out = subprocess.run([sys.executable, "-m", "mltrain_desktop.cli", *args], capture_output=True, text=True,
                         timeout=300)
    if ok:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_flow_through_the_cli(tmp_path):
    w = str(tmp_path / "ws")
    mltrain("workspace", "create", w)
    reg = json.loads(mltrain("-w", w, "--json", "dataset", "register", "mnist", str(SUBSET_DIR / "*.gz")).stdout)
    assert reg["version"] == 1 and len(reg["files"]) == 4
    src = tmp_path / "src"
    src.mkdir()
    (src / "job.py").write_text(textwrap.dedent("""
        import sys, os
        from mltrain_desktop.core import Run
        r = Run.get_context()
        print("args", sys.argv[1:], "files", sorted(os.listdir(sys.argv[2])), flush=True)
        r.log("acc", 0.5); r.log("acc", 0.75)
        os.makedirs("outputs/model", exist_ok=True); open("outputs/model/w.txt", "w").write("w")
    """))
    res = mltrain("-w", w, "run", "submit", "-e", "cli", "-s", str(src), "-c", "job.py", "--wait", "--",
                  "--data", "dataset:mnist")
    assert "Status: Completed" in res.stdout and "args ['--data'," in res.stdout
    runs = json.loads(mltrain("-w", w, "--json", "run", "list").stdout)
    assert len(runs) == 1 and runs[0]["status"] == "Completed"
    rid = runs[0]["id"]
    assert json.loads(mltrain("-w", w, "--json", "run", "metrics", rid).stdout) == {"acc": [0.5, 0.75]}
    assert "Completed" in mltrain("-w", w, "run", "show", rid).stdout
    assert "outputs/model/w.txt" in mltrain("-w", w, "run", "files", rid).stdout
    assert "files" in mltrain("-w", w, "run", "logs", rid, "--follow").stdout
    m = json.loads(mltrain("-w", w, "--json", "model", "register", rid, "cli-model", "--cpu", "1",
                           "--memory-gb", "0.5", "--tag", "a=b").stdout)
    assert m["id"] == "cli-model:1" and m["resource_configuration"] == {"cpu": 1.0, "memory_in_gb": 0.5}
    assert "cli-model" in mltrain("-w", w, "model", "list").stdout
    shown = json.loads(mltrain("-w", w, "--json", "workspace", "show").stdout)
    assert (shown["runs"], shown["experiments"], shown["datasets"], shown["models"]) == ({"Completed": 1}, 1, 1, 1)
    assert json.loads(mltrain("-w", w, "--json", "run", "list", "--status", "Failed").stdout) == []
    listed = json.loads(mltrain("-w", w, "--json", "run", "list", "-e", "cli", "--limit", "1").stdout)
    assert [r["id"] for r in listed] == [rid] and set(listed[0]) == {
        "id", "experiment", "number", "status", "compute", "created", "started", "ended"}
    mltrain("-w", w, "model", "download", "cli-model", str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "model" / "w.txt").is_file()


def test_cli_errors_are_clear(tmp_path):
    w = str(tmp_path / "ws")
    mltrain("workspace", "create", w)
    bad = mltrain("-w", w, "dataset", "show", "nope", ok=False)
    assert bad.returncode == 1 and "no dataset named 'nope'" in bad.stderr and "Traceback" not in bad.stderr
    bad = mltrain("-w", str(tmp_path), "run", "list", ok=False)
    assert "is not an MLTrain workspace" in bad.stderr
    bad = mltrain("-w", w, "run", "submit", "-e", "x", "-s", str(tmp_path / "none"), "-c", "a.py", ok=False)
    assert "does not exist" in bad.stderr
    assert mltrain("--version").stdout.startswith("mltrain ")
