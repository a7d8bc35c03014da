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
from .signatures import check_kwargs

CONFIG_DIR = ".mltrain"
CONFIG_FILE = "config.json"
AZURE_CONFIG_DIR = ".azureml"
APP_NAME = "mltrain-desktop"
_AZURE_KEYS = ("subscription_id", "resource_group", "workspace_name")
_SAID: set[str] = set()
# Workspace.create arguments of Azure ML that mean nothing on this machine (one warning each).
AZURE_CREATE_ONLY = ("auth", "location", "create_resource_group", "sku", "tags", "friendly_name", "storage_account",
                     "key_vault", "app_insights", "container_registry", "adb_workspace", "cmk_keyvault",
                     "resource_cmk_uri", "hbi_workspace", "default_cpu_compute_target",
                     "default_gpu_compute_target", "private_endpoint_config", "private_endpoint_auto_approval",
                     "show_output", "primary_user_assigned_identity", "user_assigned_identity_for_cmk_encryption",
                     "system_datastores_auth_mode", "v1_legacy_mode")   # Azure config files already announced in this process


def default_workspace_dir() -> Path:
    import platformdirs
    override = os.environ.get("MLTRAIN_HOME")
    base = Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))
    return base / "workspaces" / "default"


def named_workspace_dir(name: str) -> Path:
    """Where the workspace called ``name`` lives: beside the default one, under the user data folder."""
    if not isinstance(name, str) or not name.strip() or "/" in name or "\\" in name or name in (".", ".."):
        raise WorkspaceError(f"workspace name {name!r} must be a plain name such as 'my-workspace'")
    return default_workspace_dir().parent / name


def is_workspace(path: str | Path) -> bool:
    try:
        return (Path(path) / DB_FILE).is_file()
    except OSError:  # a folder we may not even look into
        return False


def _is_azure_config(file: Path) -> bool:
    """Whether ``file`` is an Azure ML workspace config.json (a plain config.json may be anyone's)."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "workspace_name" in data and "workspace_path" not in data


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
               subscription_id: str | None = None, resource_group: str | None = None, **azure_only) -> "Workspace":
        """Creates a workspace folder: ``path``, else the named workspace under the user data folder
        (``Workspace.create(name='ws1')`` as in Azure), else the default workspace."""
        check_kwargs("Workspace.create", azure_only, ("path", "name", "exist_ok", "subscription_id",
                                                      "resource_group"), AZURE_CREATE_ONLY)
        if path is None and name:
            path = named_workspace_dir(name)
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
        ws._record_azure_ids(subscription_id, resource_group)
        return ws

    def _record_azure_ids(self, subscription_id, resource_group) -> None:
        for key, value in (("subscription_id", subscription_id), ("resource_group", resource_group)):
            if isinstance(value, str) and value:
                info.put(self.db.conn, key, value)

    @classmethod
    def from_config(cls, path: str | Path | None = None, _file_name: str | None = None, auth=None) -> "Workspace":
        """Finds ``.mltrain/config.json`` in the given folder or upward from the cwd and opens it.

        An Azure ML ``config.json`` (or ``.azureml/config.json``) with subscription_id, resource_group and
        workspace_name opens, creating it if needed, the local workspace of that name under the user data
        folder; that is said once on stdout. With neither, ``MLTRAIN_WORKSPACE`` names the workspace.
        """
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
            for azure in (plain, folder / AZURE_CONFIG_DIR / (_file_name or CONFIG_FILE)):
                if _is_azure_config(azure):
                    return cls._from_config_file(azure)
        if os.environ.get("MLTRAIN_WORKSPACE"):
            return cls(os.environ["MLTRAIN_WORKSPACE"])
        raise WorkspaceError(
            f"no {CONFIG_DIR}/{CONFIG_FILE} found in {start} or any folder above it; create one with "
            "ws.write_config() or `mltrain workspace create PATH --write-config`"
        )

    @classmethod
    def _from_config_file(cls, file: Path) -> "Workspace":
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise WorkspaceError(f"{file} is not a valid workspace config: it is not JSON ({exc})") from exc
        if isinstance(data, dict) and "workspace_path" not in data and "workspace_name" in data:
            return cls._from_azure_config(file, data)
        try:
            wpath = Path(data["workspace_path"]).expanduser()
        except (KeyError, TypeError) as exc:
            raise WorkspaceError(
                f"{file} is not a valid workspace config: it needs {{\"workspace_path\": \"...\"}} "
                "(or Azure's subscription_id, resource_group and workspace_name)"
            ) from exc
        if not wpath.is_absolute():
            wpath = (file.parent.parent / wpath).resolve()
        return cls(wpath)

    @classmethod
    def _from_azure_config(cls, file: Path, data: dict) -> "Workspace":
        name = data.get("workspace_name")
        try:
            named_workspace_dir(name)
        except WorkspaceError as exc:
            raise WorkspaceError(f"{file}: {exc}") from None
        ws = cls.create(named_workspace_dir(name), name=name, exist_ok=True)
        ws._record_azure_ids(data.get("subscription_id"), data.get("resource_group"))
        if str(file) not in _SAID:
            _SAID.add(str(file))
            print(f"Azure ML config {file} (workspace {name!r}) maps to the local workspace {ws.path}", flush=True)
        return ws

    @classmethod
    def get_default(cls) -> "Workspace":
        path = default_workspace_dir()
        return cls(path) if is_workspace(path) else cls.create(path)

    @classmethod
    def get(cls, name: str | None = None, auth=None, subscription_id=None, resource_group=None, location=None,
            cloud=None, id=None) -> "Workspace":
        """The named workspace under the user data folder (as Azure's ``Workspace.get(name)``), or the default."""
        if not name:
            return cls.get_default()
        path = named_workspace_dir(name)
        if not is_workspace(path):
            raise WorkspaceError(f"no workspace named {name!r} (looked in {path}); create it with "
                                 f"Workspace.create(name={name!r})")
        return cls(path)

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
        from ..train.hyperdrive.recovery import recover_sweeps
        return recover_sweeps(self) + recover_orphaned_runs(self.path, self.db.conn)

    # -- helpers ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return info.get(self.db.conn, "name") or self.path.name

    @property
    def location(self) -> str:
        return "local"

    @property
    def subscription_id(self) -> str:
        """The Azure subscription named by the config this workspace was opened from, else 'local'."""
        return info.get(self.db.conn, "subscription_id") or "local"

    @property
    def resource_group(self) -> str:
        return info.get(self.db.conn, "resource_group") or "local"

    @property
    def webservices(self) -> dict:
        from .webservice import Webservice
        return {w.name: w for w in Webservice.list(self)}

    def get_details(self) -> dict:
        return {"name": self.name, "location": self.location, "subscriptionId": self.subscription_id,
                "resourceGroup": self.resource_group, "path": str(self.path)}

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
        return {n: Experiment(self, n, _create=False) for n in experiments.names(self.db.conn)}

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
