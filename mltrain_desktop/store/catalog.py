"""The catalog's tables: datasets, their versions and files (registration, lookups, read-only folders)."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from ..domain.errors import DatasetError
from .blobstore import BlobStore
from .sql import where
from .transaction import write_transaction

DATASET_VERSION_SELECT = ("SELECT v.id, d.name, v.version, v.description, v.created, v.total_bytes "
                          "FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id ")


def dataset_version(conn: sqlite3.Connection, version_id: int) -> tuple:
    """(id, name, version, description, created, total_bytes) of one dataset version."""
    row = conn.execute(DATASET_VERSION_SELECT + "WHERE v.id=?", [version_id]).fetchone()
    if row is None:
        raise DatasetError(f"no dataset version with id {version_id}")
    return tuple(row)


def dataset_id(conn: sqlite3.Connection, name: str) -> int | None:
    row = conn.execute("SELECT id FROM datasets WHERE name=?", [name]).fetchone()
    return row[0] if row else None


def dataset_names(conn: sqlite3.Connection) -> list[str]:
    """Every dataset's name, sorted."""
    return [r for (r,) in conn.execute("SELECT name FROM datasets ORDER BY name")]


def version_numbers(conn: sqlite3.Connection, name: str) -> list[int]:
    return [r for (r,) in conn.execute("SELECT v.version FROM dataset_versions v JOIN datasets d "
                                       "ON d.id=v.dataset_id WHERE d.name=? ORDER BY v.version", [name])]


def find_version(conn: sqlite3.Connection, name: str, version: int | None = None) -> tuple | None:
    """(id, name, version, description, created, total_bytes) of the dataset's ``version`` (its
    latest when None), or None if there is no such version."""
    if version is None:
        row = conn.execute(DATASET_VERSION_SELECT + "WHERE d.name=? ORDER BY v.version DESC LIMIT 1",
                           [name]).fetchone()
    else:
        row = conn.execute(DATASET_VERSION_SELECT + "WHERE d.name=? AND v.version=?", [name, version]).fetchone()
    return tuple(row) if row else None


def versions(conn: sqlite3.Connection, name: str | None = None, latest_only: bool = False) -> list[tuple]:
    """Like :func:`find_version`'s rows, by name then version: every version (of ``name`` when
    given), or only each dataset's latest."""
    clause, args = where(("d.name=?", name),
                         ("v.version = (SELECT MAX(version) FROM dataset_versions WHERE dataset_id=d.id)", latest_only))
    return [tuple(r) for r in conn.execute(DATASET_VERSION_SELECT + clause + " ORDER BY d.name, v.version", args)]


def version_listing(conn: sqlite3.Connection) -> list[dict]:
    """Every version with its summary: version_id, name, version, description, created, files,
    bytes, sha256 (of the manifest), sources (JSON text as stored)."""
    rows = conn.execute(
        "SELECT v.id, d.name, v.version, v.description, v.created, v.file_count, v.total_bytes, v.manifest_sha256, "
        "v.sources FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id ORDER BY d.name, v.version")
    keys = ("version_id", "name", "version", "description", "created", "files", "bytes", "sha256", "sources")
    return [dict(zip(keys, r)) for r in rows]


def add_version(conn: sqlite3.Connection, name: str, description: str, manifest: list[tuple[str, str, int]],
                manifest_sha256: str, sources: list[str], create_new_version: bool) -> int:
    """Records a new version of dataset ``name`` (the dataset too, if new) with its files
    ``manifest`` of (path, sha256, size); returns the version number. Refuses to add a version
    to an existing dataset unless ``create_new_version``."""
    now = time.time()
    with write_transaction(conn):
        ds_id = dataset_id(conn, name)
        if ds_id is None:
            ds_id = conn.execute("INSERT INTO datasets (name, created) VALUES (?, ?)", [name, now]).lastrowid
        elif not create_new_version:
            raise DatasetError(f"a dataset named {name!r} already exists; pass create_new_version=True")
        version = conn.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM dataset_versions WHERE dataset_id=?",
                               [ds_id]).fetchone()[0]
        vid = conn.execute(
            "INSERT INTO dataset_versions (dataset_id, version, description, created, file_count, total_bytes,"
            " manifest_sha256, sources) VALUES (?,?,?,?,?,?,?,?)",
            [ds_id, version, description or "", now, len(manifest), sum(m[2] for m in manifest), manifest_sha256,
             json.dumps(sources)]).lastrowid
        conn.executemany("INSERT INTO dataset_files (version_id, path, sha256, size) VALUES (?,?,?,?)",
                         [(vid, rel, d, s) for rel, d, s in manifest])
    return version


def dataset_files(conn: sqlite3.Connection, version_id: int) -> list[dict]:
    rows = conn.execute("SELECT path, sha256, size FROM dataset_files WHERE version_id=? ORDER BY path",
                        [version_id])
    return [{"path": p, "sha256": h, "size": s} for p, h, s in rows]


def dataset_folder(workspace_dir: Path, version_id: int, label: str, files: list[dict]) -> Path:
    """The version's read-only folder (hard links into the blob store), made on first use."""
    workspace_dir = Path(workspace_dir)
    folder = workspace_dir / "datasets" / str(version_id)
    if (folder / ".complete").exists():
        missing = [f["path"] for f in files if not (folder / f["path"]).exists()]
        if not missing:
            return folder
        raise DatasetError(f"dataset {label}: files vanished from its folder {folder}: {missing[:3]}; "
                           "delete that folder to have it rebuilt from the blob store")
    tmp = Path(tempfile.mkdtemp(dir=workspace_dir / "datasets", prefix=f".{version_id}-"))
    store = BlobStore(workspace_dir / "blobs")
    for f in files:
        if not store.has(f["sha256"]):
            shutil.rmtree(tmp, ignore_errors=True)
            raise DatasetError(f"dataset {label}: the stored body of {f['path']} is missing from the blob store")
        store.materialize(f["sha256"], tmp / f["path"])
    (tmp / ".complete").write_text("")
    try:
        os.replace(tmp, folder)
    except OSError:  # another client made it first
        shutil.rmtree(tmp, ignore_errors=True)
    for d, _subs, _files in os.walk(folder):
        os.chmod(d, 0o555)
    return folder


def copy_dataset(folder: Path, files: list[dict], target: Path, overwrite: bool = False) -> list[str]:
    """Copies a version's files from its folder into ``target``; refuses to replace a file unless asked."""
    out = []
    for f in files:
        dest = Path(target) / f["path"]
        if dest.exists() and not overwrite:
            raise DatasetError(f"{dest} exists; pass overwrite=True to replace it")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(folder) / f["path"], dest)
        out.append(str(dest))
    return out
