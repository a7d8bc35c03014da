#!/usr/bin/env bash
# The main job. Sets everything up, then opens the window; with no display, runs the seed's
# sample headless (workspace, dataset, a training run with live metrics printed, a registered model).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/scripts/setup.sh"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ "${MLTRAIN_HEADLESS:-0}" != "1" ]; then
  exec "$here/.venv/bin/mltrain-desktop" "$@"
fi
echo "No display: running the sample headless."
exec "$here/.venv/bin/mltrain" sample "$@"
