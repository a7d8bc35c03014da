"""Reads MNIST-format (idx, gzip-compressed) files into numpy arrays.

Only needs numpy and the standard library. Same ``load_data(filename, label=False)`` as the
Azure ML sample's utils.py: images come back as a uint8 array of shape (n, rows * cols), labels
as a uint8 array of shape (n, 1).
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (n, rows, cols)
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (n,)


class IdxFormatError(ValueError):
    """The file exists but is not a well-formed idx gz file of the expected kind."""


def _read_exact(fh, n: int, filename, what: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise IdxFormatError(
            f"{filename}: truncated idx file: expected {n} bytes of {what}, got {len(data)}"
        )
    return data


def load_data(filename, label: bool = False) -> np.ndarray:
    """Loads an idx gz file: images (label=False) as (n, rows*cols) uint8, labels as (n, 1).

    Raises FileNotFoundError naming the file when it is missing, and IdxFormatError (a
    ValueError) naming the file when it is not gzip, has the wrong magic number or is cut short.
    """
    filename = os.fspath(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f"MNIST data file not found: {filename}")
    expected_magic = LABELS_MAGIC if label else IMAGES_MAGIC
    kind = "labels" if label else "images"
    try:
        with gzip.open(filename, "rb") as gz:
            (magic,) = struct.unpack(">i", _read_exact(gz, 4, filename, "magic number"))
            if magic != expected_magic:
                hint = ""
                if magic == IMAGES_MAGIC and label:
                    hint = " (this looks like an images file; call load_data(..., label=False))"
                elif magic == LABELS_MAGIC and not label:
                    hint = " (this looks like a labels file; call load_data(..., label=True))"
                raise IdxFormatError(
                    f"{filename}: bad magic number {magic} (0x{magic & 0xFFFFFFFF:08x}); "
                    f"an idx {kind} file starts with {expected_magic} (0x{expected_magic:08x}){hint}"
                )
            (n_items,) = struct.unpack(">i", _read_exact(gz, 4, filename, "item count"))
            if label:
                shape = (n_items, 1)
                size = n_items
            else:
                n_rows, n_cols = struct.unpack(">ii", _read_exact(gz, 8, filename, "image size"))
                shape = (n_items, n_rows * n_cols)
                size = n_items * n_rows * n_cols
            if min(shape) < 0:
                raise IdxFormatError(f"{filename}: negative dimension in header {shape}")
            data = _read_exact(gz, size, filename, f"{kind} data")
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise IdxFormatError(f"{filename}: not a readable gzip-compressed idx file: {exc}") from exc
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)
