#!/usr/bin/env bash
# Installs everything MLTrain Desktop needs on a Debian 12 machine, idempotently:
# system packages (Python venv, Open MPI, Xvfb, Docker engine, Qt runtime libraries, fonts,
# Fashion-MNIST), then a virtual environment in .venv with the app, TensorFlow (CPU) and the
# test tools. A second call reuses what the first one made while pyproject.toml is unchanged.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

APT_PACKAGES=(
  python3 python3-venv python3-dev
  openmpi-bin libopenmpi-dev
  xvfb docker.io debootstrap
  dataset-fashion-mnist
  libegl1 libgl1 libfontconfig1 libglib2.0-0 libdbus-1-3 libxkbcommon0 fonts-dejavu-core
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0
  libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0
  procps iproute2 ca-certificates openssh-client util-linux rsync
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=/usr/bin/python3
VENV="$here/.venv"
stamp="$VENV/.mltrain-setup-stamp"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)-$($PY -c 'import sys;print(sys.version.split()[0])')"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: building the virtual environment in $VENV"
  [ -x "$VENV/bin/python" ] || $PY -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e ".[gui,ml,notebook,dev]"
  echo "$want" > "$stamp"
else
  echo "setup: virtual environment is up to date ($VENV)"
fi
