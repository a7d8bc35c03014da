"""Experiments: named groups of runs (the seed's Experiment)."""
from __future__ import annotations

import re
import time

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
        row = workspace.db.execute("SELECT id FROM experiments WHERE name=?", [name]).fetchone()
        if row is None:
            with workspace.transaction() as conn:
                conn.execute("INSERT OR IGNORE INTO experiments (name, created) VALUES (?, ?)", [name, time.time()])
            row = workspace.db.execute("SELECT id FROM experiments WHERE name=?", [name]).fetchone()
        self.id = row[0]

    def submit(self, config, tags: dict | None = None, **kwargs):
        from .runs import submit_run
        return submit_run(self, config, tags=tags)

    def get_runs(self, include_children: bool = False, status: str | None = None):
        from .runs import Run
        sql = "SELECT id FROM runs WHERE experiment_id=?"
        args: list = [self.id]
        if status:
            sql += " AND status=?"
            args.append(status)
        for (rid,) in self.workspace.db.execute(sql + " ORDER BY created DESC", args).fetchall():
            yield Run(self, rid)

    @staticmethod
    def list(workspace) -> list["Experiment"]:
        return [Experiment(workspace, r[0]) for r in workspace.db.execute("SELECT name FROM experiments ORDER BY name")]

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, workspace={self.workspace.path})"
