"""The packaged app's figures: bundle size, build time, and cold start to first paint of the
window, packaged vs. from source, offscreen.

Start-up is the wall time from starting the process to the window's first paint event
(``--self-test --first-paint``: the window is built as ``mltrain-desktop`` builds it, with no
workspace open, and the process exits at its first paint); ``mltrain --version`` is timed too.
The first start of each is reported apart ("first"), then the median of the warm starts. With
``--cold`` (root only; it empties the whole machine's page cache, so other programs read from
disk again for a while) the page cache is dropped before each first start, which makes it a
true cold start; without it "first" is only as cold as the cache happens to be.

    python benchmarks/bench_packaging.py [--runs 5] [--build] [--cold]

``--build`` (re)builds with ``packaging/build.sh --if-changed`` first; otherwise the figures of
the last build are read from ``dist/build-report.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DIST = REPO / "dist"
BUNDLE = DIST / "mltrain-desktop"
PY = sys.executable


def first_paint(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds from spawn to the 'first-paint' line, seconds the process reported)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
    assert proc.stdout is not None
    wall = reported = float("nan")
    for line in proc.stdout:
        if line.startswith("first-paint"):
            wall = time.perf_counter() - t0
            reported = float(line.split()[1])
            break
    proc.wait(timeout=60)
    if wall != wall:
        raise SystemExit(f"{cmd[0]} did not report its first paint")
    return wall, reported


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True, cwd=REPO)
    return time.perf_counter() - t0


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def series(fn, cmd, runs: int, cold: bool = False) -> tuple[float, float]:
    if cold and not drop_caches():
        raise SystemExit("--cold: cannot drop the page cache (needs root)")
    first = fn(cmd)
    first = first[0] if isinstance(first, tuple) else first
    rest = []
    for _ in range(runs):
        r = fn(cmd)
        rest.append(r[0] if isinstance(r, tuple) else r)
    return first, statistics.median(rest)


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="warm starts to take the median of")
    ap.add_argument("--build", action="store_true", help="run packaging/build.sh --if-changed first")
    ap.add_argument("--cold", action="store_true", help="drop the page cache before each first start (root)")
    args = ap.parse_args()
    if args.build:
        subprocess.run(["bash", str(REPO / "packaging" / "build.sh"), "--if-changed"], check=True, cwd=REPO)
    report_file = DIST / "build-report.json"
    if not report_file.is_file() or not (BUNDLE / "mltrain-desktop").is_file():
        raise SystemExit("no bundle: run packaging/build.sh (or this script with --build) first")
    report = json.loads(report_file.read_text())

    print(f"MLTrain Desktop {report['version']} (commit {report['commit']}, built {report['build_date']}); "
          f"{os.cpu_count()} CPUs")
    print("\n== Size ==")
    print(f"bundle dist/mltrain-desktop   {mb(report['bundle_bytes']):>10}  ({report['bundle_files']} files)")
    internal = BUNDLE / "_internal"
    parts = {}
    for child in internal.iterdir():
        size = sum(f.stat().st_size for f in ([child] if child.is_file() else child.rglob("*")) if f.is_file()
                   and not f.is_symlink())
        key = child.name if size > 5e6 else "(everything else)"
        parts[key] = parts.get(key, 0) + size
    for name, size in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<28} {mb(size):>10}")
    if report.get("tar_gz_bytes"):
        print(f"tar.gz                         {mb(report['tar_gz_bytes']):>10}")
    if report.get("deb_bytes"):
        print(f".deb                           {mb(report['deb_bytes']):>10}")
    print(f"AppImage                       {report.get('appimage')}")

    print("\n== Build time (packaging/build.sh, from its report) ==")
    print(f"PyInstaller {report['pyinstaller_seconds']:.0f} s, tar.gz {report['tar_seconds']:.0f} s, "
          f".deb {report['deb_seconds']:.0f} s, total {report['total_seconds']:.0f} s")

    first_kind = "cold start, page cache dropped" if args.cold else "first start"
    print(f"\n== Start-up, offscreen ({first_kind}, then median of {args.runs} warm starts) ==")
    rows = [
        ("window to first paint, packaged", first_paint,
         [str(BUNDLE / "mltrain-desktop"), "--self-test", "--first-paint"]),
        ("window to first paint, source", first_paint,
         [PY, "-m", "mltrain_desktop.gui.self_test", "--first-paint"]),
        ("mltrain --version, packaged", timed, [str(BUNDLE / "mltrain"), "--version"]),
        ("mltrain --version, source", timed, [PY, "-m", "mltrain_desktop.cli", "--version"]),
    ]
    print(f"{'':36} {'first':>8} {'median':>8}")
    for label, fn, cmd in rows:
        first, median = series(fn, cmd, args.runs, args.cold)
        print(f"{label:36} {first:7.2f}s {median:7.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
