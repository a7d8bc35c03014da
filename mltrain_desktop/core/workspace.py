"""A workspace: a folder holding workspace.db and the stores (blobs, datasets, runs, models, envs)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..store import experiments, info
from ..store.db import DB_FILE, StoreError, connect
from ..store.transaction import write_transaction
from .errors import WorkspaceError

CONFIG_DIR = ".mltrain"
CONFIG_FILE = "config.json"
APP_NAME = "mltrain-desktop"


def default_workspace_dir() -> Path:
    import platformdirs
    override = os.environ.get("MLTRAIN_HOME")
    base = Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))
    return base / "workspaces" / "default"


def is_workspace(path: str | Path) -> bool:
    try:
        return (Path(path) / DB_FILE).is_file()
    except OSError:  # a folder we may not even look into
        return False


class Workspace:
    """Open with ``Workspace(path)``, ``Workspace.create(path)`` or ``Workspace.from_config()``."""

    def __init__(self, path: str | Path, _create: bool = False):
        self.path = Path(path).expanduser().resolve()
        if not _create and not is_workspace(self.path):
            raise WorkspaceError(
                f"{self.path} is not an MLTrain workspace (no {DB_FILE} in it); create one with "
                f"Workspace.create('{self.path}') or `mltrain workspace create {self.path}`"
            )
        self.db = connect(self.path / DB_FILE)
        if _create:
            for sub in ("blobs", "datasets", "runs", "models", "envs", "jobkit", "tmp", "endpoints"):
                (self.path / sub).mkdir(exist_ok=True)
            info.put(self.db.conn, "created", str(time.time()), replace=False)
            from .compute import ensure_default_local_target
            ensure_default_local_target(self)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path | None = None, name: str | None = None, exist_ok: bool = False,
               **_cloud_args) -> "Workspace":
        """Creates a workspace folder (``path``; the default workspace when omitted)."""
        path = Path(path).expanduser() if path else default_workspace_dir()
        if is_workspace(path):
            if exist_ok:
                return cls(path)
            raise WorkspaceError(
                f"a workspace already exists at {path}; open it with Workspace('{path}') "
                "or pass exist_ok=True"
            )
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise WorkspaceError(
                f"cannot create a workspace in {path}: {exc.strerror or exc}. Choose a folder you "
                "can write to, or fix its permissions."
            ) from exc
        ws = cls(path, _create=True)
        if name:
            info.put(ws.db.conn, "name", name)
        return ws

    @classmethod
    def from_config(cls, path: str | Path | None = None, _file_name: str | None = None) -> "Workspace":
        """Finds ``.mltrain/config.json`` in the given folder or upward from the cwd and opens it."""
        start = Path(path or os.getcwd()).resolve()
        if start.is_file():
            return cls._from_config_file(start)
        for folder in [start, *start.parents]:
            candidate = folder / CONFIG_DIR / (_file_name or CONFIG_FILE)
            if candidate.is_file():
                return cls._from_config_file(candidate)
            plain = folder / (_file_name or CONFIG_FILE)
            if _file_name and plain.is_file():
                return cls._from_config_file(plain)
        raise WorkspaceError(
            f"no {CONFIG_DIR}/{CONFIG_FILE} found in {start} or any folder above it; create one with "
            "ws.write_config() or `mltrain workspace create PATH --write-config`"
        )

    @classmethod
    def _from_config_file(cls, file: Path) -> "Workspace":
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            wpath = Path(data["workspace_path"]).expanduser()
        except (ValueError, KeyError, TypeError) as exc:
            raise WorkspaceError(
                f"{file} is not a valid workspace config: it needs {{\"workspace_path\": \"...\"}}"
            ) from exc
        if not wpath.is_absolute():
            wpath = (file.parent.parent / wpath).resolve()
        return cls(wpath)

    @classmethod
    def get_default(cls) -> "Workspace":
        path = default_workspace_dir()
        return cls(path) if is_workspace(path) else cls.create(path)

    get = get_default

    def write_config(self, path: str | Path | None = None) -> Path:
        """Writes ``.mltrain/config.json`` pointing at this workspace into ``path`` (default cwd)."""
        folder = Path(path or os.getcwd()) / CONFIG_DIR
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / CONFIG_FILE
        file.write_text(json.dumps({"workspace_path": str(self.path)}, indent=2), encoding="utf-8")
        return file

    def recover(self) -> list[str]:
        """Settles what crashed clients left behind; returns the ids of the runs it settled.

        A Docker run whose container may still be alive gets a new supervisor that reattaches;
        any other unfinished run whose supervisor is gone is marked Failed and its job stopped;
        containers and networks whose owner is over (a run that ended, an endpoint that was
        deleted) are removed. Opening a workspace does not do this: the window, the CLI and the
        supervisors call it when they mean to.
        """
        from ..engine.recovery import recover_orphaned_runs
        return recover_orphaned_runs(self.path, self.db.conn)

    # -- helpers ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return info.get(self.db.conn, "name") or self.path.name

    def transaction(self):
        """A write transaction that takes the write lock up front; ``with`` gives the connection."""
        return write_transaction(self.db.conn)

    @property
    def runs_dir(self) -> Path:
        return self.path / "runs"

    @property
    def blobs_dir(self) -> Path:
        return self.path / "blobs"

    @property
    def experiments(self) -> dict:
        from .experiment import Experiment
        return {n: Experiment(self, n) for n in experiments.names(self.db.conn)}

    @property
    def compute_targets(self) -> dict:
        from .compute import ComputeTarget
        return ComputeTarget.list(self)

    @property
    def datasets(self) -> dict:
        from .dataset import Dataset
        return Dataset.get_all(self)

    @property
    def models(self) -> dict:
        from .model import Model
        return {m.name: m for m in Model.list(self, latest=True)}

    def counts(self) -> dict[str, int]:
        """How many experiments, datasets, dataset_versions, compute_targets, models (names) and
        model_versions the workspace holds."""
        return info.counts(self.db.conn)

    def disk_usage(self) -> int:
        total = 0
        for root, _dirs, files in os.walk(self.path):
            for f in files:
                try:
                    total += os.lstat(os.path.join(root, f)).st_size
                except OSError:
                    pass
        return total

    def close(self) -> None:
        self.db.conn.close()

    def __repr__(self) -> str:
        return f"Workspace(path='{self.path}')"

    def __eq__(self, other) -> bool:
        return isinstance(other, Workspace) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)


__all__ = ["Workspace", "WorkspaceError", "StoreError", "default_workspace_dir", "is_workspace"]
