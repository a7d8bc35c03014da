"""``mltrain endpoint ...``: deploy registered models as local web services and manage them."""
from __future__ import annotations

import json
import sys

import click


from .common import _out, _ws

NO_KEY_TEXT = ("no key (auth disabled): it was deployed without auth, so requests need no Authorization header; "
               "deploy again without --no-auth (auth_enabled=True) and with --overwrite to require a key")


@click.group()
def endpoint():
    """Deploy models as web services and manage them."""


@endpoint.command("deploy")
@click.argument("name")
@click.argument("model")
@click.option("--entry-script", type=click.Path(exists=True, dir_okay=False), help="Scoring script with init()/run().")
@click.option("--port", type=int, default=0, help="Port on 127.0.0.1 (0: a free one).")
@click.option("--compute", help="Run it in a container on this Docker compute target.")
@click.option("--overwrite", is_flag=True, help="Replace an endpoint of the same name.")
@click.option("--no-auth", is_flag=True, help="No key: requests need no Authorization header (ACI's default).")
@click.pass_context
def deploy_cmd(ctx, name, model, entry_script, port, compute, overwrite, no_auth):
    """Deploy MODEL (NAME or NAME:VERSION) as endpoint NAME."""
    from ..core.model import Model
    from ..core.webservice import InferenceConfig, LocalWebservice, deploy
    ws = _ws(ctx)
    mname, _, version = model.partition(":")
    m = Model(ws, mname, version=int(version) if version else None)
    ic = InferenceConfig(entry_script=entry_script) if entry_script else None
    if compute:
        from ..core.webservice import DockerWebservice
        cfg = DockerWebservice.deploy_configuration(compute_target=compute, port=port, auth_enabled=not no_auth)
    else:
        cfg = LocalWebservice.deploy_configuration(port=port, auth_enabled=not no_auth)
    svc = deploy(ws, name, [m], inference_config=ic, deployment_config=cfg, overwrite=overwrite)
    key = svc.get_keys()[0] if svc.auth_enabled else None
    how = (f"key: {key}\n(send it as 'Authorization: Bearer <key>')" if key else
           f"key: {NO_KEY_TEXT}")
    _out(ctx, {**svc.as_dict(), "key": key},
         f"{svc.name}: {svc.state} {svc.state_detail}\nscoring URI: {svc.scoring_uri}\n{how}")
    if svc.state != "Healthy":
        click.echo(svc.get_logs(40), err=True)
        sys.exit(1)


@endpoint.command("list")
@click.pass_context
def list_cmd(ctx):
    """List endpoints with their state and URL."""
    from ..core.webservice import Webservice
    services = Webservice.list(_ws(ctx))
    for svc in services:
        svc.refresh()
    items = [w.as_dict() for w in services]
    lines = [f"{d['name']:<24} {d['state']:<13} {','.join(d['models']):<24} {d['scoring_uri'] or '-'}" for d in items]
    _out(ctx, items, "\n".join(["NAME                     STATE         MODEL                    URL"] + lines))


@endpoint.command("logs")
@click.argument("name")
@click.option("--lines", type=int, default=200)
@click.pass_context
def logs_cmd(ctx, name, lines):
    """Print an endpoint's log."""
    from ..core.webservice import Webservice
    click.echo(Webservice(_ws(ctx), name).get_logs(lines))


@endpoint.command("test")
@click.argument("name")
@click.argument("data", required=False)
@click.option("--file", "data_file", type=click.Path(exists=True, dir_okay=False), help="JSON request body file.")
@click.pass_context
def test_cmd(ctx, name, data, data_file):
    """Send a JSON request (DATA or --file) to an endpoint's :predict and print the answer."""
    from ..core.webservice import Webservice
    if data_file:
        data = open(data_file, encoding="utf-8").read()
    if not data:
        raise click.UsageError('give the request as DATA, e.g. \'{"instances": [[...]]}\', or --file')
    answer = Webservice(_ws(ctx), name).run(data)
    click.echo(json.dumps(answer))


@endpoint.command("keys")
@click.argument("name")
@click.option("--rotate", is_flag=True, help="Replace the key (the service keeps running).")
@click.pass_context
def keys_cmd(ctx, name, rotate):
    """Show (or rotate) an endpoint's key."""
    from ..core.webservice import Webservice
    w = Webservice(_ws(ctx), name)
    if not w.auth_enabled:
        _out(ctx, {"name": name, "key": None, "auth_enabled": False}, f"{name}: {NO_KEY_TEXT}")
        if rotate:
            raise click.ClickException(f"{name} has no key to rotate: it was deployed without auth; deploy it "
                                       "again without --no-auth (and with --overwrite) to give it one")
        return
    key = w.regen_key() if rotate else w.get_keys()[0]
    _out(ctx, {"name": name, "key": key}, key)


@endpoint.command("stop")
@click.argument("name")
@click.pass_context
def stop_cmd(ctx, name):
    """Stop an endpoint's service (keeps its definition)."""
    from ..core.webservice import Webservice
    Webservice(_ws(ctx), name).stop()
    _out(ctx, {"name": name, "state": "Stopped"}, f"{name}: Stopped")


@endpoint.command("start")
@click.argument("name")
@click.pass_context
def start_cmd(ctx, name):
    """Start a stopped endpoint again."""
    from ..core.webservice import Webservice
    state = Webservice(_ws(ctx), name).start()
    _out(ctx, {"name": name, "state": state}, f"{name}: {state}")


@endpoint.command("delete")
@click.argument("name")
@click.pass_context
def delete_cmd(ctx, name):
    """Stop and remove an endpoint."""
    from ..core.webservice import Webservice
    Webservice(_ws(ctx), name).delete()
    _out(ctx, {"deleted": name}, f"Deleted {name}")
