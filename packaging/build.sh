#!/usr/bin/env bash
# Builds MLTrain Desktop's Linux installers from a checkout (a clean clone is enough):
#
#   dist/mltrain-desktop/                                the one-folder bundle (PyInstaller):
#                                                        mltrain-desktop (window) and mltrain (CLI)
#   dist/mltrain-desktop-VERSION-linux-ARCH.tar.gz       that folder, with the desktop entry and icons
#   dist/mltrain-desktop_VERSION_DEBARCH.deb             installs to /opt/mltrain-desktop, with
#                                                        /usr/bin links, the desktop entry and icons
#   dist/MLTrain_Desktop-VERSION-ARCH.AppImage           only where appimagetool is installed
#   dist/build-report.json                               sizes and build times (benchmarks read it)
#   dist/mltrain-desktop.source-hash                     what the bundle was built from
#
# Usage: packaging/build.sh [--bundle-only] [--if-changed] [--clean]
#   --bundle-only   the bundle, no archives
#   --if-changed    do nothing when dist/ already holds a bundle (and archives) of this source
#   --clean         empty PyInstaller's cache and work folder first
#
# Python: $MLTRAIN_BUILD_PYTHON, else the project's .venv (scripts/setup.sh makes it), else a
# build venv in build/venv with the window's dependencies. PyInstaller is installed into it when
# missing. TensorFlow is never bundled (the spec excludes it): jobs run in their own environment.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

BUNDLE_ONLY=0; IF_CHANGED=0; CLEAN=()
for arg in "$@"; do
  case "$arg" in
    --bundle-only) BUNDLE_ONLY=1 ;;
    --if-changed) IF_CHANGED=1 ;;
    --clean) CLEAN=(--clean) ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done
PYINSTALLER_REQ="${PYINSTALLER_REQ:-pyinstaller==6.22.3}"
APP=mltrain-desktop
DIST="$here/dist"
WORK="$here/build"
mkdir -p "$DIST" "$WORK"

now_ms() { date +%s%3N; }
t_start=$(now_ms)

# One build at a time in this checkout (two test sessions may ask at once).
exec 9>"$WORK/.build.lock"
flock 9

# -- tools: PyInstaller reads shared libraries' dependencies with ldd and objdump (binutils) ----
if ! command -v objdump >/dev/null || ! command -v ldd >/dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "build: installing binutils (objdump) for PyInstaller"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends binutils libc-bin >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends binutils libc-bin >/dev/null; }
  else
    echo "build: PyInstaller needs objdump and ldd: sudo apt-get install binutils" >&2; exit 1
  fi
fi

# -- the Python that builds -------------------------------------------------------------------
if [ -n "${MLTRAIN_BUILD_PYTHON:-}" ]; then
  PY="$MLTRAIN_BUILD_PYTHON"
elif [ -x "$here/.venv/bin/python" ] && "$here/.venv/bin/python" -c "import PySide6, pyqtgraph" 2>/dev/null; then
  PY="$here/.venv/bin/python"
else
  PY="$WORK/venv/bin/python"
  if ! [ -x "$PY" ] || ! "$PY" -c "import PySide6, pyqtgraph, mltrain_desktop" 2>/dev/null; then
    echo "build: making a build environment in $WORK/venv"
    python3 -m venv "$WORK/venv"
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q ".[gui]"
  fi
fi
if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
  echo "build: installing $PYINSTALLER_REQ into $("$PY" -c 'import sys; print(sys.prefix)')"
  "$PY" -m pip install -q --disable-pip-version-check "$PYINSTALLER_REQ"
fi

VERSION="$("$PY" -c 'import re; print(re.search(r"__version__ = \"([^\"]+)\"", open("mltrain_desktop/__init__.py").read()).group(1))')"
ARCH="$(uname -m)"
HASH="$("$PY" packaging/source_hash.py)"
TARBALL="$DIST/$APP-$VERSION-linux-$ARCH.tar.gz"
DEBARCH="$(dpkg --print-architecture 2>/dev/null || echo "$ARCH")"
DEB="$DIST/${APP}_${VERSION}_${DEBARCH}.deb"

if [ "$IF_CHANGED" = 1 ] && [ "$(cat "$DIST/$APP.source-hash" 2>/dev/null)" = "$HASH" ] \
   && [ -x "$DIST/$APP/$APP" ] && { [ "$BUNDLE_ONLY" = 1 ] || [ -f "$TARBALL" ]; }; then
  echo "build: dist/$APP is up to date (source $HASH); nothing to do"
  exit 0
fi
rm -f "$DIST/$APP.source-hash" "$DIST/build-report.json"

# -- build information ------------------------------------------------------------------------
COMMIT="unknown"
if command -v git >/dev/null && git -C "$here" rev-parse --git-dir >/dev/null 2>&1; then
  COMMIT="$(git -C "$here" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  if [ "$COMMIT" != unknown ] && [ -n "$(git -C "$here" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    COMMIT="$COMMIT+dirty"
  fi
fi
BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# "The venv the app came from": the project's venv, where jobs find TensorFlow on this machine.
BUILD_PYTHON=""
[ -x "$here/.venv/bin/python" ] && BUILD_PYTHON="$here/.venv/bin/python"
mkdir -p "$WORK/buildinfo"
export MLTRAIN_BUILD_INFO="$WORK/buildinfo/_build_info.py"
"$PY" - "$MLTRAIN_BUILD_INFO" "$VERSION" "$COMMIT" "$BUILD_DATE" "$BUILD_PYTHON" <<'EOF'
import sys
path, version, commit, date, python = sys.argv[1:6]
with open(path, "w", encoding="utf-8") as fh:
    fh.write('"""Generated by packaging/build.sh; do not edit."""\n')
    for key, value in (("VERSION", version), ("COMMIT", commit), ("BUILD_DATE", date), ("BUILD_PYTHON", python)):
        fh.write(f"{key} = {value!r}\n")
EOF
echo "build: MLTrain Desktop $VERSION, commit $COMMIT, with $("$PY" -m PyInstaller --version 2>/dev/null | tail -1) on $("$PY" -c 'import platform; print(platform.python_version())')"

# -- the bundle -------------------------------------------------------------------------------
t_pi=$(now_ms)
"$PY" -m PyInstaller --noconfirm "${CLEAN[@]}" --log-level WARN --distpath "$DIST" --workpath "$WORK/pyinstaller" \
  packaging/mltrain.spec
t_pi_end=$(now_ms)
[ -x "$DIST/$APP/$APP" ] && [ -L "$DIST/$APP/mltrain" ] || { echo "build: the bundle is incomplete" >&2; exit 1; }
"$DIST/$APP/mltrain" --version >/dev/null || { echo "build: the bundle does not start" >&2; exit 1; }

# -- icons ------------------------------------------------------------------------------------
rm -rf "$WORK/icons"
"$PY" packaging/make_icons.py "$WORK/icons" >/dev/null

TAR_BYTES=0; DEB_BYTES=0; APPIMAGE="skipped"; t_tar=0; t_deb=0
if [ "$BUNDLE_ONLY" = 0 ]; then
  # -- tar.gz: the folder, the desktop entry and the icons, hard links (no copies) in build/stage
  t0=$(now_ms)
  stage="$WORK/stage"; top="$APP-$VERSION"
  rm -rf "$stage"; mkdir -p "$stage"
  cp -al "$DIST/$APP" "$stage/$top"
  mkdir -p "$stage/$top/share/applications" "$stage/$top/share/icons"
  cp packaging/linux/mltrain-desktop.desktop "$stage/$top/share/applications/"
  cp -r "$WORK/icons/hicolor" "$stage/$top/share/icons/"
  cat > "$stage/$top/INSTALL.txt" <<EOF
MLTrain Desktop $VERSION (commit $COMMIT, built $BUILD_DATE)

Run it from here:     ./mltrain-desktop        (the window)
                      ./mltrain --help         (the command line)
                      ./mltrain-desktop --self-test   (checks the installation, no screen needed)
Install for this user:
  mkdir -p ~/.local/opt ~/.local/bin && cp -a . ~/.local/opt/mltrain-desktop
  ln -sf ~/.local/opt/mltrain-desktop/mltrain-desktop ~/.local/opt/mltrain-desktop/mltrain ~/.local/bin/
  cp -r share/applications share/icons ~/.local/share/
Training jobs need a Python with TensorFlow (the app does not include it). Make one with
  python3 -m venv ~/.local/share/mltrain-desktop/python && ~/.local/share/mltrain-desktop/python/bin/pip install tensorflow-cpu==2.21.0
or choose another in the Compute view (or set MLTRAIN_PYTHON).
EOF
  rm -f "$TARBALL"
  if command -v pigz >/dev/null; then
    tar -C "$stage" -cf - "$top" | pigz -6 > "$TARBALL"
  else
    tar -C "$stage" -czf "$TARBALL" "$top"
  fi
  TAR_BYTES=$(stat -c %s "$TARBALL")
  t_tar=$(( $(now_ms) - t0 ))

  # -- .deb: /opt/mltrain-desktop, /usr/bin links, desktop entry, icons (dpkg's triggers refresh
  #    the desktop database and the icon cache; no maintainer scripts are needed)
  if command -v dpkg-deb >/dev/null; then
    t0=$(now_ms)
    root="$WORK/deb/root"
    rm -rf "$WORK/deb"; mkdir -p "$root/opt" "$root/usr/bin" "$root/usr/share/applications" "$root/usr/share/icons" \
      "$root/usr/share/doc/$APP" "$root/DEBIAN"
    cp -al "$DIST/$APP" "$root/opt/$APP"
    ln -s "/opt/$APP/$APP" "$root/usr/bin/$APP"
    ln -s "/opt/$APP/mltrain" "$root/usr/bin/mltrain"
    cp packaging/linux/mltrain-desktop.desktop "$root/usr/share/applications/"
    cp -r "$WORK/icons/hicolor" "$root/usr/share/icons/"
    cp "$stage/$top/INSTALL.txt" "$root/usr/share/doc/$APP/README"
    size_kb=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
    cat > "$root/DEBIAN/control" <<EOF
Package: $APP
Version: $VERSION
Section: science
Priority: optional
Architecture: $DEBARCH
Installed-Size: $size_kb
Maintainer: MLTrain Desktop developers <mltrain-desktop@users.noreply.invalid>
Depends: libc6 (>= 2.34), libgl1, libegl1, libfontconfig1, libfreetype6, libxkbcommon0, libdbus-1-3, libglib2.0-0
Recommends: python3-venv, libxcb-cursor0, libxkbcommon-x11-0, libxcb-icccm4, libxcb-keysyms1, libxcb-image0, libxcb-render-util0, libxcb-shape0, libxcb-xkb1
Suggests: docker.io, openmpi-bin, dataset-fashion-mnist
Description: train TensorFlow models on your own machine
 MLTrain Desktop re-creates Azure Machine Learning's "train TensorFlow at
 scale" workflow locally: a workspace, experiments, versioned file datasets,
 compute targets (local processes, Docker containers, MPI and
 parameter-server jobs), runs with live logs and loss curves, a model
 registry and local deployment. It has a window (mltrain-desktop) and a
 command line (mltrain).
 .
 TensorFlow is not included: jobs run in a Python environment of their own,
 e.g. one made with python3 -m venv and pip install tensorflow-cpu.
EOF
    rm -f "$DEB"
    dpkg-deb --root-owner-group -Zgzip --build "$root" "$DEB" >/dev/null
    DEB_BYTES=$(stat -c %s "$DEB")
    t_deb=$(( $(now_ms) - t0 ))
  fi

  # -- AppImage: only with appimagetool (not packaged by Debian 12 nor on PyPI; it is not
  #    downloaded here, since only the package registries are reachable)
  if command -v appimagetool >/dev/null; then
    appdir="$WORK/AppDir"
    rm -rf "$appdir"; mkdir -p "$appdir"
    cp -al "$DIST/$APP" "$appdir/$APP"
    cp packaging/linux/mltrain-desktop.desktop "$appdir/"
    cp packaging/linux/mltrain-desktop.svg "$appdir/"
    cat > "$appdir/AppRun" <<'EOF'
#!/bin/sh
here="$(dirname "$(readlink -f "$0")")"
case "$(basename "${ARGV0:-$0}")" in
  mltrain|mltrain-*.AppImage.mltrain) exec "$here/mltrain-desktop/mltrain" "$@" ;;
esac
exec "$here/mltrain-desktop/mltrain-desktop" "$@"
EOF
    chmod +x "$appdir/AppRun"
    out="$DIST/MLTrain_Desktop-$VERSION-$ARCH.AppImage"
    ARCH="$ARCH" appimagetool --no-appstream "$appdir" "$out" >/dev/null
    APPIMAGE="$out"
  else
    APPIMAGE="skipped: appimagetool not found (Debian 12 does not package it and PyPI has no wheel of it)"
  fi
fi

t_end=$(now_ms)
BUNDLE_BYTES=$(du -sb "$DIST/$APP" | cut -f1)
BUNDLE_FILES=$(find "$DIST/$APP" -type f | wc -l)
echo "$HASH" > "$DIST/$APP.source-hash"
"$PY" - "$DIST/build-report.json" <<EOF
import json, sys
report = {
    "version": "$VERSION", "commit": "$COMMIT", "build_date": "$BUILD_DATE", "source_hash": "$HASH",
    "pyinstaller_seconds": round(($t_pi_end - $t_pi) / 1000, 1),
    "tar_seconds": round($t_tar / 1000, 1), "deb_seconds": round($t_deb / 1000, 1),
    "total_seconds": round(($t_end - $t_start) / 1000, 1),
    "bundle_bytes": $BUNDLE_BYTES, "bundle_files": $BUNDLE_FILES,
    "tar_gz": "$( [ "$BUNDLE_ONLY" = 0 ] && echo "$TARBALL" )", "tar_gz_bytes": $TAR_BYTES,
    "deb": "$( [ "$BUNDLE_ONLY" = 0 ] && [ "$DEB_BYTES" != 0 ] && echo "$DEB" )", "deb_bytes": $DEB_BYTES,
    "appimage": "$APPIMAGE",
}
json.dump(report, open(sys.argv[1], "w"), indent=2)
EOF
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }
echo "build: bundle   dist/$APP: $(mb "$BUNDLE_BYTES") in $BUNDLE_FILES files (PyInstaller $(( (t_pi_end - t_pi) / 1000 )) s)"
if [ "$BUNDLE_ONLY" = 0 ]; then
  echo "build: archive  ${TARBALL#$here/}: $(mb "$TAR_BYTES") ($(( t_tar / 1000 )) s)"
  [ "$DEB_BYTES" != 0 ] && echo "build: package  ${DEB#$here/}: $(mb "$DEB_BYTES") ($(( t_deb / 1000 )) s)"
  echo "build: AppImage $APPIMAGE"
fi
echo "build: done in $(( (t_end - t_start) / 1000 )) s"
