"""The ``mltrain`` command line: the SDK's operations, headless, with ``--json`` output for scripts."""
from __future__ import annotations

import sys
import time

import click

from .common import _fmt_time, _out, _table, _ws


class _Group(click.Group):
    def invoke(self, ctx):
        from ..core.errors import MLTrainError
        from ..store.db import StoreError
        try:
            return super().invoke(ctx)
        except (MLTrainError, StoreError, ValueError, OSError) as exc:
            if isinstance(exc, click.ClickException):
                raise
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group)
@click.version_option(__import__("mltrain_desktop.version_info").version_info.LAZY_VERSION, prog_name="mltrain",
                      message="%(prog)s %(version)s")
@click.option("--workspace", "-w", type=click.Path(file_okay=False), envvar="MLTRAIN_WORKSPACE",
              help="Workspace folder (default: .mltrain/config.json upward from here, else the default workspace).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def cli(ctx, workspace, as_json):
    """MLTrain Desktop: train TensorFlow models on your own machine."""
    ctx.ensure_object(dict)
    ctx.obj.update(workspace=workspace, json=as_json)


# -- workspace ---------------------------------------------------------------------------------
@cli.group()
def workspace():
    """Create and inspect workspaces."""


@workspace.command("create")
@click.argument("path", type=click.Path(file_okay=False), required=False)
@click.option("--write-config", is_flag=True, help="Also write .mltrain/config.json in the current folder.")
@click.pass_context
def workspace_create(ctx, path, write_config):
    """Create a workspace at PATH (default: the user data folder)."""
    from ..core.workspace import Workspace
    ws = Workspace.create(path)
    cfg = ws.write_config() if write_config else None
    _out(ctx, {"path": str(ws.path), "config": str(cfg) if cfg else None}, f"Created workspace {ws.path}")


@workspace.command("show")
@click.pass_context
def workspace_show(ctx):
    """Show the workspace's contents."""
    from ..core.runs import Run
    ws = _ws(ctx)
    counts = ws.counts()
    data = {"path": str(ws.path), "experiments": counts["experiments"], "datasets": counts["datasets"],
            "models": counts["model_versions"], "compute_targets": counts["compute_targets"],
            "runs": Run.count_by_status(ws), "disk_bytes": ws.disk_usage()}
    _out(ctx, data, "\n".join(f"{k}: {v}" for k, v in data.items()))


# -- datasets ------------------------------------------------------------------------------------
@cli.group()
def dataset():
    """Register and list file datasets."""


@dataset.command("register")
@click.argument("name")
@click.argument("paths", nargs=-1, required=True)
@click.option("--description", default="")
@click.option("--new-version/--no-new-version", default=True, help="Add a version if NAME exists.")
@click.pass_context
def dataset_register(ctx, name, paths, description, new_version):
    """Register files, folders, globs or http(s) URLs as dataset NAME."""
    from ..core.dataset import Dataset

    def progress(done, total, msg):
        if not ctx.obj.get("json"):
            pct = f"{100 * done / total:5.1f}%" if total else f"{done} bytes"
            click.echo(f"\r{pct} {msg[:70]}", nl=False, err=True)
    ds = Dataset.File.from_files(path=list(paths)).register(_ws(ctx), name, description,
                                                            create_new_version=new_version, progress=progress)
    if not ctx.obj.get("json"):
        click.echo("", err=True)
    _out(ctx, {"name": ds.name, "version": ds.version, "files": ds.to_path(), "bytes": ds.total_bytes},
         f"Registered {ds.name} version {ds.version}: {len(ds.files)} file(s), {ds.total_bytes} bytes")


@dataset.command("list")
@click.pass_context
def dataset_list(ctx):
    """List datasets and their versions."""
    from ..core.dataset import Dataset
    items = Dataset.list(_ws(ctx))
    data = [{"name": d.name, "version": d.version, "files": len(d.files), "bytes": d.total_bytes,
             "created": d.created, "description": d.description} for d in items]
    _out(ctx, data, _table([[d["name"], d["version"], d["files"], d["bytes"], _fmt_time(d["created"]), d["description"]]
                            for d in data], ["NAME", "VERSION", "FILES", "BYTES", "CREATED", "DESCRIPTION"]))


@dataset.command("show")
@click.argument("name")
@click.option("--version", default="latest")
@click.pass_context
def dataset_show(ctx, name, version):
    """Show the files of a dataset version."""
    from ..core.dataset import Dataset
    ds = Dataset.get_by_name(_ws(ctx), name, version)
    _out(ctx, {"name": ds.name, "version": ds.version, "files": ds.files, "path": str(ds.mount_path())},
         _table([[f["path"], f["size"], f["sha256"][:16]] for f in ds.files], ["PATH", "BYTES", "SHA256"]))


# -- compute ---------------------------------------------------------------------------------------
@cli.group()
def compute():
    """Create and inspect compute targets."""


@compute.command("create")
@click.argument("name")
@click.option("--kind", type=click.Choice(["local", "docker"]), default="local")
@click.option("--max-concurrent-runs", "--max-nodes", type=int, default=1, help="Runs at once (local).")
@click.option("--python", help="Interpreter for local jobs (default: this one).")
@click.option("--image", help="Default image for runs (docker).")
@click.option("--base-url", help="Docker engine URL (docker; default: DOCKER_HOST or the local socket).")
@click.pass_context
def compute_create(ctx, name, kind, max_concurrent_runs, python, image, base_url):
    """Create (or update) a compute target and probe it."""
    from ..core.compute import ComputeTarget, LocalCompute
    if kind == "local":
        cfg = LocalCompute.provisioning_configuration(max_concurrent_runs=max_concurrent_runs, python=python)
    else:
        from ..core.compute_docker import DockerCompute
        kw = {"image": image} if image else {}
        if base_url:
            kw["base_url"] = base_url
        cfg = DockerCompute.provisioning_configuration(**kw)
    t = ComputeTarget.create(_ws(ctx), name, cfg, overwrite=True)  # create or update, as the help says
    _out(ctx, t.as_dict(), f"{t.name} ({t.kind}): {t.provisioning_state}. {t.state_detail}")
    if t.provisioning_state == "Failed":
        sys.exit(1)


@compute.command("list")
@click.pass_context
def compute_list(ctx):
    """List compute targets."""
    from ..core.compute import ComputeTarget
    ts = ComputeTarget.list(_ws(ctx)).values()
    _out(ctx, [t.as_dict() for t in ts], _table(
        [[t.name, t.kind, t.provisioning_state, t.max_concurrent_runs, len(t.gpus), t.state_detail] for t in ts],
        ["NAME", "KIND", "STATE", "MAX RUNS", "GPUS", "DETAIL"]))


@compute.command("show")
@click.argument("name")
@click.option("--refresh", is_flag=True, help="Probe the target again.")
@click.pass_context
def compute_show(ctx, name, refresh):
    """Show one compute target."""
    from ..core.compute import ComputeTarget
    t = ComputeTarget(_ws(ctx), name)
    if refresh:
        t.refresh_state()
    _out(ctx, t.as_dict())


@compute.command("delete")
@click.argument("name")
@click.pass_context
def compute_delete(ctx, name):
    """Delete a compute target without unfinished runs."""
    from ..core.compute import ComputeTarget
    ComputeTarget(_ws(ctx), name).delete()
    _out(ctx, {"deleted": name}, f"Deleted {name}")


# -- runs ----------------------------------------------------------------------------------------
@cli.group()
def run():
    """Submit and follow runs."""


def _parse_arg_value(ws, value: str):
    """'dataset:NAME[:VERSION][:download]' becomes a dataset input; anything else stays text."""
    if value.startswith("dataset:"):
        from ..core.dataset import Dataset, input_name_for
        parts = value.split(":")[1:]
        name = parts[0]
        version = parts[1] if len(parts) > 1 and parts[1] not in ("", "download", "mount") else "latest"
        mode = "download" if "download" in parts[1:] else "mount"
        ds = Dataset.get_by_name(ws, name, version)
        inp = ds.as_named_input(input_name_for(name))
        return inp.as_download() if mode == "download" else inp.as_mount()
    return value


@run.command("submit", context_settings={"ignore_unknown_options": True})
@click.option("--experiment", "-e", required=True)
@click.option("--source-directory", "-s", required=True, type=click.Path())
@click.option("--entry-script", "-c", required=True)
@click.option("--compute", "compute_target", default="local", show_default=True)
@click.option("--pip", "pip_packages", multiple=True, help="Extra pip package (repeatable).")
@click.option("--env", "env_vars", multiple=True, help="KEY=VALUE environment variable (repeatable).")
@click.option("--use-gpu", is_flag=True)
@click.option("--distribution", type=click.Choice(["none", "mpi", "ps"]), default="none")
@click.option("--process-count", type=int, default=1, help="MPI ranks per node.")
@click.option("--node-count", type=int, default=1)
@click.option("--worker-count", type=int, default=1, help="Parameter-server workers.")
@click.option("--ps-count", type=int, default=1, help="Parameter-server ps tasks.")
@click.option("--wait/--no-wait", default=False, help="Follow the output until the run ends.")
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run_submit(ctx, experiment, source_directory, entry_script, compute_target, pip_packages, env_vars, use_gpu,
               distribution, process_count, node_count, worker_count, ps_count, wait, script_args):
    """Submit ENTRY_SCRIPT; arguments after -- go to the script ('dataset:NAME[:VERSION]' is a dataset input)."""
    from ..core.experiment import Experiment
    from ..core.runconfig import MpiConfiguration, TensorflowConfiguration
    from ..train.estimator import Estimator
    ws = _ws(ctx)
    env = {}
    for kv in env_vars:
        if "=" not in kv:
            raise click.BadParameter(f"{kv!r} is not KEY=VALUE", param_hint="--env")
        k, v = kv.split("=", 1)
        env[k] = v
    dist = None
    if distribution == "mpi":
        dist = MpiConfiguration(process_count_per_node=process_count, node_count=node_count)
    elif distribution == "ps":
        dist = TensorflowConfiguration(worker_count=worker_count, parameter_server_count=ps_count)
    est = Estimator(source_directory=source_directory, entry_script=entry_script, compute_target=compute_target,
                    pip_packages=list(pip_packages), environment_variables=env, use_gpu=use_gpu,
                    distributed_training=dist, arguments=[_parse_arg_value(ws, a) for a in script_args])
    r = Experiment(ws, experiment).submit(est)
    if not wait:
        _out(ctx, {"run_id": r.id, "status": r.get_status()}, r.id)
        return
    details = r.wait_for_completion(show_output=not ctx.obj.get("json"), raise_on_error=False)
    if ctx.obj.get("json"):
        _out(ctx, details)
    sys.exit(0 if details["status"] == "Completed" else 1)


@run.command("list")
@click.option("--experiment", "-e")
@click.option("--status")
@click.option("--limit", type=int, default=50)
@click.pass_context
def run_list(ctx, experiment, status, limit):
    """List runs, newest first."""
    from ..app.queries import list_runs
    keys = ("id", "experiment", "number", "status", "compute", "created", "started", "ended")
    rows = list_runs(_ws(ctx), None, experiment=experiment, status=status, limit=limit, with_metrics=False)
    data = [{k: r[k] for k in keys} for r in rows]
    _out(ctx, data, _table([[d["id"], d["experiment"], d["number"], d["status"], d["compute"], _fmt_time(d["created"])]
                            for d in data], ["RUN", "EXPERIMENT", "#", "STATUS", "COMPUTE", "CREATED"]))


@run.command("show")
@click.argument("run_id")
@click.pass_context
def run_show(ctx, run_id):
    """Show a run's details and state timeline."""
    from ..core.runs import Run
    d = Run.get(_ws(ctx), run_id).get_details()
    if ctx.obj.get("json"):
        _out(ctx, d)
        return
    lines = [f"{k}: {d[k]}" for k in ("runId", "experiment", "status", "target", "script", "arguments", "exitCode")]
    lines.append("timeline:")
    ev = d["events"]
    for i, e in enumerate(ev):
        dur = f"{ev[i + 1]['at'] - e['at']:.2f}s" if i + 1 < len(ev) else ""
        lines.append(f"  {_fmt_time(e['at'])}  {e['status']:<10} {dur:>8}  {e['detail']}")
    if d.get("error"):
        lines.append("error:\n" + d["error"]["message"])
    click.echo("\n".join(lines))


@run.command("logs")
@click.argument("run_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the run ends.")
@click.option("--file", "log_name", default="driver.log", show_default=True)
@click.pass_context
def run_logs(ctx, run_id, follow, log_name):
    """Print a run's log."""
    from ..core.runs import Run
    r = Run.get(_ws(ctx), run_id)
    offset = 0
    next_check = time.monotonic() + 2.0
    while True:
        terminal = r.is_terminal()
        if follow and not terminal and time.monotonic() >= next_check:
            next_check = time.monotonic() + 2.0
            r._settle_if_orphaned()  # a run whose supervisor died is settled, as wait_for_completion does
            terminal = r.is_terminal()
        text, offset = r.read_log(log_name, offset)
        while text:
            click.echo(text, nl=False)
            text, offset = r.read_log(log_name, offset)
        if not follow or terminal:
            break
        time.sleep(0.25)
    if follow:  # the log may not say why the run ended (a lost supervisor): the run's state does
        details = r.get_details()
        why = (details.get("error", {}).get("message") or "").split("\n", 1)[0]  # the log showed its tail
        click.echo(f"[mltrain] run {run_id} {details['status']}" + (f": {why}" if why else ""), err=True)


@run.command("metrics")
@click.argument("run_id")
@click.option("--name")
@click.pass_context
def run_metrics(ctx, run_id, name):
    """Print a run's metrics (last value of each series unless --json)."""
    from ..core.runs import Run
    m = Run.get(_ws(ctx), run_id).get_metrics(name)
    if ctx.obj.get("json"):
        _out(ctx, m)
        return
    rows = [[k, len(v) if isinstance(v, list) else 1, v[-1] if isinstance(v, list) else v] for k, v in m.items()]
    click.echo(_table(rows, ["METRIC", "POINTS", "LAST"]))


@run.command("cancel")
@click.argument("run_id")
@click.pass_context
def run_cancel(ctx, run_id):
    """Cancel a run (stops its whole process tree or containers)."""
    from ..core.runs import Run
    status = Run.get(_ws(ctx), run_id).cancel()
    _out(ctx, {"run_id": run_id, "status": status}, f"{run_id}: {status}")


@run.command("resubmit")
@click.argument("run_id")
@click.option("--wait/--no-wait", default=False, help="Follow the output until the run ends.")
@click.pass_context
def run_resubmit(ctx, run_id, wait):
    """Submit a new run with the settings of RUN_ID."""
    from ..core.runs import Run
    r = Run.get(_ws(ctx), run_id).resubmit()
    if not wait:
        _out(ctx, {"run_id": r.id, "status": r.get_status()}, r.id)
        return
    details = r.wait_for_completion(show_output=not ctx.obj.get("json"), raise_on_error=False)
    sys.exit(0 if details["status"] == "Completed" else 1)


@run.command("delete")
@click.argument("run_ids", nargs=-1, required=True)
@click.pass_context
def run_delete(ctx, run_ids):
    """Delete finished runs (their rows, metrics and folders)."""
    from ..core.runs import Run
    ws = _ws(ctx)
    for rid in run_ids:
        Run.get(ws, rid).delete()
    _out(ctx, {"deleted": list(run_ids)}, f"Deleted {len(run_ids)} run(s)")


@run.command("files")
@click.argument("run_id")
@click.pass_context
def run_files(ctx, run_id):
    """List a run's files (outputs and logs)."""
    from ..core.runs import Run
    names = Run.get(_ws(ctx), run_id).get_file_names()
    _out(ctx, names, "\n".join(names))


@run.command("download")
@click.argument("run_id")
@click.argument("name")
@click.argument("dest", type=click.Path())
@click.pass_context
def run_download(ctx, run_id, name, dest):
    """Download one file of a run."""
    from ..core.runs import Run
    p = Run.get(_ws(ctx), run_id).download_file(name, dest)
    _out(ctx, {"path": p}, p)


# -- models ----------------------------------------------------------------------------------------
@cli.group()
def model():
    """Register, list and download models."""


@model.command("register")
@click.argument("run_id")
@click.argument("name")
@click.option("--path", "model_path", default="outputs/model", show_default=True)
@click.option("--framework", default="TensorFlow", show_default=True)
@click.option("--framework-version")
@click.option("--cpu", type=float)
@click.option("--memory-gb", type=float)
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE (repeatable).")
@click.option("--description", default="")
@click.pass_context
def model_register(ctx, run_id, name, model_path, framework, framework_version, cpu, memory_gb, tags, description):
    """Register MODEL_PATH of RUN_ID as a new version of model NAME."""
    from ..core.resource_configuration import ResourceConfiguration
    from ..core.runs import Run
    rc = ResourceConfiguration(cpu=cpu, memory_in_gb=memory_gb) if (cpu or memory_gb) else None
    tag_dict = dict(t.split("=", 1) if "=" in t else (t, "") for t in tags)
    m = Run.get(_ws(ctx), run_id).register_model(name, model_path, tags=tag_dict, model_framework=framework,
                                                  model_framework_version=framework_version, description=description,
                                                  resource_configuration=rc)
    _out(ctx, m.as_dict(), f"Registered {m.id}")


@model.command("list")
@click.option("--name")
@click.pass_context
def model_list(ctx, name):
    """List registered models."""
    from ..core.model import Model
    ms = Model.list(_ws(ctx), name=name)
    _out(ctx, [m.as_dict() for m in ms], _table(
        [[m.name, m.version, m.model_framework or "", m.run_id or "", _fmt_time(m.created_time)] for m in ms],
        ["NAME", "VERSION", "FRAMEWORK", "RUN", "CREATED"]))


@model.command("download")
@click.argument("name")
@click.argument("target_dir", type=click.Path(file_okay=False))
@click.option("--version", type=int)
@click.option("--overwrite", is_flag=True)
@click.pass_context
def model_download(ctx, name, target_dir, version, overwrite):
    """Copy a registered model's files to TARGET_DIR."""
    from ..core.model import Model
    p = Model(_ws(ctx), name, version=version).download(target_dir, exist_ok=overwrite)
    _out(ctx, {"path": p}, p)


# -- the sample -----------------------------------------------------------------------------------------
@cli.command("sample")
@click.option("--epochs", type=int, default=2, show_default=True)
@click.option("--full-data/--subset", default=None, help="Full Fashion-MNIST (when installed) or the shipped subset.")
@click.pass_context
def sample(ctx, epochs, full_data):
    """Run the seed's whole flow: dataset, compute target, training with live metrics, registered model."""
    from ..core.sample_flow import run_sample
    ws = _ws_or_create(ctx)
    result = run_sample(ws, epochs=epochs, full=full_data, echo=None if ctx.obj.get("json") else click.echo)
    _out(ctx, result, f"Sample finished: run {result['run_id']} {result['status']}, model {result.get('model')}")
    sys.exit(0 if result["status"] == "Completed" else 1)


def _ws_or_create(ctx):
    from ..core.workspace import Workspace
    if ctx.obj.get("workspace"):
        return Workspace.create(ctx.obj["workspace"], exist_ok=True)
    try:
        return Workspace.from_config()
    except Exception:  # noqa: BLE001
        return Workspace.get_default()


def main(argv=None):
    return cli.main(args=argv, prog_name="mltrain")


def _register_subgroups():
    from .compat_exec import exec_script
    from .endpoints import endpoint
    from .sweeps import sweep
    cli.add_command(endpoint)
    cli.add_command(exec_script)
    cli.add_command(sweep)


_register_subgroups()
