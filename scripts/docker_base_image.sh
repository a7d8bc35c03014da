#!/usr/bin/env bash
# Builds the Docker images MLTrain Desktop's tests and default docker targets use, without
# Docker Hub, idempotently:
#
#   mltrain-base:bookworm-py311  a minimal Debian 12 with Python 3.11 from Debian's packages:
#                                debootstrap (minbase) into a folder, then `docker import`
#   mltrain-tf:2.21              the base with tensorflow-cpu==2.21.0 (and its numpy, keras, ...)
#                                installed offline (pip install --no-index, no network) from
#                                wheels that this script `pip download`s on the host into
#                                $MLTRAIN_WHEEL_CACHE (default /var/cache/mltrain-wheels, or
#                                ~/.cache/mltrain-wheels when not root)
#
#   scripts/docker_base_image.sh [--base-only] [--force]
#
# An image that already exists is reused (and said so); --force rebuilds both. Needs root
# (debootstrap), a running engine (scripts/ensure_dockerd.sh), the apt packages docker.io and
# debootstrap, and a Python 3 with pip on the host (the project's .venv is used if present).
# The Debian mirror is the one the host's apt uses (override: MLTRAIN_DEBIAN_MIRROR); PyPI is
# reached through the host's pip configuration (index, proxy, CA bundle).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

BASE_IMAGE="${MLTRAIN_BASE_IMAGE:-mltrain-base:bookworm-py311}"
TF_IMAGE="${MLTRAIN_TF_IMAGE:-mltrain-tf:2.21}"
TF_REQUIREMENT="${MLTRAIN_TF_REQUIREMENT:-tensorflow-cpu==2.21.0}"
SUITE=bookworm
if [ -n "${MLTRAIN_WHEEL_CACHE:-}" ]; then WHEEL_ROOT="$MLTRAIN_WHEEL_CACHE"
elif [ "$(id -u)" -eq 0 ] || [ -w /var/cache/mltrain-wheels ]; then WHEEL_ROOT=/var/cache/mltrain-wheels
else WHEEL_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/mltrain-wheels"; fi
WHEELS="$WHEEL_ROOT/tf-2.21-py311"
BASE_ONLY=0
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --base-only) BASE_ONLY=1 ;;
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "docker_base_image: unknown argument $arg (use --base-only, --force)" >&2; exit 2 ;;
  esac
done

t_start=$(date +%s)
say() { echo "docker_base_image: $*"; }

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

if ! docker info >/dev/null 2>&1; then
  say "no Docker engine answers; start one first (scripts/ensure_dockerd.sh)" >&2
  exit 1
fi

debian_mirror() {
  if [ -n "${MLTRAIN_DEBIAN_MIRROR:-}" ]; then echo "$MLTRAIN_DEBIAN_MIRROR"; return; fi
  local uri=""
  # deb822 sources: the first URIs line of a stanza whose Suites include bookworm itself.
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri="$(awk -v s="$SUITE" '
      /^[[:space:]]*$/ { if (u != "" && ok) { print u; exit } u=""; ok=0; next }
      /^URIs:/ { u=$2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok=1 }
      END { if (u != "" && ok) print u }' "$f" | head -n1)"
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri="$(awk -v s="$SUITE" '$1 == "deb" && $0 !~ /security/ {
      for (i = 2; i <= NF; i++) if ($i ~ /^(https?|ftp):/ && $(i+1) == s) { print $i; exit } }' /etc/apt/sources.list)"
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

build_base() {
  if [ "$FORCE" -eq 0 ] && image_exists "$BASE_IMAGE"; then
    say "reusing $BASE_IMAGE ($(docker image inspect -f '{{.Id}}' "$BASE_IMAGE" | cut -c8-19))"
    return
  fi
  if [ "$(id -u)" -ne 0 ]; then say "building $BASE_IMAGE needs root (debootstrap)" >&2; exit 1; fi
  command -v debootstrap >/dev/null || { say "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
  local mirror root t0
  mirror="$(debian_mirror)"
  root="$(mktemp -d /var/tmp/mltrain-rootfs.XXXXXX)"
  trap "rm -rf '$root'" EXIT
  t0=$(date +%s)
  say "building $BASE_IMAGE: debootstrap --variant=minbase $SUITE from $mirror (about a minute)"
  debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates,tini \
    "$SUITE" "$root" "$mirror" > "$root.debootstrap.log" 2>&1 || {
      say "debootstrap failed; last lines of its log:" >&2; tail -n 30 "$root.debootstrap.log" >&2
      rm -f "$root.debootstrap.log"; exit 1; }
  rm -f "$root.debootstrap.log"
  # Smaller and reproducible: no apt lists, caches, docs or man pages.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
         "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
         "$root"/var/log/*.log "$root"/var/cache/debconf/*-old
  printf 'deb %s %s main\n' "$mirror" "$SUITE" > "$root/etc/apt/sources.list"
  tar --numeric-owner -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
    --change 'ENV PIP_DISABLE_PIP_VERSION_CHECK=1' \
    --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
    --change 'LABEL org.opencontainers.image.description="MLTrain Desktop base: Debian 12 minbase with Python 3.11"' \
    --change 'CMD ["python3"]' \
    - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"; trap - EXIT
  say "built $BASE_IMAGE in $(( $(date +%s) - t0 ))s ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

host_python() {
  if [ -n "${MLTRAIN_HOST_PYTHON:-}" ]; then echo "$MLTRAIN_HOST_PYTHON"; return; fi
  for p in "$here/.venv/bin/python" python3; do
    if "$p" -m pip --version >/dev/null 2>&1; then echo "$p"; return; fi
  done
  say "no Python with pip on this machine to download wheels; run scripts/setup.sh first" >&2
  exit 1
}

download_wheels() {
  mkdir -p "$WHEELS"
  local stamp="$WHEELS/.complete" py
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$TF_REQUIREMENT" ]; then
    say "reusing $(ls "$WHEELS"/*.whl | wc -l) wheels in $WHEELS"
    return
  fi
  py="$(host_python)"
  say "downloading wheels for $TF_REQUIREMENT (Python 3.11, manylinux x86_64) into $WHEELS"
  # Explicit target tags, so that the host's own Python version does not matter.
  local plats=()
  for v in 36 35 34 33 32 31 28 27 24 17; do plats+=(--platform "manylinux_2_${v}_x86_64"); done
  plats+=(--platform manylinux2014_x86_64 --platform linux_x86_64)
  "$py" -m pip download --disable-pip-version-check -q --dest "$WHEELS" \
    --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
    "${plats[@]}" "$TF_REQUIREMENT"
  echo "$TF_REQUIREMENT" > "$stamp"
  say "$(ls "$WHEELS"/*.whl | wc -l) wheels, $(du -sh "$WHEELS" | cut -f1)"
}

build_tf() {
  if [ "$FORCE" -eq 0 ] && image_exists "$TF_IMAGE"; then
    say "reusing $TF_IMAGE ($(docker image inspect -f '{{.Id}}' "$TF_IMAGE" | cut -c8-19))"
    return
  fi
  download_wheels
  local t0 cid
  t0=$(date +%s)
  # The wheels are bind-mounted read-only into a container of the base image with no network
  # (so the install is provably offline) and the result is committed: no context upload, no
  # layer holding 300 MB of wheels, no intermediate images to clean up.
  say "building $TF_IMAGE from $BASE_IMAGE with $TF_REQUIREMENT (offline, from the wheels)"
  cid="$(docker create --network none -v "$WHEELS:/wheels:ro" --label mltrain.role=image-build "$BASE_IMAGE" \
    sh -c 'python3 -m pip install -q --no-index --no-cache-dir --root-user-action=ignore --find-links /wheels "$0" \
           && python3 -c "import tensorflow as tf, numpy; print(\"installed: tensorflow\", tf.__version__, \"numpy\", numpy.__version__)"' \
    "$TF_REQUIREMENT")"
  trap "docker rm -f '$cid' >/dev/null 2>&1 || true" EXIT
  if ! docker start -a "$cid" 2>&1 | grep -v -E '^(WARNING: All log messages|I0000 |To enable the following|$)'; then :; fi
  if [ "$(docker inspect -f '{{.State.ExitCode}}' "$cid")" != "0" ]; then
    say "installing $TF_REQUIREMENT into $BASE_IMAGE failed (see above)" >&2
    exit 1
  fi
  docker commit \
    --change 'CMD ["python3"]' \
    --change 'ENV TF_CPP_MIN_LOG_LEVEL=1' \
    --change "LABEL org.opencontainers.image.description=\"MLTrain Desktop TensorFlow environment: $TF_REQUIREMENT\"" \
    "$cid" "$TF_IMAGE" >/dev/null
  docker rm "$cid" >/dev/null
  trap - EXIT
  say "built $TF_IMAGE in $(( $(date +%s) - t0 ))s ($(docker image inspect -f '{{.Size}}' "$TF_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

build_base
[ "$BASE_ONLY" -eq 1 ] || build_tf
say "done in $(( $(date +%s) - t_start ))s"
