"""``mltrain exec SCRIPT.py [ARGS...]``: runs an Azure ML SDK v1 script unchanged, azureml names served here."""
from __future__ import annotations

import os
import traceback

import click


@click.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("script", type=click.Path(dir_okay=False))
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def exec_script(ctx, script, script_args):
    """Run SCRIPT with `import azureml.core` & co. mapped onto MLTrain Desktop (see docs/compat.md).

    With --workspace, Workspace.from_config() in the script opens that workspace when no config file is found.
    """
    from ..compat import CompatRefused, run_script
    workspace = (ctx.obj or {}).get("workspace")
    if workspace:
        os.environ["MLTRAIN_WORKSPACE"] = os.path.abspath(workspace)
    if not os.path.isfile(script):
        raise click.BadParameter(f"{script} is not a file", param_hint="SCRIPT")
    try:
        run_script(script, list(script_args))
    except SystemExit as exc:  # the script's own sys.exit(code)
        ctx.exit(exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1))
    except CompatRefused as exc:
        raise click.ClickException(str(exc)) from exc
    except Exception:  # noqa: BLE001 - the script's own error: its traceback, as python would print it
        traceback.print_exc()
        ctx.exit(1)
