"""What every ``mltrain`` command shares: finding the workspace and printing results."""
from __future__ import annotations

import json
import time

import click


def _ws(ctx):
    """Opens the workspace the command names and settles what crashed clients left behind."""
    ws = _open_ws(ctx)
    ws.recover()
    return ws


def _open_ws(ctx):
    from ..core.workspace import Workspace, default_workspace_dir, is_workspace
    path = ctx.obj.get("workspace")
    if path:
        return Workspace(path)
    try:
        return Workspace.from_config()
    except Exception:  # noqa: BLE001 - fall back to the default workspace
        d = default_workspace_dir()
        if is_workspace(d):
            return Workspace(d)
        raise click.ClickException("no workspace: pass --workspace PATH, run inside a folder with "
                                   ".mltrain/config.json, or create one with `mltrain workspace create PATH`")


def _out(ctx, data, text: str | None = None):
    if ctx.obj.get("json"):
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(text if text is not None else json.dumps(data, indent=2, default=str))


def _fmt_time(t):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def _table(rows: list[list], headers: list[str]) -> str:
    cols = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cols) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cols[1:]]
    return "\n".join(lines)
