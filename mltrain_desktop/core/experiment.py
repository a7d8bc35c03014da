"""Experiments: named groups of runs (the seed's Experiment)."""
from __future__ import annotations

import re

from .errors import UserErrorException

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}$")
# A run's folder is '<experiment>_<10-digit time>_<8 hex>' (a sweep's '<experiment>_HD_...', 3 more)
# and must fit the file systems' 255-character name limit, with room to spare.
MAX_NEW_NAME = 200


class Experiment:
    def __init__(self, workspace, name: str, _create: bool = True):
        if not isinstance(name, str) or not _NAME.match(name):
            raise UserErrorException(
                f"experiment name {name!r} is not valid: use 1-255 letters, digits, '-', '_' or '.', "
                "starting with a letter or digit")
        if _create and len(name) > MAX_NEW_NAME:
            raise UserErrorException(
                f"experiment name is {len(name)} characters long; a new experiment's name may have at most "
                f"{MAX_NEW_NAME}, because each run's folder is named '<experiment>_<time>_<id>' and must fit the "
                "file system's 255-character limit. Use a shorter name")
        self.workspace = workspace
        self.name = name
        from ..store import experiments
        conn = workspace.db.conn
        found = experiments.ensure(conn, name) if _create else experiments.get_id(conn, name)
        if found is None:
            raise UserErrorException(f"no experiment named {name!r} in this workspace")
        self.id = found

    def submit(self, config, tags: dict | None = None, **kwargs):
        """Submits a run (ScriptRunConfig or estimator) or a sweep (HyperDriveConfig -> HyperDriveRun)."""
        from ..train.hyperdrive.config import HyperDriveConfig
        if isinstance(config, HyperDriveConfig):
            from ..train.hyperdrive.submit import submit_sweep
            return submit_sweep(self, config, tags=tags)
        from .runs import submit_run
        return submit_run(self, config, tags=tags)

    def get_runs(self, include_children: bool = False, status: str | None = None):
        """The experiment's runs, newest first; a sweep's child runs only with ``include_children``."""
        from ..store import runs as run_rows
        from ..store import sweeps
        from .runs import Run
        kinds = sweeps.kinds_in_experiment(self.workspace.db.conn, self.id)
        for rid in run_rows.ids_in_experiment(self.workspace.db.conn, self.id, status):
            run_type, parent = kinds.get(rid, ("run", None))
            if parent is not None and not include_children:
                continue
            if run_type == sweeps.SWEEP_TYPE:
                from ..train.hyperdrive.run import HyperDriveRun
                yield HyperDriveRun(self, rid)
            else:
                yield Run(self, rid)

    @staticmethod
    def list(workspace) -> list["Experiment"]:
        from ..store import experiments
        return [Experiment(workspace, n, _create=False) for n in experiments.names(workspace.db.conn)]

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, workspace={self.workspace.path})"
