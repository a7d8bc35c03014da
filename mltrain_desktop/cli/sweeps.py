"""``mltrain sweep ...``: submit hyperparameter sweeps (HyperDrive) and inspect their children and best run."""
from __future__ import annotations

import ast
import sys

import click

from .common import _fmt_time, _open_ws, _out, _table

_POLICIES = ("none", "bandit", "median", "truncation")
_SAMPLINGS = ("random", "grid", "bayesian")


def parse_param(text: str):
    """'--lr=loguniform(-6, -1)' -> ('--lr', expression); a clear error for anything else."""
    from ..train.hyperdrive.distributions import EXPRESSIONS, parse_expression
    name, sep, expr = text.partition("=")
    expr = expr.strip()
    if not sep or not name.strip() or "(" not in expr or not expr.endswith(")"):
        raise click.BadParameter(f"{text!r} is not NAME=DISTRIBUTION(ARGS), e.g. '--learning-rate=loguniform(-6, -1)' "
                                 f"(distributions: {', '.join(EXPRESSIONS)})", param_hint="--param")
    func, _, args = expr[:-1].partition("(")
    try:
        values = ast.literal_eval(f"({args},)") if args.strip() else ()
    except (ValueError, SyntaxError) as exc:
        raise click.BadParameter(f"{text!r}: the arguments of {func.strip()}() must be numbers or quoted strings "
                                 f"({exc})", param_hint="--param") from None
    try:
        return name.strip(), parse_expression([func.strip(), list(values)], where=f"parameter {name.strip()!r}")
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--param") from None


def _policy(kind, interval, delay, slack_factor, slack_amount, truncation):
    from ..train.hyperdrive import BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy
    if kind == "bandit":
        return BanditPolicy(evaluation_interval=interval, slack_factor=slack_factor, slack_amount=slack_amount,
                            delay_evaluation=delay)
    if kind == "median":
        return MedianStoppingPolicy(evaluation_interval=interval, delay_evaluation=delay)
    if kind == "truncation":
        if truncation is None:
            raise click.BadParameter("--policy truncation needs --truncation-percentage", param_hint="--policy")
        return TruncationSelectionPolicy(truncation, evaluation_interval=interval, delay_evaluation=delay)
    return None


def _ws(ctx):
    """The workspace, with sweeps whose driver died resumed first, then what else crashed clients left."""
    from ..train.hyperdrive.recovery import recover_sweeps
    ws = _open_ws(ctx)
    recover_sweeps(ws)
    ws.recover()
    return ws


def _sweep(ws, run_id: str):
    from ..core.runs import Run
    from ..train.hyperdrive.run import HyperDriveRun
    run = Run.get(ws, run_id)
    if not isinstance(run, HyperDriveRun):
        raise click.ClickException(f"run {run_id} is not a sweep; `mltrain sweep list` shows the sweeps")
    return run


@click.group()
def sweep():
    """Hyperparameter sweeps (HyperDrive): many child runs of one script, sampled and judged by a metric."""


@sweep.command("submit", context_settings={"ignore_unknown_options": True})
@click.option("--experiment", "-e", required=True)
@click.option("--source-directory", "-s", required=True, type=click.Path())
@click.option("--entry-script", "-c", required=True)
@click.option("--compute", "compute_target", default="local", show_default=True)
@click.option("--param", "params", multiple=True, required=True,
              help="NAME=DISTRIBUTION(ARGS), e.g. '--learning-rate=loguniform(-6, -1)' (repeatable).")
@click.option("--sampling", type=click.Choice(_SAMPLINGS), default="random", show_default=True)
@click.option("--seed", type=int, help="Sampler seed (reproducible sweeps).")
@click.option("--metric", "primary_metric_name", required=True, help="The primary metric the script logs.")
@click.option("--goal", type=click.Choice(["maximize", "minimize"]), default="maximize", show_default=True)
@click.option("--max-total-runs", type=int, help="How many children (a grid's size when left out).")
@click.option("--max-concurrent-runs", type=int, help="How many at once (default: all).")
@click.option("--max-duration-minutes", type=float, default=10080, show_default=True)
@click.option("--policy", type=click.Choice(_POLICIES), default="none", show_default=True)
@click.option("--evaluation-interval", type=int, default=1, show_default=True)
@click.option("--delay-evaluation", type=int, default=0, show_default=True)
@click.option("--slack-factor", type=float)
@click.option("--slack-amount", type=float)
@click.option("--truncation-percentage", type=int)
@click.option("--wait/--no-wait", default=False, help="Follow the sweep until it ends.")
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def sweep_submit(ctx, experiment, source_directory, entry_script, compute_target, params, sampling, seed,
                 primary_metric_name, goal, max_total_runs, max_concurrent_runs, max_duration_minutes, policy,
                 evaluation_interval, delay_evaluation, slack_factor, slack_amount, truncation_percentage, wait,
                 script_args):
    """Submit a sweep of ENTRY_SCRIPT; fixed arguments after -- go to every child."""
    from ..core.experiment import Experiment
    from ..train.estimator import Estimator
    from ..train.hyperdrive import (BayesianParameterSampling, GridParameterSampling, HyperDriveConfig,
                                    RandomParameterSampling)
    from . import _parse_arg_value
    ws = _ws(ctx)
    space = dict(parse_param(p) for p in params)
    if len(space) != len(params):
        raise click.BadParameter("a parameter is given twice", param_hint="--param")
    cls = {"random": RandomParameterSampling, "grid": GridParameterSampling,
           "bayesian": BayesianParameterSampling}[sampling]
    ps = cls(space, properties={"seed": seed} if seed is not None else None)
    pol = _policy(policy, evaluation_interval, delay_evaluation, slack_factor, slack_amount, truncation_percentage)
    est = Estimator(source_directory=source_directory, entry_script=entry_script, compute_target=compute_target,
                    arguments=[_parse_arg_value(ws, a) for a in script_args])
    htc = HyperDriveConfig(run_config=est, hyperparameter_sampling=ps, policy=pol,
                           primary_metric_name=primary_metric_name, primary_metric_goal=goal,
                           max_total_runs=max_total_runs, max_concurrent_runs=max_concurrent_runs,
                           max_duration_minutes=max_duration_minutes)
    htr = Experiment(ws, experiment).submit(htc)
    if not wait:
        _out(ctx, {"run_id": htr.id, "status": htr.get_status()}, htr.id)
        return
    details = htr.wait_for_completion(show_output=not ctx.obj.get("json"), raise_on_error=False)
    if ctx.obj.get("json"):
        _out(ctx, {"run_id": htr.id, "status": details["status"], "error": details.get("error"),
                   "best_child_run_id": details.get("bestChildRunId")})
    sys.exit(0 if details["status"] == "Completed" else 1)


@sweep.command("list")
@click.option("--experiment", "-e")
@click.option("--limit", type=int, default=50)
@click.pass_context
def sweep_list(ctx, experiment, limit):
    """List sweeps, newest first."""
    from ..store import sweeps as sweep_rows
    ws = _ws(ctx)
    rows = sweep_rows.sweep_summaries(ws.db.conn, experiment=experiment, limit=limit)
    _out(ctx, rows, _table([[r["id"], r["experiment"], r["status"], r["children"], _fmt_time(r["created"])]
                            for r in rows], ["ID", "EXPERIMENT", "STATUS", "CHILDREN", "CREATED"]))


@sweep.command("show")
@click.argument("run_id")
@click.pass_context
def sweep_show(ctx, run_id):
    """Show a sweep: its settings, state, children's states and best child."""
    htr = _sweep(_ws(ctx), run_id)
    d = htr.get_details()
    data = {"run_id": htr.id, "experiment": htr.experiment.name, "status": d["status"],
            "settings": d["hyperdrive"], "children": d["childStatusCounts"],
            "best_child_run_id": d.get("bestChildRunId"), "error": d.get("error", {}).get("message")}
    counts = ", ".join(f"{n} {s}" for s, n in sorted(data["children"].items())) or "none"
    metric = d["hyperdrive"]["primary_metric"]
    text = (f"Sweep {htr.id} ({data['experiment']}): {data['status']}\n"
            f"Primary metric: {metric['name']} ({metric['goal']})\nChildren: {counts}\n"
            f"Best child: {data['best_child_run_id'] or '-'}")
    if data["error"]:
        text += f"\nError: {data['error']}"
    _out(ctx, data, text)


@sweep.command("children")
@click.argument("run_id")
@click.option("--top", type=int, default=0, help="Only the best N (0: all).")
@click.pass_context
def sweep_children(ctx, run_id, top):
    """The sweep's children, best primary metric first."""
    htr = _sweep(_ws(ctx), run_id)
    ranked = htr.get_children_sorted_by_primary_metric(top=top)
    rows = [[r["number"], r["run_id"], r["status"], r["best_primary_metric"] if r["best_primary_metric"] is not None
             else "-", " ".join(f"{k}={v}" for k, v in r["hyperparameters"].items()), r["early_termination"] or ""]
            for r in ranked]
    _out(ctx, ranked, _table(rows, ["#", "ID", "STATUS", htr.primary_metric_name.upper(), "HYPERPARAMETERS",
                                    "EARLY TERMINATION"]))


@sweep.command("best")
@click.argument("run_id")
@click.option("--register-model", "model_name", help="Register the best child's model under this name.")
@click.option("--model-path", default="outputs/model", show_default=True)
@click.pass_context
def sweep_best(ctx, run_id, model_name, model_path):
    """The child with the best primary metric (optionally registering its model)."""
    htr = _sweep(_ws(ctx), run_id)
    best = htr.get_best_run_by_primary_metric()
    if best is None:
        raise click.ClickException(f"no child of sweep {run_id} logged the primary metric "
                                   f"{htr.primary_metric_name!r} yet")
    top = htr.get_children_sorted_by_primary_metric(top=1)[0]
    data = {"run_id": best.id, "status": best.get_status(), "hyperparameters": best.hyperparameters,
            "best_primary_metric": top["best_primary_metric"]}
    if model_name:
        model = best.register_model(model_name=model_name, model_path=model_path,
                                    tags={"sweep": htr.id, "hyperparameters": str(best.hyperparameters)})
        data["model"] = model.id
    text = f"{best.id} {htr.primary_metric_name}={data['best_primary_metric']} {best.hyperparameters}"
    if model_name:
        text += f"\nRegistered model {data['model']}"
    _out(ctx, data, text)


@sweep.command("cancel")
@click.argument("run_id")
@click.option("--wait-seconds", type=float, default=60.0, show_default=True)
@click.pass_context
def sweep_cancel(ctx, run_id, wait_seconds):
    """Cancel a sweep and every child."""
    htr = _sweep(_ws(ctx), run_id)
    status = htr.cancel(wait_seconds=wait_seconds)
    _out(ctx, {"run_id": htr.id, "status": status}, f"{htr.id}: {status}")
