"""The ``slurm`` compute kind: a Slurm cluster reached on this machine or through a login host.

``SlurmCompute.provisioning_configuration(...)`` describes it; ``ComputeTarget.create`` calls
``validate`` and ``probe``: ``sinfo`` and ``scontrol show partition/config`` (over SSH when
``login_host`` is set) record the partitions, nodes, CPUs and GPUs (gres), and a marker file
written into ``shared_workspace`` and read back by ``srun`` on the partition's nodes tells
whether that folder is visible there (a shared file system). A run whose workspace is not under
``shared_workspace`` is staged instead when the target names a ``scratch_dir`` (a folder of the
cluster's own file system, checked the same way: written on the login host, read back by srun):
snapshot, job kit and inputs are copied there with rsync and outputs and logs come back
(``adapters/slurm/staging.py``); with neither, such a run is refused with that reason.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from ..adapters.slurm import parse
from ..adapters.slurm.commands import Runner, SlurmCommandError
from ..adapters.slurm.script import ScriptError, check_token

KIND = "slurm"
PROBE_SRUN_TIMEOUT_S = 60.0
DEFAULT_MAX_CONCURRENT_RUNS = 4


def _provisioning_class():
    from .compute import ComputeTargetProvisioningConfiguration
    return ComputeTargetProvisioningConfiguration


class SlurmCompute:
    """A Slurm cluster as a compute target: each run is one sbatch job."""

    @staticmethod
    def provisioning_configuration(partition: str | None = None, account: str | None = None,
                                   nodes_max: int | None = None, gres_gpu: int | None = None,
                                   time_limit: str | None = None, login_host: str | None = None,
                                   ssh_key: str | None = None, shared_workspace: str | None = None,
                                   python: str | None = None, ssh_config: str | None = None,
                                   base_port: int | None = None, sbatch_args: list | None = None,
                                   max_concurrent_runs: int = DEFAULT_MAX_CONCURRENT_RUNS,
                                   scratch_dir: str | None = None):
        """Describes a Slurm target.

        partition, account, time_limit: sbatch's --partition/--account/--time (time as '30',
            'HH:MM:SS' or 'D-HH:MM:SS'); None: the cluster's defaults.
        nodes_max: the most nodes one run may ask for (also bounded by the partition).
        gres_gpu: GPUs per node a use_gpu=True run asks for (--gres=gpu:N); default: one per rank.
        login_host, ssh_key, ssh_config: where Slurm's commands run ('user@host' or an ssh_config
            Host); None: this machine.
        shared_workspace: a folder with the same path on this machine and on the nodes; runs of
            a workspace inside it need no copying.
        scratch_dir: a folder of the cluster's file system (its path on the login host and the
            nodes) that runs of other workspaces are staged into: copied there with rsync over
            the login host's SSH before sbatch, outputs and logs copied back, then removed.
        python: the interpreter on the nodes (default python3; the run's environment python wins).
        base_port: first TF_CONFIG port of a distributed run's tasks (task t gets base_port + t).
        sbatch_args: more sbatch options for every run, e.g. ['--constraint=avx2', '--qos=short'].
        max_concurrent_runs: runs handed to Slurm at once (Slurm queues them further).
        """
        cfg: dict = {"max_concurrent_runs": max_concurrent_runs}
        for key, value in (("partition", partition), ("account", account), ("nodes_max", nodes_max),
                           ("gres_gpu", gres_gpu), ("time_limit", time_limit), ("login_host", login_host),
                           ("ssh_key", ssh_key), ("shared_workspace", shared_workspace), ("python", python),
                           ("ssh_config", ssh_config), ("base_port", base_port), ("sbatch_args", sbatch_args),
                           ("scratch_dir", scratch_dir)):
            if value is not None:
                cfg[key] = value
        return _provisioning_class()(KIND, **cfg)


def _whole(config: dict, key: str, least: int) -> None:
    v = config.get(key)
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < least):
        raise ValueError(f"{key} must be a whole number of at least {least}, got {v!r}")


def validate(config: dict) -> dict:
    _whole(config, "max_concurrent_runs", 1)
    _whole(config, "nodes_max", 1)
    _whole(config, "gres_gpu", 0)
    bp = config.get("base_port")
    if bp is not None and (isinstance(bp, bool) or not isinstance(bp, int) or not 1024 <= bp < 65000):
        raise ValueError(f"base_port must be a port number from 1024 to 64999, got {bp!r}")
    try:
        for key in ("partition", "account"):
            if config.get(key) is not None:
                check_token(key, config[key])
    except ScriptError as exc:
        raise ValueError(str(exc)) from None
    tl = config.get("time_limit")
    if tl is not None and not (isinstance(tl, str) and parse.valid_time_limit(tl)):
        raise ValueError(f"time_limit {tl!r} is not a Slurm time: use minutes ('30'), 'HH:MM:SS' or 'D-HH:MM:SS'")
    for key in ("login_host", "python", "ssh_config", "ssh_key", "shared_workspace", "scratch_dir"):
        v = config.get(key)
        if v is not None and (not isinstance(v, str) or not v.strip() or "\0" in v):
            raise ValueError(f"{key} must be a non-empty string, got {v!r}")
    host = config.get("login_host")
    if host is not None and (host.startswith("-") or any(c.isspace() for c in host)):
        raise ValueError(f"login_host {host!r} must be a host name or user@host, without spaces or a leading '-'")
    for key in ("ssh_key", "ssh_config"):
        if config.get(key) is not None and not Path(config[key]).expanduser().is_file():
            raise ValueError(f"{key} {config[key]} is not a file; give the path of an existing file")
    extra = config.get("sbatch_args")
    if extra is not None and not (isinstance(extra, list) and all(
            isinstance(a, str) and a.startswith("-") and "\0" not in a for a in extra)):
        raise ValueError(f"sbatch_args must be a list of sbatch options such as ['--qos=short'], got {extra!r}")
    sw = config.get("shared_workspace")
    if sw is not None and not os.path.isabs(os.path.expanduser(sw)):
        raise ValueError(f"shared_workspace must be an absolute folder path, got {sw!r}")
    sd = config.get("scratch_dir")
    if sd is not None and (not sd.startswith("/") or "/../" in sd + "/" or sd.rstrip("/") == ""):
        raise ValueError(f"scratch_dir must be an absolute folder path on the cluster (as the login host and the "
                         f"nodes see it, e.g. '/scratch/$USER' written out), other than '/', got {sd!r}")
    return config


def probe(config: dict) -> dict:
    """Asks the cluster what it has; a Failed state says what is wrong and what to do."""
    runner = Runner(config)
    try:
        nodes = parse.nodes(runner.run(["sinfo", "-h", "-N", "-o", parse.NODE_FORMAT]).stdout)
        partitions = parse.partitions(runner.run(["scontrol", "show", "partition", "-o"]).stdout)
        conf = parse.config(runner.run(["scontrol", "show", "config"]).stdout)
    except SlurmCommandError as exc:
        return {"state": "Failed", "detail": str(exc), "error_kind": exc.kind}
    result = {"partitions": partitions, "nodes": nodes, "cluster": conf.get("ClusterName"),
              "slurm_version": conf.get("SLURM_VERSION"), "select_type": conf.get("SelectType"),
              "cpus": sum(n["cpus"] or 0 for n in nodes), "gpus": [], "gpu_count": sum(n["gpus"] for n in nodes),
              "login_host": runner.where}
    names = [p["name"] for p in partitions]
    wanted = config.get("partition")
    part = next((p for p in partitions if p["name"] == wanted), None) if wanted else \
        next((p for p in partitions if p["default"]), partitions[0] if partitions else None)
    if wanted and part is None:
        return {**result, "state": "Failed",
                "detail": f"partition {wanted!r} does not exist on cluster {result['cluster']}; partitions: "
                          f"{', '.join(names) or 'none'}. Set partition= to one of them"}
    if part is None:
        return {**result, "state": "Failed", "detail": "the cluster has no partition; ask its administrator"}
    result["partition"] = part["name"]
    result["shared"] = shared_check(runner, config, part)
    if config.get("scratch_dir"):
        result["staging"] = staging_check(runner, config, part)
    detail = (f"Slurm {result['slurm_version']} cluster {result['cluster']} via {runner.where}: partition "
              f"{part['name']} ({part['total_nodes']} node(s), {part['total_cpus']} CPUs, "
              f"max time {part['max_time']}); "
              f"{len(nodes)} node(s) in all, {result['gpu_count']} GPU(s); shared workspace: "
              f"{result['shared']['detail']}"
              + (f"; staging: {result['staging']['detail']}" if "staging" in result else ""))
    return {**result, "state": "Succeeded", "detail": detail}


def _nodes_for_check(config: dict, partition: dict) -> int:
    return min(partition["total_nodes"] or 1, config.get("nodes_max") or 1 << 30)


def _seen_on_nodes(runner: Runner, partition: dict, n: int, path: str, token: str) -> int:
    """How many of ``n`` nodes of ``partition`` read ``token`` from ``path`` (srun cat); SlurmCommandError."""
    argv = ["srun", "-p", partition["name"], f"--nodes={n}", "--ntasks-per-node=1", "--immediate=20",
            "--time=1", "cat", path]
    out = runner.run(argv, timeout=PROBE_SRUN_TIMEOUT_S).stdout.split()
    return sum(1 for w in out if w == token)


def shared_check(runner: Runner, config: dict, partition: dict) -> dict:
    """Whether shared_workspace is visible on the partition's nodes: a marker file read back by srun."""
    folder = config.get("shared_workspace")
    if not folder:
        return {"shared": False, "detail": "not set (a workspace's runs are staged to scratch_dir, or refused "
                                           "when the target has none)"}
    folder = os.path.expanduser(folder)
    token = secrets.token_hex(8)
    marker = Path(folder) / f".mltrain-slurm-probe-{token}"
    try:
        marker.write_text(token + "\n")
    except OSError as exc:
        return {"shared": False, "detail": f"cannot write to {folder} here ({exc.strerror})"}
    n = _nodes_for_check(config, partition)
    try:
        seen = _seen_on_nodes(runner, partition, n, str(marker), token)
    except SlurmCommandError as exc:
        return {"shared": None, "detail": f"not checked: {exc}"}
    finally:
        marker.unlink(missing_ok=True)
    if seen == n:
        return {"shared": True, "folder": folder, "detail": f"{folder} is visible on {n} node(s)"}
    return {"shared": False, "folder": folder, "detail": f"{folder} is visible on {seen} of {n} node(s); put the "
                                                         "workspace on a file system every node mounts"}


def staging_check(runner: Runner, config: dict, partition: dict) -> dict:
    """Whether scratch_dir can be written from the login host and is seen by the partition's nodes."""
    from ..adapters.slurm.staging import check_writable
    folder = config["scratch_dir"]
    token = secrets.token_hex(8)
    try:
        marker = check_writable(runner, folder, f".probe-{token}", token)
    except SlurmCommandError as exc:
        return {"ready": False, "folder": folder,
                "detail": f"cannot write to {folder} on {runner.where} ({exc}); runs outside shared_workspace "
                          "will be refused until scratch_dir names a folder you may write there"}
    n = _nodes_for_check(config, partition)
    try:
        seen = _seen_on_nodes(runner, partition, n, marker, token)
    except SlurmCommandError as exc:
        return {"ready": None, "folder": folder, "detail": f"{folder} writable on {runner.where}; nodes not checked: {exc}"}
    finally:
        try:
            runner.run(["rm", "-f", "--", marker])
        except SlurmCommandError:
            pass
    if seen == n:
        return {"ready": True, "folder": folder,
                "detail": f"runs of other workspaces are copied to {folder} (writable on {runner.where}, "
                          f"visible on {n} node(s))"}
    return {"ready": False, "folder": folder,
            "detail": f"{folder} is visible on {seen} of {n} node(s); scratch_dir must be on a file system every "
                      "node mounts"}


__all__ = ["SlurmCompute", "KIND", "probe", "validate"]
