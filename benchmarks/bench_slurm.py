"""Two figures on the local test Slurm cluster, side by side in one run.

    python benchmarks/bench_slurm.py [--rounds 3] [--epochs 6]

1. submit -> first line of the script: the SDK (Experiment.submit) vs. `sbatch --wrap` by hand;
   and the same run from a workspace the nodes cannot see, staged to the cluster's /scratch
   (first line here, and Completed, i.e. outputs and logs back), vs. the shared workspace;
2. the distributed sample's epoch time (MultiWorkerMirroredStrategy, 2 ranks): 2 nodes x 1 rank
   vs. 1 node x 2 ranks (median of epochs 2.., from the times rank 0 logged each epoch's loss).

The cluster's nodes are containers on this one machine and share its CPUs, so the second figure
shows what crossing hosts costs (gRPC over the cluster's network instead of within one node),
not what a second machine's CPUs would add. Needs the test cluster (scripts/slurm_cluster.sh
start; this script starts it when it is not running and stops it afterwards only then).
"""
from __future__ import annotations

import argparse
import json
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


def through_sdk(ws, target, src: Path) -> tuple[float, float]:
    """(submit -> the first line in the run's log here, submit -> Completed)."""
    from mltrain_desktop import Experiment
    from mltrain_desktop.core.script_run_config import ScriptRunConfig
    t0 = time.monotonic()
    run = Experiment(ws, "bench").submit(ScriptRunConfig(source_directory=str(src), script="job.py",
                                                         compute_target=target))
    wait_line(run.run_dir / "logs" / "driver.log")
    elapsed = time.monotonic() - t0
    run.wait_for_completion(raise_on_error=True, timeout=120)
    return elapsed, time.monotonic() - t0


def epoch_seconds(ws, target, folder: Path, nodes: int, ppn: int, epochs: int) -> list[float]:
    """The sample's epoch times (rank 0's log) for ``nodes`` x ``ppn`` ranks on the cluster."""
    from mltrain_desktop import Experiment, MpiConfiguration, TensorFlow
    data = folder / "data"
    if not data.is_dir():
        shutil.copytree(REPO / "resources" / "data" / "fashion-mnist-small", data)
    params = {"--data-folder": str(data), "--epochs": epochs, "--max-train-samples": 6000,
              "--first-layer-neurons": 32, "--second-layer-neurons": 16}
    est = TensorFlow(source_directory=str(REPO / "resources" / "samples" / "tf-mnist-distributed"),
                     entry_script="mwms_mnist.py", script_params=params, compute_target=target, node_count=nodes,
                     distributed_training=MpiConfiguration(process_count_per_node=ppn))
    run = Experiment(ws, "bench-epochs").submit(est)
    details = run.wait_for_completion(raise_on_error=False, timeout=600)
    logs = run.run_dir / "logs"
    if details["status"] != "Completed":
        log = (logs / "rank_0.log").read_text(errors="replace")
        raise SystemExit(f"the {nodes}x{ppn} sample run ended {details['status']}: {details.get('error')}\n{log[-2000:]}")
    records = [json.loads(line) for line in (logs / "metrics.jsonl").read_text().splitlines() if line.strip()]
    ends = [r["t"] for r in records if r.get("n") == "epoch_loss"]
    return [b - a for a, b in zip(ends, ends[1:])]  # epoch 2 onwards: each from the end of the one before


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=6)
    args = ap.parse_args()
    rounds = args.rounds
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
            elsewhere = Path(tempfile.mkdtemp(prefix="bench-staged-"))
            try:
                sws = Workspace.create(elsewhere / "ws")
                staged_target = ComputeTarget.create(sws, "cluster", SlurmCompute.provisioning_configuration(
                    login_host=st["LOGIN_HOST"], ssh_config=st["SSH_CONFIG"], shared_workspace=st["SHARED"],
                    scratch_dir=st["SCRATCH"]))
                staged = []
                for _ in range(rounds):  # alternated with the shared workspace's runs
                    staged.append(through_sdk(sws, staged_target, src))
                    sdk.append(through_sdk(ws, target, src))
                sws.close()
            finally:
                shutil.rmtree(elsewhere, ignore_errors=True)
            two_nodes = epoch_seconds(ws, target, folder, 2, 1, args.epochs)
            one_node = epoch_seconds(ws, target, folder, 1, 2, args.epochs)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        if started:
            subprocess.run(["bash", str(SCRIPT), "stop"], check=False)
    print(f"submit -> first line, sbatch --wrap by hand: median {statistics.median(hand):.2f} s "
          f"({', '.join(f'{x:.2f}' for x in hand)})")
    def med(pairs, i):
        values = [p[i] for p in pairs]
        return f"median {statistics.median(values):.2f} s ({', '.join(f'{x:.2f}' for x in values)})"
    print(f"submit -> first line, Experiment.submit:     {med(sdk, 0)}")
    print(f"submit -> first line here, staged run:      {med(staged, 0)}")
    print(f"submit -> Completed, shared workspace:      {med(sdk, 1)}")
    print(f"submit -> Completed, staged (files back):   {med(staged, 1)}")
    two, one = statistics.median(two_nodes), statistics.median(one_node)
    print(f"sample epoch, 2 nodes x 1 rank: median {two:.2f} s ({', '.join(f'{x:.2f}' for x in two_nodes)})")
    print(f"sample epoch, 1 node x 2 ranks: median {one:.2f} s ({', '.join(f'{x:.2f}' for x in one_node)})")
    print(f"ratio 2 nodes / 1 node: {two / one:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
