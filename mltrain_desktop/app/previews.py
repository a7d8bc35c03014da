"""Dataset previews: the first images (and labels) of an MNIST-format dataset version, as arrays."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def mnist_preview(ws, state, version_id: int, count: int = 32) -> dict | None:
    """The first ``count`` images of an MNIST-format images file in the version, as uint8 arrays."""
    from ..core.dataset import Dataset
    from ..store.blobstore import BlobStore
    ds = Dataset.get_by_id(ws, version_id)
    files = [f for f in ds.files if "images-idx3-ubyte" in f["path"]]
    if not files:
        return None
    f = sorted(files, key=lambda f: ("train" not in f["path"], f["path"]))[0]
    store = BlobStore(ws.blobs_dir)
    path = _blob_path(store, f["sha256"])
    if path is None:
        return None
    images = read_idx_images(path, count)
    if images is None:
        return None
    labels = None
    lab = next((g for g in ds.files if g["path"] == f["path"].replace("images-idx3", "labels-idx1")), None)
    if lab is not None:
        lp = _blob_path(store, lab["sha256"])
        labels = read_idx_labels(lp, count) if lp else None
    return {"file": f["path"], "images": images, "labels": labels}


def _blob_path(store, digest: str) -> Path | None:
    p = Path(store.path_of(digest))
    return p if p.is_file() else None


def _open_maybe_gz(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx_images(path: Path, count: int) -> np.ndarray | None:
    try:
        with _open_maybe_gz(path) as fh:
            head = fh.read(16)
            if len(head) < 16:
                return None
            magic, n, rows, cols = struct.unpack(">IIII", head)
            if magic != 2051 or rows * cols == 0 or rows > 512 or cols > 512:
                return None
            k = min(count, n)
            data = fh.read(k * rows * cols)
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    k = len(data) // (rows * cols)
    return np.frombuffer(data[: k * rows * cols], dtype=np.uint8).reshape(k, rows, cols)


def read_idx_labels(path: Path, count: int) -> list[int] | None:
    try:
        with _open_maybe_gz(path) as fh:
            head = fh.read(8)
            magic, n = struct.unpack(">II", head)
            if magic != 2049:
                return None
            return list(fh.read(min(count, n)))
    except (OSError, EOFError, struct.error, gzip.BadGzipFile):
        return None
