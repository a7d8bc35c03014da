#!/usr/bin/env python3
"""Writes the small Fashion-MNIST subset shipped in resources/data/fashion-mnist-small/.

Reads the four idx gz files of the full data set (by default Debian's package files in
/usr/share/datasets/fashion-mnist/), keeps the first N training and M test examples, and
writes them back in exactly the same idx format with the counts in the headers corrected.
The gzip streams carry no file name and mtime=0, so the output bytes are reproducible.

Usage:
    python scripts/make_sample_subset.py [--source DIR] [--dest DIR] [--train N] [--test M]
"""
from __future__ import annotations

import argparse
import gzip
import io
import struct
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_DEST = REPO / "resources" / "data" / "fashion-mnist-small"

IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension

FILES = {
    # name: (magic, subset)
    "train-images-idx3-ubyte.gz": (IMAGES_MAGIC, "train"),
    "train-labels-idx1-ubyte.gz": (LABELS_MAGIC, "train"),
    "t10k-images-idx3-ubyte.gz": (IMAGES_MAGIC, "test"),
    "t10k-labels-idx1-ubyte.gz": (LABELS_MAGIC, "test"),
}


def read_idx(path: Path, expected_magic: int) -> tuple[tuple[int, ...], bytes]:
    """Returns (dims, payload) of an idx gz file, checking its magic number and size."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4:
        raise ValueError(f"{path}: too short to be an idx file")
    (magic,) = struct.unpack(">i", raw[:4])
    if magic != expected_magic:
        raise ValueError(f"{path}: magic number {magic}, expected {expected_magic}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}i", raw[4:header])
    payload = raw[header:]
    expected = 1
    for d in dims:
        expected *= d
    if len(payload) != expected:
        raise ValueError(f"{path}: {len(payload)} data bytes, header says {expected}")
    return dims, payload


def write_idx(path: Path, magic: int, dims: tuple[int, ...], payload: bytes) -> None:
    """Writes an idx gz file with a fixed gzip header (no name, mtime=0)."""
    raw = struct.pack(f">i{len(dims)}i", magic, *dims) + payload
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    path.write_bytes(buf.getvalue())


def make_subset(source: Path, dest: Path, n_train: int, n_test: int) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (magic, subset) in FILES.items():
        n = n_train if subset == "train" else n_test
        dims, payload = read_idx(source / name, magic)
        if n > dims[0]:
            raise ValueError(f"{source / name} has {dims[0]} examples, asked for {n}")
        per_item = len(payload) // dims[0] if dims[0] else 0
        out = dest / name
        write_idx(out, magic, (n, *dims[1:]), payload[: n * per_item])
        written.append(out)
        print(f"{out}: {n} of {dims[0]} examples, {out.stat().st_size} bytes")
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    p.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--test", type=int, default=500)
    args = p.parse_args(argv)
    try:
        make_subset(args.source, args.dest, args.train, args.test)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
