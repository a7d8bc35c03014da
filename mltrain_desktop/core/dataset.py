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
import re
import tempfile
import urllib.parse
from pathlib import Path
from typing import Callable, Iterable

from ..store import catalog
from ..store.blobstore import BlobStore
from .errors import DatasetError

Progress = Callable[[int, int, str], None]  # (bytes done, bytes total or 0, message)
URL_TIMEOUT = 30.0
# A run gets an input as run_dir/inputs/NAME and as an environment variable's name: an identifier.
INPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def check_input_name(name) -> str:
    """``name`` if it can name a run's dataset input, else a DatasetError saying what is allowed."""
    if not isinstance(name, str) or not INPUT_NAME.fullmatch(name):
        raise DatasetError(f"dataset input name {name!r} is not valid: use 1 to 64 letters, digits and '_', "
                           "not starting with a digit (for example 'mnist' or 'train_data')")
    return name


def input_name_for(ds_name) -> str:
    """The default input name for a dataset: its name with every other character made '_'."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", str(ds_name or "")).strip("_")[:64] or "input"
    return name if not name[0].isdigit() else f"_{name}"[:64]


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


def dataset_name(name) -> str:
    """A dataset's name as the catalog keeps it (surrounding spaces dropped), or a DatasetError."""
    if not isinstance(name, str) or not name.strip():
        raise DatasetError(f"a dataset needs a non-empty name, got {name!r}")
    return name.strip()


def _store_sources(workspace, sources, progress: Progress | None, cancel) -> tuple[list[tuple[str, str, int]], str]:
    """Puts the sources' files into the blob store: their sorted manifest (path, sha256, size) and its hash."""
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
    return manifest, hashlib.sha256(json.dumps(manifest).encode()).hexdigest()


def register_inputs(workspace, arguments: list) -> None:
    """Registers, in place, every input of a run spec's ``arguments`` made from an unregistered dataset
    (see :meth:`DatasetConsumptionConfig.to_spec`); registered inputs are left as they are."""
    for item in arguments:
        if isinstance(item, dict) and item.get("version_id") is None and item.get("sources"):
            ds = FileDataset(item.pop("sources"))._register_anonymous(workspace)
            item.update(dataset=ds.name, version=ds.version, version_id=ds.version_id)


class DatasetConsumptionConfig:
    """A dataset handed to a run under a name, mounted read-only or downloaded."""

    def __init__(self, name: str, dataset: "FileDataset", mode: str = "mount", path_on_compute: str | None = None):
        self.name = check_input_name(name)
        self.dataset = dataset
        self.mode = mode
        self.path_on_compute = path_on_compute

    def as_mount(self, path_on_compute: str | None = None) -> "DatasetConsumptionConfig":
        return DatasetConsumptionConfig(self.name, self.dataset, "mount", path_on_compute)

    def as_download(self, path_on_compute: str | None = None) -> "DatasetConsumptionConfig":
        return DatasetConsumptionConfig(self.name, self.dataset, "download", path_on_compute)

    def to_spec(self) -> dict:
        """The run spec's input. An unregistered dataset's input names its sources (absolute) and no version
        yet: :func:`register_inputs` registers it when the run is submitted, as Azure does."""
        ds = self.dataset
        if ds.version_id is None:
            if not ds._sources:
                raise DatasetError(f"dataset input {self.name!r} has no files; make it with "
                                   "Dataset.File.from_files(path=...)")
            return {"input": self.name, "dataset": None, "version": None, "version_id": None, "mode": self.mode,
                    "sources": [s if _is_url(str(s)) else os.path.abspath(os.fspath(s)) for s in ds._sources]}
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
        name = dataset_name(name)
        if catalog.dataset_id(workspace.db.conn, name) is not None and not create_new_version:
            raise DatasetError(f"a dataset named {name!r} already exists; pass create_new_version=True "
                               "to add a version, or choose another name")
        sources = self._sources
        if not sources and self.is_registered:
            sources = [str(self.mount_path())]
        manifest, mhash = _store_sources(workspace, sources, progress, cancel)
        version = catalog.add_version(workspace.db.conn, name, description, manifest, mhash,
                                      [str(s) for s in sources], create_new_version)
        return Dataset.get_by_name(workspace, name, version)

    def _register_anonymous(self, workspace) -> "FileDataset":
        """An unregistered dataset used as a run's input: registered as ``anonymous-<hash of its sources>``,
        a new version only when its files changed since the last time."""
        sources = [str(s) for s in self._sources]
        name = "anonymous-" + hashlib.sha256(json.dumps(sorted(sources)).encode()).hexdigest()[:12]
        manifest, mhash = _store_sources(workspace, sources, None, None)
        if catalog.dataset_id(workspace.db.conn, name) is not None:
            latest = Dataset.get_by_name(workspace, name)
            if sorted((f["path"], f["sha256"], f["size"]) for f in latest.files) == [tuple(m) for m in manifest]:
                return latest
        version = catalog.add_version(workspace.db.conn, name, "registered when a run used it as an input",
                                      manifest, mhash, sources, create_new_version=True)
        return Dataset.get_by_name(workspace, name, version)

    # -- use -------------------------------------------------------------------------------
    def _require_registered(self):
        if not self.is_registered:
            raise DatasetError("this dataset is not registered yet; call .register(workspace, name) first")

    @property
    def files(self) -> list[dict]:
        self._require_registered()
        if self._files is None:
            self._files = catalog.dataset_files(self.workspace.db.conn, self.version_id)
        return self._files

    def to_path(self) -> list[str]:
        if not self.is_registered:
            return [rel for rel, _ in _expand_sources(self._sources) if True]
        return ["/" + f["path"] for f in self.files]

    def mount_path(self) -> Path:
        """The version's read-only folder (hard links into the blob store), made on first use."""
        self._require_registered()
        return catalog.dataset_folder(self.workspace.path, self.version_id, self.id, self.files)

    def download(self, target_path: str | Path, overwrite: bool = False) -> list[str]:
        self._require_registered()
        return catalog.copy_dataset(self.mount_path(), self.files, Path(target_path), overwrite)

    def mount(self, mount_point=None):
        return _MountContext(self.mount_path())

    def as_named_input(self, name: str) -> DatasetConsumptionConfig:
        return DatasetConsumptionConfig(name, self)

    def as_mount(self, path_on_compute=None) -> DatasetConsumptionConfig:
        return DatasetConsumptionConfig(input_name_for(self.name), self).as_mount(path_on_compute)

    def as_download(self, path_on_compute=None) -> DatasetConsumptionConfig:
        return DatasetConsumptionConfig(input_name_for(self.name), self).as_download(path_on_compute)

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

    @staticmethod
    def get_by_name(workspace, name: str, version="latest") -> FileDataset:
        name = dataset_name(name)
        conn = workspace.db.conn
        if version in (None, "latest"):
            version = None
        else:
            try:
                version = int(version)
            except (TypeError, ValueError):
                raise DatasetError(f"dataset version must be a number or 'latest', got {version!r}") from None
        row = catalog.find_version(conn, name, version)
        if row is None:
            known = catalog.dataset_names(conn)
            if name not in known:
                raise DatasetError(f"no dataset named {name!r} in this workspace; registered datasets: "
                                   f"{', '.join(known) or 'none'}")
            raise DatasetError(f"dataset {name!r} has no version {version}; its versions are "
                               f"{catalog.version_numbers(conn, name)}")
        return Dataset._row_to_dataset(workspace, row)

    @staticmethod
    def get_by_id(workspace, version_id: int) -> FileDataset:
        return Dataset._row_to_dataset(workspace, catalog.dataset_version(workspace.db.conn, version_id))

    @staticmethod
    def get_versions(workspace, name: str) -> list[FileDataset]:
        name = dataset_name(name)
        return [Dataset._row_to_dataset(workspace, r) for r in catalog.versions(workspace.db.conn, name)]

    @staticmethod
    def get_all(workspace) -> dict[str, FileDataset]:
        rows = catalog.versions(workspace.db.conn, latest_only=True)
        return {r[1]: Dataset._row_to_dataset(workspace, r) for r in rows}

    @staticmethod
    def list(workspace) -> list[FileDataset]:
        return [Dataset._row_to_dataset(workspace, r) for r in catalog.versions(workspace.db.conn)]


__all__ = ["Dataset", "FileDataset", "DatasetConsumptionConfig", "DatasetError"]
