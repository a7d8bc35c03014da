"""Submit -> first line of the script on the local test Slurm cluster: the SDK vs. `sbatch --wrap` by hand.

    python benchmarks/bench_slurm.py [--rounds 3]

Needs the test cluster (scripts/slurm_cluster.sh start; this script starts it when it is not
running and stops it afterwards only then). Prints the median and each round, in seconds.
The 2-node vs 1-node epoch time of the issue is not measured here (see docs/slurm.md).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SCRIPT = REPO / "scripts" / "slurm_cluster.sh"
FIRST = "first line"


def state() -> dict:
    text = Path("/var/tmp/mltrain-slurm/state.env").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def wait_line(path: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if FIRST in path.read_text(errors="replace"):
                return
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"no '{FIRST}' in {path} after {timeout} s")


def by_hand(st: dict, folder: Path) -> float:
    out = folder / f"hand-{time.monotonic_ns()}.out"
    t0 = time.monotonic()
    subprocess.run(["ssh", "-F", st["SSH_CONFIG"], st["LOGIN_HOST"], "--", "sbatch", "--parsable",
                    f"--output={out}", "--wrap", f"'echo {FIRST}'"], check=True, capture_output=True)
    wait_line(out)
    return time.monotonic() - t0


def through_sdk(ws, target, src: Path) -> float:
    from mltrain_desktop import Experiment
    from mltrain_desktop.core.script_run_config import ScriptRunConfig
    t0 = time.monotonic()
    run = Experiment(ws, "bench").submit(ScriptRunConfig(source_directory=str(src), script="job.py",
                                                         compute_target=target))
    wait_line(run.run_dir / "logs" / "driver.log")
    elapsed = time.monotonic() - t0
    run.wait_for_completion(raise_on_error=True, timeout=120)
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    rounds = ap.parse_args().rounds
    started = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True).returncode != 0
    if started:
        subprocess.run(["bash", str(SCRIPT), "start"], check=True)
    try:
        from mltrain_desktop import ComputeTarget, Workspace
        from mltrain_desktop.core.compute_slurm import SlurmCompute
        st = state()
        folder = Path(tempfile.mkdtemp(prefix="bench-", dir=st["SHARED"]))
        try:
            ws = Workspace.create(folder / "ws")
            src = folder / "src"
            src.mkdir()
            (src / "job.py").write_text(f"print({FIRST!r}, flush=True)\n")
            target = ComputeTarget.create(ws, "cluster", SlurmCompute.provisioning_configuration(
                login_host=st["LOGIN_HOST"], ssh_config=st["SSH_CONFIG"], shared_workspace=st["SHARED"]))
            hand = [by_hand(st, folder) for _ in range(rounds)]
            sdk = [through_sdk(ws, target, src) for _ in range(rounds)]
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        if started:
            subprocess.run(["bash", str(SCRIPT), "stop"], check=False)
    print(f"submit -> first line, sbatch --wrap by hand: median {statistics.median(hand):.2f} s "
          f"({', '.join(f'{x:.2f}' for x in hand)})")
    print(f"submit -> first line, Experiment.submit:     median {statistics.median(sdk):.2f} s "
          f"({', '.join(f'{x:.2f}' for x in sdk)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
