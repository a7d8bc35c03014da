"""The model registry: versioned copies of model files with lineage to runs and datasets."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import unicodedata
from pathlib import Path

from ..store import models as model_rows
from ..store import runs as run_rows

from .errors import ModelError
from .resource_configuration import ResourceConfiguration


def check_model_name(name) -> None:
    """A model's name names its folder in the registry: refuse what is not one plain folder name."""
    what = ("model_name must be a name such as 'mnist-classifier': not empty, not '.' or '..', without '/', "
            "'\\', ':' or control characters, at most 200 bytes")
    if not isinstance(name, str) or not name.strip() or name in (".", "..") \
            or len(name.encode("utf-8", "surrogatepass")) > 200:
        raise ModelError(f"{what}; got {name!r}")
    bad = next((c for c in name if c in "/\\:" or unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp")), None)
    if bad is not None:
        raise ModelError(f"{what}; {name!r} holds {bad!r}")


def _tree_size(p: Path) -> tuple[int, int]:
    if p.is_file():
        return 1, p.stat().st_size
    files = [f for f in p.rglob("*") if f.is_file()]
    return len(files), sum(f.stat().st_size for f in files)


class Model:
    """``Model(ws, name, version=None)`` finds a registered model (latest version by default)."""

    class Framework:
        TENSORFLOW = "TensorFlow"
        KERAS = "Keras"
        SCIKITLEARN = "ScikitLearn"
        ONNX = "Onnx"
        PYTORCH = "PyTorch"
        CUSTOM = "Custom"

    def __init__(self, workspace, name: str | None = None, id: str | None = None, version: int | None = None,
                 _row=None):
        self.workspace = workspace
        if _row is None:
            if id and not name:
                name, _, v = id.partition(":")
                version = int(v) if v else version
            if not name:
                raise ModelError("Model() needs a name (or id='name:version')")
            _row = model_rows.get(workspace.db.conn, name, version)
            if _row is None:
                known = model_rows.names(workspace.db.conn)
                what = f"{name!r}" + (f" version {version}" if version is not None else "")
                raise ModelError(f"no model {what} in the registry (models: {', '.join(known) or 'none'})")
        (self._pk, self.name, self.version, self.model_framework, self.model_framework_version, rc, tags,
         self.description, self.run_id, self.source_path, location, self.file_count, self.total_bytes,
         self.created_time) = _row
        self.resource_configuration = ResourceConfiguration.from_dict(json.loads(rc))
        self.tags = json.loads(tags)
        self.location = location

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def local_path(self) -> Path:
        """The registered files: the model folder or file inside the registry."""
        return self.workspace.path / self.location

    # -- registration -----------------------------------------------------------------------
    @classmethod
    def register(cls, workspace, model_path: str, model_name: str, tags=None, properties=None, description: str = "",
                 model_framework=None, model_framework_version=None, resource_configuration=None, datasets=None,
                 _run_id: str | None = None, **_unused) -> "Model":
        """Copies ``model_path`` (a file or folder) into the registry as a new version of ``model_name``."""
        check_model_name(model_name)
        src = Path(model_path)
        if not src.exists():
            raise ModelError(f"model path {src} does not exist")
        if resource_configuration is not None and not isinstance(resource_configuration, ResourceConfiguration):
            raise ModelError("resource_configuration must be ResourceConfiguration(cpu=..., memory_in_gb=...)")
        for k, v in (tags or {}).items():
            if not isinstance(k, str):
                raise ModelError(f"tag name {k!r} must be a string")
        root = workspace.path / "models" / model_name
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".incoming-"))

        def place(version: int) -> str:
            final = root / str(version)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            return (final / src.name).relative_to(workspace.path).as_posix()
        try:
            dest = tmp / src.name
            if src.is_dir():
                shutil.copytree(src, dest, symlinks=False)
            else:
                shutil.copy2(src, dest)
            count, size = _tree_size(dest)
            version = model_rows.add_version(
                workspace.db.conn, model_name, place, framework=model_framework,
                framework_version=model_framework_version,
                resource_configuration=resource_configuration.to_dict() if resource_configuration else {},
                tags={str(k): str(v) for k, v in (tags or {}).items()}, description=description or "",
                run_id=_run_id, source_path=str(model_path), file_count=count, total_bytes=size)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls(workspace, model_name, version=version)

    @classmethod
    def _register_from_run(cls, run, model_name: str, model_path: str, **kw) -> "Model":
        rel = Path(model_path)
        if rel.is_absolute() or ".." in rel.parts:
            raise ModelError(f"model_path {model_path!r} must be a path inside the run's folder, like 'outputs/model'")
        src = run.run_dir / rel
        if not src.exists():
            outputs = [n for n in run.get_file_names() if n.startswith("outputs/")]
            tops = sorted({"/".join(n.split("/")[:2]) for n in outputs})
            raise ModelError(f"run {run.id} has no {model_path!r} in its files; its outputs are: "
                             f"{', '.join(tops) or 'none'}")
        return cls.register(run.workspace, str(src), model_name, _run_id=run.id, **kw)

    # -- queries ----------------------------------------------------------------------------
    @staticmethod
    def list(workspace, name: str | None = None, latest: bool = False, run_id: str | None = None) -> list["Model"]:
        rows = model_rows.rows(workspace.db.conn, name=name, latest=latest, run_id=run_id)
        return [Model(workspace, _row=r) for r in rows]

    def lineage(self) -> dict:
        """The run, experiment and dataset versions this model came from."""
        out = {"run_id": self.run_id, "experiment": None, "datasets": []}
        if self.run_id:
            conn = self.workspace.db.conn
            out["experiment"] = run_rows.experiment_of(conn, self.run_id)
            out["datasets"] = [{"input": i["input"], "name": i["dataset"], "version": i["version"], "mode": i["mode"]}
                               for i in run_rows.inputs(conn, self.run_id)]
        return out

    def run(self):
        if not self.run_id:
            return None
        from .runs import Run
        return Run.get(self.workspace, self.run_id)

    def download(self, target_dir: str = ".", exist_ok: bool = False) -> str:
        dest = Path(target_dir) / self.local_path.name
        if dest.exists() and not exist_ok:
            raise ModelError(f"{dest} exists; pass exist_ok=True to overwrite it")
        Path(target_dir).mkdir(parents=True, exist_ok=True)
        if self.local_path.is_dir():
            shutil.copytree(self.local_path, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(self.local_path, dest)
        return str(dest)

    @staticmethod
    def get_model_path(model_name: str, version: int | None = None, _workspace=None) -> str:
        """Inside a deployment (as on Azure): the registered model's files under ``AZUREML_MODEL_DIR``,
        the folder holding them, i.e. the entry named ``model_name`` there, else its single entry."""
        if _workspace is None:
            env = os.environ.get("AZUREML_MODEL_DIR") or os.environ.get("MLTRAIN_MODEL_DIR")
            if env:
                return _model_in_dir(Path(env), model_name)
            raise ModelError("get_model_path needs _workspace outside a deployment")
        return str(Model(_workspace, model_name, version=version).local_path)

    @staticmethod
    def deploy(workspace, name: str, models: list, inference_config=None, deployment_config=None,
               deployment_target=None, overwrite: bool = False, show_output: bool = False):
        """Deploys models as a local web service (TensorFlow Serving's REST API); see mltrain_desktop.serving.
        ``show_output=True`` waits for it and prints its state and log, as ``wait_for_deployment(True)``."""
        from .webservice import deploy
        svc = deploy(workspace, name, models, inference_config=inference_config, deployment_config=deployment_config,
                     deployment_target=deployment_target, overwrite=overwrite)
        if show_output:
            svc.wait_for_deployment(show_output=True)
        return svc

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "version": self.version, "framework": self.model_framework,
                "framework_version": self.model_framework_version,
                "resource_configuration": self.resource_configuration.to_dict() if self.resource_configuration else {},
                "tags": self.tags, "description": self.description, "run_id": self.run_id,
                "path": str(self.local_path), "files": self.file_count, "bytes": self.total_bytes,
                "created": self.created_time, "lineage": self.lineage()}

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, version={self.version}, framework={self.model_framework!r})"


def _model_in_dir(folder: Path, model_name: str) -> str:
    """``model_name``'s files in a deployment's model folder: the entry of that name, else the only entry."""
    named = folder / model_name
    if named.exists():
        return str(named)
    try:
        entries = [e for e in folder.iterdir() if not e.name.startswith(".")]
    except OSError:
        return str(folder)
    return str(entries[0]) if len(entries) == 1 else str(folder)
