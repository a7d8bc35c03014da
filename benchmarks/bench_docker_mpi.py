"""MPI jobs on a Docker target, the two launchers side by side in one run (issue 15):

1. submit -> rank 0's first line of the distributed sample, and submit -> Completed:
   one container per rank (mpi_launcher="containers") vs node containers with mpirun over SSH
   (mpi_launcher="mpirun"; its OpenSSH + Open MPI layer is built before the rounds start);
2. the sample's epoch time (MultiWorkerMirroredStrategy, 2 ranks), median of epochs 2..,
   from the times rank 0 logged each epoch's loss: 2 rank containers vs 2 node containers x 1 rank.

Needs a running engine and the images of scripts/docker_base_image.sh.

Usage: .venv/bin/python benchmarks/bench_docker_mpi.py [--rounds 3] [--epochs 6]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

IMAGE = "mltrain-tf:2.21"
SAMPLE = REPO / "resources" / "samples" / "tf-mnist-distributed"


def one_run(ws, target, data, epochs: int) -> tuple[float, float, list[float]]:
    """(seconds to rank 0's first line, seconds to the end, epoch times) of the sample on 2 ranks."""
    from mltrain_desktop import Experiment, MpiConfiguration, TensorFlow
    params = {"--data-folder": data.as_named_input("mnist").as_mount(), "--epochs": epochs, "--max-train-samples": 6000,
              "--first-layer-neurons": 32, "--second-layer-neurons": 16}
    over_ssh = target.config.get("mpi_launcher") == "mpirun"
    dist = MpiConfiguration(process_count_per_node=1, node_count=2) if over_ssh \
        else MpiConfiguration(process_count_per_node=2)
    est = TensorFlow(source_directory=str(SAMPLE), entry_script="mwms_mnist.py", script_params=params,
                     compute_target=target, distributed_training=dist)
    t0 = time.monotonic()
    run = Experiment(ws, "bench-docker-mpi").submit(est)
    rank0 = run.run_dir / "logs" / "rank_0.log"
    first = None
    while first is None:
        if rank0.is_file() and rank0.stat().st_size:
            first = time.monotonic() - t0
        elif time.monotonic() - t0 > 300:
            raise SystemExit("rank 0 wrote nothing within 300 s")
        else:
            time.sleep(0.05)
    details = run.wait_for_completion(raise_on_error=False, timeout=600)
    total = time.monotonic() - t0
    if details["status"] != "Completed":
        raise SystemExit(f"the sample ended {details['status']}: {details.get('error')}")
    records = [json.loads(x) for x in (run.run_dir / "logs" / "metrics.jsonl").read_text().splitlines() if x.strip()]
    ends = [r["t"] for r in records if r.get("n") == "epoch_loss"]
    return first, total, [b - a for a, b in zip(ends, ends[1:])]


def _fmt(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s ({', '.join(f'{v:.2f}' for v in values)})"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=6)
    args = ap.parse_args()
    from mltrain_desktop import ComputeTarget, Workspace
    from mltrain_desktop.core.compute_docker import DockerCompute
    folder = Path(tempfile.mkdtemp(prefix="bench-docker-mpi-"))
    try:
        ws = Workspace.create(folder / "ws")
        from mltrain_desktop.core.sample_flow import register_sample_dataset
        data = register_sample_dataset(ws, full=False)  # mounted read-only into every container
        targets = {mode: ComputeTarget.create(ws, f"docker-{mode}", DockerCompute.provisioning_configuration(
            image=IMAGE, shm_size="512m", mpi_launcher=mode)) for mode in ("containers", "mpirun")}
        one_run(ws, targets["mpirun"], data, 1)  # builds (or finds) the MPI layer: not measured
        results: dict[str, dict[str, list[float]]] = {m: {"first": [], "total": [], "epochs": []} for m in targets}
        for _ in range(args.rounds):
            for mode, target in targets.items():  # alternated, so the machine's noise falls on both
                first, total, epochs = one_run(ws, target, data, args.epochs)
                results[mode]["first"].append(first)
                results[mode]["total"].append(total)
                results[mode]["epochs"] += epochs
        ws.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for mode, label in (("containers", "2 rank containers (TF_CONFIG)    "),
                        ("mpirun", "2 node containers, mpirun over SSH")):
        r = results[mode]
        print(f"{label}: submit -> rank 0's first line {_fmt(r['first'])}")
        print(f"{label}: submit -> Completed           {_fmt(r['total'])}")
        print(f"{label}: epoch                         {_fmt(r['epochs'])}")
    c, m = results["containers"], results["mpirun"]
    print(f"ratio mpirun / containers: first line {statistics.median(m['first']) / statistics.median(c['first']):.2f}, "
          f"epoch {statistics.median(m['epochs']) / statistics.median(c['epochs']):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
