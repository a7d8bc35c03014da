"""Experiments: named groups of runs (the seed's Experiment)."""
from __future__ import annotations

import re

from .errors import UserErrorException

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}$")


class Experiment:
    def __init__(self, workspace, name: str, _create: bool = True):
        if not isinstance(name, str) or not _NAME.match(name):
            raise UserErrorException(
                f"experiment name {name!r} is not valid: use 1-255 letters, digits, '-', '_' or '.', "
                "starting with a letter or digit")
        self.workspace = workspace
        self.name = name
        from ..store import experiments
        conn = workspace.db.conn
        found = experiments.ensure(conn, name) if _create else experiments.get_id(conn, name)
        if found is None:
            raise UserErrorException(f"no experiment named {name!r} in this workspace")
        self.id = found

    def submit(self, config, tags: dict | None = None, **kwargs):
        from .runs import submit_run
        return submit_run(self, config, tags=tags)

    def get_runs(self, include_children: bool = False, status: str | None = None):
        from ..store import runs as run_rows
        from .runs import Run
        for rid in run_rows.ids_in_experiment(self.workspace.db.conn, self.id, status):
            yield Run(self, rid)

    @staticmethod
    def list(workspace) -> list["Experiment"]:
        from ..store import experiments
        return [Experiment(workspace, n) for n in experiments.names(workspace.db.conn)]

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, workspace={self.workspace.path})"
