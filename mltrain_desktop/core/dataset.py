"""File datasets: files, folders, globs or http(s) URLs registered as immutable, versioned sets.

Bodies go to the workspace's content-addressed blob store; a version is a manifest (relative
path -> sha256) in the database. A run gets a version as a read-only folder (``as_mount``) or
a private copy (``as_download``).
"""
from __future__ import annotations

import glob as globmod
import hashlib
import json
import os
import shutil
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Callable, Iterable

from .blobstore import BlobStore
from .errors import DatasetError

Progress = Callable[[int, int, str], None]  # (bytes done, bytes total or 0, message)
URL_TIMEOUT = 30.0


def _is_url(s: str) -> bool:
    return s.startswith(("http://", "https://"))


def _expand_sources(paths: Iterable[str]) -> list[tuple[str, str]]:
    """Returns (relative path in the dataset, source path or URL) for every file."""
    out: list[tuple[str, str]] = []
    for raw in paths:
        if not isinstance(raw, (str, os.PathLike)):
            raise DatasetError(f"dataset path {raw!r} is not a string; give file paths, folders, globs or URLs")
        src = os.fspath(raw)
        if _is_url(src):
            name = Path(urllib.parse.urlparse(src).path).name
            if not name:
                raise DatasetError(f"URL {src} does not end in a file name; point it at a file")
            out.append((name, src))
            continue
        if src.startswith(("ftp://", "s3://", "azureml://", "wasbs://")):
            raise DatasetError(f"{src}: only local paths and http(s) URLs are supported here")
        if any(ch in src for ch in "*?["):
            matches = sorted(globmod.glob(src, recursive=True))
            files = [m for m in matches if os.path.isfile(m)]
            if not files:
                raise DatasetError(f"the pattern {src} matches no files; check the path")
            base = Path(src.split("*")[0].split("?")[0].split("[")[0])
            base = base if base.is_dir() else base.parent
            out.extend((Path(m).resolve().relative_to(base.resolve()).as_posix(), m) for m in files)
            continue
        p = Path(src).expanduser()
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file())
            if not files:
                raise DatasetError(f"the folder {p} holds no files")
            out.extend((f.relative_to(p).as_posix(), str(f)) for f in files)
        elif p.is_file():
            out.append((p.name, str(p)))
        else:
            raise DatasetError(f"{p} does not exist; check the path (files, folders, globs and http(s) URLs are accepted)")
    if not out:
        raise DatasetError("no files given: pass at least one file, folder, glob or URL")
    seen: dict[str, str] = {}
    for rel, src in out:
        if rel in seen and seen[rel] != src:
            raise DatasetError(f"two sources map to the same dataset path {rel!r}: {seen[rel]} and {src}; "
                               "rename one or register the folder that holds them")
        seen[rel] = src
    return list(seen.items())


def _download(url: str, store: BlobStore, tmp_dir: Path, progress: Progress | None) -> tuple[str, int]:
    import urllib.error
    import urllib.request  # loads http.client, ssl and email: only when a URL is downloaded
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="download-")
    h = hashlib.sha256()
    done = 0
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "mltrain-desktop"})
        try:
            resp = urllib.request.urlopen(req, timeout=URL_TIMEOUT)
        except urllib.error.HTTPError as exc:
            raise DatasetError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}; check the URL") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DatasetError(f"downloading {url} failed: {reason}; check the URL and the network") from exc
        with resp, os.fdopen(fd, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0)
            while True:
                try:
                    chunk = resp.read(1 << 16)
                except (TimeoutError, OSError) as exc:
                    raise DatasetError(f"downloading {url} failed after {done} bytes: {exc}; try again") from exc
                if not chunk:
                    break
                out.write(chunk)
                h.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total, f"downloading {url}")
        if total and done != total:
            raise DatasetError(f"downloading {url} stopped at {done} of {total} bytes; try again")
        return store.adopt(Path(tmp), h.hexdigest()), done
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class DatasetConsumptionConfig:
    """A dataset handed to a run under a name, mounted read-only or downloaded."""

    def __init__(self, name: str, dataset: "FileDataset", mode: str = "mount", path_on_compute: str | None = None):
        if not name or not isinstance(name, str):
            raise DatasetError("as_named_input needs a non-empty name")
        self.name = name
        self.dataset = dataset
        self.mode = mode
        self.path_on_compute = path_on_compute

    def as_mount(self, path_on_compute: str | None = None) -> "DatasetConsumptionConfig":
        return DatasetConsumptionConfig(self.name, self.dataset, "mount", path_on_compute)

    def as_download(self, path_on_compute: str | None = None) -> "DatasetConsumptionConfig":
        return DatasetConsumptionConfig(self.name, self.dataset, "download", path_on_compute)

    def to_spec(self) -> dict:
        ds = self.dataset
        if ds.version_id is None:
            raise DatasetError(f"dataset input {self.name!r} is not registered; call .register(...) first")
        return {"input": self.name, "dataset": ds.name, "version": ds.version,
                "version_id": ds.version_id, "mode": self.mode}

    def __repr__(self) -> str:
        return f"DatasetConsumptionConfig(name={self.name!r}, dataset={self.dataset.name!r}:{self.dataset.version}, mode={self.mode!r})"


class FileDataset:
    """A set of files: unregistered (sources only) or a registered, immutable version."""

    def __init__(self, sources: list[str] | None = None, *, workspace=None, name=None, version=None,
                 version_id=None, description="", created=None, files=None, total_bytes=0):
        self._sources = list(sources or [])
        self.workspace = workspace
        self.name = name
        self.version = version
        self.version_id = version_id
        self.description = description
        self.created = created
        self._files = files
        self.total_bytes = total_bytes

    @property
    def id(self) -> str | None:
        return f"{self.name}:{self.version}" if self.name else None

    @property
    def is_registered(self) -> bool:
        return self.version_id is not None

    # -- registration -----------------------------------------------------------------------
    def register(self, workspace, name: str, description: str = "", tags=None,
                 create_new_version: bool = False, progress: Progress | None = None,
                 cancel: Callable[[], bool] | None = None) -> "FileDataset":
        if not isinstance(name, str) or not name.strip():
            raise DatasetError("a dataset needs a non-empty name")
        name = name.strip()
        existing = workspace.db.execute("SELECT id FROM datasets WHERE name=?", [name]).fetchone()
        if existing and not create_new_version:
            raise DatasetError(f"a dataset named {name!r} already exists; pass create_new_version=True "
                               "to add a version, or choose another name")
        sources = self._sources
        if not sources and self.is_registered:
            sources = [str(self.mount_path())]
        entries = _expand_sources(sources)
        store = BlobStore(workspace.blobs_dir)
        manifest: list[tuple[str, str, int]] = []
        total_known = sum(os.path.getsize(s) for _r, s in entries if not _is_url(s))
        done_before = 0
        for rel, src in entries:
            if cancel and cancel():
                raise DatasetError("registration canceled; nothing was registered")
            if _is_url(src):
                digest, size = _download(src, store, workspace.path / "tmp", progress)
            else:
                digest, size = store.put_file(Path(src))
                done_before += size
                if progress:
                    progress(done_before, total_known, f"stored {rel}")
            manifest.append((rel, digest, size))
        manifest.sort()
        mhash = hashlib.sha256(json.dumps(manifest).encode()).hexdigest()
        now = time.time()
        with workspace.transaction() as conn:
            row = conn.execute("SELECT id FROM datasets WHERE name=?", [name]).fetchone()
            if row is None:
                ds_id = conn.execute("INSERT INTO datasets (name, created) VALUES (?, ?)", [name, now]).lastrowid
            elif not create_new_version:
                raise DatasetError(f"a dataset named {name!r} already exists; pass create_new_version=True")
            else:
                ds_id = row[0]
            version = conn.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM dataset_versions WHERE dataset_id=?",
                                   [ds_id]).fetchone()[0]
            vid = conn.execute(
                "INSERT INTO dataset_versions (dataset_id, version, description, created, file_count, total_bytes,"
                " manifest_sha256, sources) VALUES (?,?,?,?,?,?,?,?)",
                [ds_id, version, description or "", now, len(manifest), sum(m[2] for m in manifest), mhash,
                 json.dumps([str(s) for s in sources])]).lastrowid
            conn.executemany("INSERT INTO dataset_files (version_id, path, sha256, size) VALUES (?,?,?,?)",
                             [(vid, rel, d, s) for rel, d, s in manifest])
        return Dataset.get_by_name(workspace, name, version)

    # -- use -------------------------------------------------------------------------------
    def _require_registered(self):
        if not self.is_registered:
            raise DatasetError("this dataset is not registered yet; call .register(workspace, name) first")

    @property
    def files(self) -> list[dict]:
        self._require_registered()
        if self._files is None:
            rows = self.workspace.db.execute(
                "SELECT path, sha256, size FROM dataset_files WHERE version_id=? ORDER BY path", [self.version_id])
            self._files = [{"path": p, "sha256": h, "size": s} for p, h, s in rows]
        return self._files

    def to_path(self) -> list[str]:
        if not self.is_registered:
            return [rel for rel, _ in _expand_sources(self._sources) if True]
        return ["/" + f["path"] for f in self.files]

    def mount_path(self) -> Path:
        """The version's read-only folder (hard links into the blob store), made on first use."""
        self._require_registered()
        folder = self.workspace.path / "datasets" / str(self.version_id)
        marker = folder / ".complete"
        if marker.exists():
            missing = [f["path"] for f in self.files if not (folder / f["path"]).exists()]
            if not missing:
                return folder
            raise DatasetError(f"dataset {self.id}: files vanished from its folder {folder}: {missing[:3]}; "
                               "delete that folder to have it rebuilt from the blob store")
        tmp = Path(tempfile.mkdtemp(dir=self.workspace.path / "datasets", prefix=f".{self.version_id}-"))
        store = BlobStore(self.workspace.blobs_dir)
        for f in self.files:
            if not store.has(f["sha256"]):
                shutil.rmtree(tmp, ignore_errors=True)
                raise DatasetError(f"dataset {self.id}: the stored body of {f['path']} is missing from the blob store")
            store.materialize(f["sha256"], tmp / f["path"])
        (tmp / ".complete").write_text("")
        try:
            os.replace(tmp, folder)
        except OSError:  # another client made it first
            shutil.rmtree(tmp, ignore_errors=True)
        for d, _subs, _files in os.walk(folder):
            os.chmod(d, 0o555)
        return folder

    def download(self, target_path: str | Path, overwrite: bool = False) -> list[str]:
        self._require_registered()
        target = Path(target_path)
        src = self.mount_path()
        out = []
        for f in self.files:
            dest = target / f["path"]
            if dest.exists() and not overwrite:
                raise DatasetError(f"{dest} exists; pass overwrite=True to replace it")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / f["path"], dest)
            out.append(str(dest))
        return out

    def mount(self, mount_point=None):
        return _MountContext(self.mount_path())

    def as_named_input(self, name: str) -> DatasetConsumptionConfig:
        return DatasetConsumptionConfig(name, self)

    def as_mount(self, path_on_compute=None) -> DatasetConsumptionConfig:
        return DatasetConsumptionConfig(self.name or "input", self).as_mount(path_on_compute)

    def as_download(self, path_on_compute=None) -> DatasetConsumptionConfig:
        return DatasetConsumptionConfig(self.name or "input", self).as_download(path_on_compute)

    def get_versions(self) -> list["FileDataset"]:
        self._require_registered()
        return Dataset.get_versions(self.workspace, self.name)

    def __repr__(self) -> str:
        if self.is_registered:
            return f"FileDataset(name={self.name!r}, version={self.version}, files={len(self.files)})"
        return f"FileDataset(sources={self._sources!r})"


class _MountContext:
    def __init__(self, path: Path):
        self.mount_point = str(path)

    def start(self):
        return self

    def stop(self):
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _FileFactory:
    @staticmethod
    def from_files(path, validate: bool = True) -> FileDataset:
        paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
        if validate:
            for p in paths:
                s = os.fspath(p) if isinstance(p, (str, os.PathLike)) else p
                if isinstance(s, str) and not _is_url(s) and not any(c in s for c in "*?[") and not os.path.exists(s):
                    raise DatasetError(f"{s} does not exist; check the path")
        return FileDataset(paths)


class Dataset:
    """Entry point, as in the seed: ``Dataset.File.from_files(...)``, ``Dataset.get_by_name(...)``."""

    File = _FileFactory

    @staticmethod
    def _row_to_dataset(ws, row) -> FileDataset:
        vid, name, version, desc, created, total = row
        return FileDataset(workspace=ws, name=name, version=version, version_id=vid, description=desc,
                           created=created, total_bytes=total)

    _SELECT = ("SELECT v.id, d.name, v.version, v.description, v.created, v.total_bytes "
               "FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id ")

    @staticmethod
    def get_by_name(workspace, name: str, version="latest") -> FileDataset:
        if version in (None, "latest"):
            row = workspace.db.execute(Dataset._SELECT + "WHERE d.name=? ORDER BY v.version DESC LIMIT 1", [name]).fetchone()
        else:
            try:
                version = int(version)
            except (TypeError, ValueError):
                raise DatasetError(f"dataset version must be a number or 'latest', got {version!r}") from None
            row = workspace.db.execute(Dataset._SELECT + "WHERE d.name=? AND v.version=?", [name, version]).fetchone()
        if row is None:
            known = [r[0] for r in workspace.db.execute("SELECT name FROM datasets ORDER BY name")]
            if name not in known:
                raise DatasetError(f"no dataset named {name!r} in this workspace; registered datasets: "
                                   f"{', '.join(known) or 'none'}")
            versions = [r[0] for r in workspace.db.execute(
                "SELECT v.version FROM dataset_versions v JOIN datasets d ON d.id=v.dataset_id WHERE d.name=? "
                "ORDER BY v.version", [name])]
            raise DatasetError(f"dataset {name!r} has no version {version}; its versions are {versions}")
        return Dataset._row_to_dataset(workspace, row)

    @staticmethod
    def get_by_id(workspace, version_id: int) -> FileDataset:
        row = workspace.db.execute(Dataset._SELECT + "WHERE v.id=?", [version_id]).fetchone()
        if row is None:
            raise DatasetError(f"no dataset version with id {version_id}")
        return Dataset._row_to_dataset(workspace, row)

    @staticmethod
    def get_versions(workspace, name: str) -> list[FileDataset]:
        rows = workspace.db.execute(Dataset._SELECT + "WHERE d.name=? ORDER BY v.version", [name]).fetchall()
        return [Dataset._row_to_dataset(workspace, r) for r in rows]

    @staticmethod
    def get_all(workspace) -> dict[str, FileDataset]:
        rows = workspace.db.execute(
            Dataset._SELECT + "WHERE v.version = (SELECT MAX(version) FROM dataset_versions WHERE dataset_id=d.id) "
            "ORDER BY d.name").fetchall()
        return {r[1]: Dataset._row_to_dataset(workspace, r) for r in rows}

    @staticmethod
    def list(workspace) -> list[FileDataset]:
        rows = workspace.db.execute(Dataset._SELECT + "ORDER BY d.name, v.version").fetchall()
        return [Dataset._row_to_dataset(workspace, r) for r in rows]


__all__ = ["Dataset", "FileDataset", "DatasetConsumptionConfig", "DatasetError"]
