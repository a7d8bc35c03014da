"""Endpoints in containers: the inference server run on a Docker compute target.

The container gets the model read-only, the job kit (this package's source) read-only, and the
endpoint folder (key and ready file) read-write; its port is published on 127.0.0.1 only. It is
built by the same hardened builder as a job's container (``adapters.docker.containers``) and
labelled with the endpoint as its owner, so the clean-up keeps it until the endpoint is deleted.
CPU and memory limits come from the model's resource configuration.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket

from ..adapters.docker import labels as lb
from ..adapters.docker.containers import container_kwargs
from ..adapters.docker.engine import docker_client
from ..domain.errors import UserErrorException

CONTAINER_PORT = 8501


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def container_name(workspace_dir, endpoint: str) -> str:
    """The endpoint's container name, unique per workspace on a shared engine."""
    digest = hashlib.sha256(lb.workspace_value(workspace_dir).encode()).hexdigest()[:8]
    return f"mltrain-endpoint-{endpoint}-{digest}"


def _remove_leftover(client, name: str, labels: dict) -> None:
    """A container of this name left by an earlier deploy of this same endpoint (never anyone else's)."""
    try:
        old = client.containers.get(name)
    except Exception:  # noqa: BLE001 - none left over
        return
    if lb.owner_of(old.labels) == lb.owner_of(labels) and old.labels.get(lb.WORKSPACE) == labels[lb.WORKSPACE]:
        old.remove(force=True)


def _client(config: dict):
    return docker_client(config)


def start_container(workspace, row: dict, model, config: dict, target: dict, server_args) -> tuple[str, int]:
    """Starts the endpoint's container on the docker target whose configuration is ``target``."""
    from ..engine.jobkit import jobkit_dir
    image = config.get("image") or target.get("image")
    if not image:
        raise UserErrorException(f"compute target {config['compute_target']!r} names no image; set one, or pass "
                                 "image= to DockerWebservice.deploy_configuration")
    client = _client(target)
    try:
        client.images.get(image)
    except Exception as exc:  # noqa: BLE001 - docker.errors.ImageNotFound and friends
        raise UserErrorException(f"image {image} is not present on the Docker engine of "
                                 f"{config['compute_target']!r}: {exc}") from exc
    folder = workspace.path / "endpoints" / row["name"]
    host_port = int(config.get("port") or 0) or _free_port()
    model_path = model.local_path
    mounts = {
        str(model_path): {"bind": f"/mltrain/model/{model_path.name}", "mode": "ro"},
        str(jobkit_dir(workspace.path)): {"bind": "/mltrain/jobkit", "mode": "ro"},
        str(folder): {"bind": "/mltrain/endpoint", "mode": "rw"},
    }
    entry = config.get("entry_script")
    if entry:
        mounts[os.path.dirname(entry)] = {"bind": "/mltrain/score", "mode": "ro"}
        entry = f"/mltrain/score/{os.path.basename(entry)}"
    argv = ["python3", *server_args(row, f"/mltrain/model/{model_path.name}", "/mltrain/endpoint", entry),
            "--host", "0.0.0.0", "--port", str(CONTAINER_PORT)]
    resources = config.get("resources") or {}
    kwargs = container_kwargs(
        image, lb.endpoint_labels(workspace.path, row["name"]),
        cpus=resources.get("cpu"), memory_gb=resources.get("memory_in_gb"),
        command=argv, name=container_name(workspace.path, row["name"]),
        environment={"PYTHONPATH": "/mltrain/jobkit", "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
                     "HOME": "/tmp"},
        volumes=mounts, ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", host_port)},
        working_dir="/mltrain/endpoint")
    _remove_leftover(client, kwargs["name"], kwargs["labels"])
    container = client.containers.run(**kwargs)
    return container.id, host_port


def _get(workspace_target_config: dict, container_id: str):
    client = _client(workspace_target_config)
    return client.containers.get(container_id)


def _target_for_row(row: dict) -> dict:
    """The Docker target's configuration, copied into the endpoint's config at deploy time."""
    return json.loads(row["config"]).get("target_config", {})


def container_running(row: dict) -> bool:
    if not row.get("container_id"):
        return False
    try:
        c = _get(_target_for_row(row), row["container_id"])
        return c.status in ("created", "running")
    except Exception:  # noqa: BLE001 - gone, or the engine is unreachable
        return False


def container_logs(row: dict, num_lines: int) -> str:
    try:
        c = _get(_target_for_row(row), row["container_id"])
        return c.logs(tail=num_lines).decode("utf-8", errors="replace")
    except Exception as exc:  # noqa: BLE001
        return f"(no logs: {exc})"


def remove_container(row: dict) -> None:
    if not row.get("container_id"):
        return
    try:
        c = _get(_target_for_row(row), row["container_id"])
        c.stop(timeout=5)
        c.remove(force=True)
    except Exception:  # noqa: BLE001 - already gone
        pass
