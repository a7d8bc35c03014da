"""Finding the model to serve, with the standard library only, so that a wrong path or a file
that is no model fails fast, before TensorFlow is imported."""
from __future__ import annotations

import dataclasses
import os
import zipfile
from pathlib import Path

from .errors import model_error

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclasses.dataclass(frozen=True)
class ResolvedModel:
    kind: str     # "keras" (a .keras/.h5 file) or "saved_model" (a folder)
    path: Path


def resolve_model_path(path: str | os.PathLike) -> ResolvedModel:
    """Where the model is and what it is.

    A ``.keras``/``.h5`` file; or a folder holding ``model.keras`` (preferred), a SavedModel
    (``saved_model.pb``), a single ``*.keras`` / ``*.h5`` file, or one of those in a
    ``saved_model/`` or other subfolder (two levels at most, e.g. a registered copy of the
    sample's ``outputs/`` folder).
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise model_error(f"model path does not exist: {p}")
    if p.is_file():
        if p.suffix.lower() in KERAS_SUFFIXES:
            return ResolvedModel("keras", p)
        if p.name == "saved_model.pb":
            return ResolvedModel("saved_model", p.parent)
        raise model_error(
            f"not a loadable model: {p} is neither a Keras file (.keras, .h5) nor a SavedModel "
            "(a folder with saved_model.pb)")
    found = _find_in_dir(p, depth=2)
    if found is None:
        raise model_error(
            f"not a loadable model: no model found in folder {p}; expected model.keras, a "
            "*.keras or *.h5 file, or a SavedModel (saved_model.pb), directly or in a subfolder")
    return found


def _find_in_dir(d: Path, depth: int) -> ResolvedModel | None:
    if (d / "model.keras").is_file():
        return ResolvedModel("keras", d / "model.keras")
    if (d / "saved_model.pb").is_file():
        return ResolvedModel("saved_model", d)
    try:
        entries = sorted(d.iterdir())
    except OSError as e:
        raise model_error(f"cannot list model folder {d}: {e}") from None
    for suffixes in ((".keras",), (".h5", ".hdf5")):
        files = [e for e in entries if e.is_file() and e.suffix.lower() in suffixes]
        if len(files) == 1:
            return ResolvedModel("keras", files[0])
        if len(files) > 1:
            raise model_error(f"several models in {d} ({', '.join(f.name for f in files)}); "
                              "give the path of the one to serve")
    if depth <= 0:
        return None
    subdirs = [e for e in entries if e.is_dir() and not e.name.startswith(".")]
    if (d / "saved_model").is_dir():
        subdirs = [d / "saved_model"] + [s for s in subdirs if s.name != "saved_model"]
    hits = []
    for s in subdirs:
        r = _find_in_dir(s, depth - 1)
        if r is not None:
            if s.name == "saved_model" and not hits:
                return r
            hits.append(r)
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise model_error(f"several models under {d} ({', '.join(str(h.path) for h in hits)}); "
                          "give the path of the one to serve")
    return None


_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def check_model_file(resolved: ResolvedModel) -> None:
    """Cheap sanity check of a Keras file's format, before TensorFlow is imported (Keras's own
    error for a .keras file that is not a zip says "File not found", which misleads)."""
    if resolved.kind != "keras":
        return
    p = resolved.path
    try:
        if p.suffix.lower() == ".keras":
            if not zipfile.is_zipfile(p):
                raise model_error(f"not a loadable model: {p} is not a Keras archive (a "
                                  ".keras file is a zip written by model.save())")
        else:
            with open(p, "rb") as f:
                head = f.read(2048 + 8)
            if not any(head[o:o + 8] == _HDF5_MAGIC for o in (0, 512, 1024, 2048)):
                raise model_error(f"not a loadable model: {p} is not an HDF5 file")
    except OSError as e:
        raise model_error(f"cannot read model file {p}: {e.strerror or e}") from None
