"""The MPI layer of a run's image: OpenSSH and Open MPI on top of the environment image, built once.

A Docker target whose MPI jobs run through ``mpirun`` over SSH (``mpi_launcher="mpirun"``)
needs ``sshd``, ``ssh``, ``ssh-keygen`` and Open MPI's ``mpirun``/``orted`` in the image the
node containers run, and a passwd entry for the uid they run as (ssh and sshd look the user
up). This module writes that layer (pure: :func:`mpi_dockerfile`) and finds or builds it
(:func:`ensure_mpi_image`), tagged ``mltrain-mpi:<hash16>`` of the recipe, the environment
image's id and the uid:gid, so it is built once per environment image and user. An image that
already has the tools is used as it is; one without them and without ``apt-get`` fails the
build with a message saying what the image needs.
"""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Callable

from .images import _find_tag, _run_build, _short, build_context, build_lock

MPI_REPOSITORY = "mltrain-mpi"
MPI_RECIPE_VERSION = 1  # bump when the recipe below changes
PACKAGES = ("openssh-server", "openssh-client", "openmpi-bin")
NO_APT_EXIT = 3

_INSTALL = (
    "set -e; "
    "if command -v sshd >/dev/null && command -v ssh >/dev/null && command -v ssh-keygen >/dev/null "
    "&& command -v mpirun >/dev/null; then echo 'OpenSSH and Open MPI are in the image already'; "
    "elif command -v apt-get >/dev/null; then apt-get update -q; "
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends " + " ".join(PACKAGES) + "; "
    "apt-get clean; rm -rf /var/lib/apt/lists/* /etc/ssh/ssh_host_*; "
    "else echo 'ERROR: the image has no apt-get and lacks OpenSSH (sshd, ssh, ssh-keygen) or Open MPI (mpirun): "
    "use a Debian/Ubuntu-based image, or one with openssh-server and Open MPI installed' >&2; "
    f"exit {NO_APT_EXIT}; fi; "
    "mkdir -p /run/sshd; chmod 0755 /run/sshd"
)


def _user_step(uid: int, gid: int) -> str | None:
    """A passwd entry (and group) for the containers' uid:gid; None for root, which every image has."""
    if uid == 0:
        return None
    return (f"(getent group {gid} >/dev/null || groupadd -g {gid} mltrain) && "
            f"(getent passwd {uid} >/dev/null || useradd -u {uid} -g {gid} -M -d /tmp -s /bin/sh mltrain)")


def mpi_recipe_hash(base_image_id: str, uid: int, gid: int) -> str:
    text = f"{MPI_RECIPE_VERSION}\n{_INSTALL}\n{_user_step(uid, gid)}\n{base_image_id}\n{uid}:{gid}"
    return hashlib.sha256(text.encode()).hexdigest()


def mpi_image_tag(base_image_id: str, uid: int, gid: int) -> str:
    return f"{MPI_REPOSITORY}:{mpi_recipe_hash(base_image_id, uid, gid)[:16]}"


def mpi_dockerfile(base_image: str, base_image_id: str, uid: int, gid: int) -> str:
    """The Dockerfile of the MPI layer over ``base_image`` for containers running as ``uid:gid`` (pure)."""
    h = mpi_recipe_hash(base_image_id, uid, gid)
    lines = [f"# MLTrain Desktop MPI layer {h[:16]} (recipe {MPI_RECIPE_VERSION})", f"FROM {base_image}",
             "USER root", f"RUN {_INSTALL}"]
    user = _user_step(uid, gid)
    if user:
        lines.append(f"RUN {user}")
    lines.append(f'LABEL mltrain.mpi-layer="{h[:16]}" mltrain.base="{base_image}"')
    return "\n".join(lines) + "\n"


def ensure_mpi_image(api, base_image: str, *, uid: int | None = None, gid: int | None = None,
                     log: Callable[[str], None], cancelled: Callable[[], bool] = lambda: False,
                     network: str | None = None, lock_dir: Path | None = None) -> str:
    """The tag of the MPI layer over ``base_image`` (found in cache or built); PrepareError or
    BuildCanceled as the environment build raises them."""
    from ...domain.errors import PrepareError
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    base = _find_tag(api, base_image)
    if base is None:
        raise PrepareError(f"the run's image {base_image!r} is not on the Docker engine, so its MPI layer "
                           "cannot be built; prepare the environment again")
    tag = mpi_image_tag(base["Id"], uid, gid)
    with build_lock(lock_dir, f"docker-mpi-{tag.split(':')[1]}", tag, log, cancelled):
        found = _find_tag(api, tag)
        if found is not None:
            log(f"[mltrain] MPI layer {tag} found in cache ({_short(found['Id'])}): OpenSSH and Open MPI "
                f"over {base_image}, user {uid}:{gid}")
            return tag
        t0 = time.monotonic()
        log(f"[mltrain] building the MPI layer {tag}: {', '.join(PACKAGES)} over {base_image} "
            f"(apt-get, once per image), user {uid}:{gid}")
        text = mpi_dockerfile(base_image, base["Id"], uid, gid)
        image_id = _run_build(api, tag, build_context(text), log, cancelled, network, base["Id"])
        log(f"[mltrain] MPI layer {tag} built in {time.monotonic() - t0:.1f}s ({_short(image_id)})")
        return tag


__all__ = ["MPI_REPOSITORY", "NO_APT_EXIT", "PACKAGES", "ensure_mpi_image", "mpi_dockerfile", "mpi_image_tag",
           "mpi_recipe_hash"]
