#!/usr/bin/env bash
# The test command. Sets everything up (system packages, Docker engine and images, the venv),
# then runs the whole test suite; stops the Docker engine afterwards only if it started it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/setup.sh
started_file="$(mktemp)"
cleanup() { [ -x scripts/stop_dockerd.sh ] && bash scripts/stop_dockerd.sh "$started_file" || true; rm -f "$started_file"; }
trap cleanup EXIT
if [ -f scripts/ensure_dockerd.sh ]; then
  bash scripts/ensure_dockerd.sh "$started_file"
  bash scripts/docker_base_image.sh
fi
export QT_QPA_PLATFORM=offscreen
.venv/bin/lint-imports
.venv/bin/python -m pytest -p no:cacheprovider -ra "$@"
