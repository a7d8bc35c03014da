"""Endpoint work for the window, run on worker threads: list, detail, stats, test requests, logs,
start / stop / delete, key rotation and deployment.

Plain functions ``f(ws, state, ...) -> data`` for :meth:`Bridge.run` over
``mltrain_desktop.core.webservice``; they return plain dicts and strings (no Qt). Every one
of them may block (HTTP to the service, the Docker engine, waiting for a service to start), so
none may run on the GUI thread. :func:`example_request` and :func:`check_endpoint_name` are
pure and cheap.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from ...app.queries import endpoint_exists, endpoint_names
from ...core.webservice import signature_from_metadata  # noqa: F401 - the view and tests use it from here

NO_CODE_FRAMEWORKS = ("TensorFlow", "Keras", "", None)
NO_KEY = "no key (auth disabled)"
MAX_EXAMPLE_VALUES = 50_000  # a bigger input (e.g. a 224x224x3 image) gets an empty example
LOG_LINES = 5000


def check_endpoint_name(name: str, taken: set[str] | frozenset[str] = frozenset()) -> str | None:
    """Why ``name`` cannot be an endpoint's name, or None if it can."""
    from ...core.webservice import endpoint_name_problem
    problem = endpoint_name_problem(name)
    if problem is None and name in taken:
        problem = f"An endpoint named {name!r} already exists: choose another name, or delete it first."
    return problem


# ------------------------------------------------------------------------------ reading

def _record(svc) -> dict:
    d = svc.as_dict()
    d["model"] = d["models"][0] if d.get("models") else ""
    d["url"] = d.get("scoring_uri") or ""
    return d


def list_endpoints(ws, state=None) -> list[dict]:
    """Every endpoint with its state (a service found dead is marked Unhealthy on the way)."""
    from ...core.webservice import Webservice, WebserviceException
    out = []
    for name in endpoint_names(ws):
        try:
            svc = Webservice(ws, name)
            svc.refresh()
            out.append(_record(svc))
        except WebserviceException:
            continue  # deleted meanwhile
    return out


def endpoint_detail(ws, state, name: str) -> dict:
    """The endpoint's record, key, base URI, input signature and an example request."""
    from ...core.webservice import Webservice
    svc = Webservice(ws, name)
    svc.refresh()
    d = _record(svc)
    # an endpoint deployed with auth_enabled=False has no key to show
    d["key"] = svc.get_keys()[0] if d["auth_enabled"] else NO_KEY
    d["base_uri"] = svc.base_uri if d.get("port") else ""
    d["signature"] = svc.signature() if d["state"] == "Healthy" else None
    d["example"] = example_request(d["signature"], has_entry_script=bool(d["entry_script"]))
    return d


def pretty_json(value, width: int = 96, _indent: int = 0) -> str:
    """JSON with a container on one line when it fits in ``width``, else one item per line:
    an image's rows stay rows, a list of predictions one line per instance."""
    s = json.dumps(value)
    if len(s) + 2 * _indent <= width or not isinstance(value, (list, dict)) or not value:
        return s
    pad, end = "  " * (_indent + 1), "  " * _indent
    if isinstance(value, list):
        items = [pad + pretty_json(v, width, _indent + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + end + "]"
    items = [pad + json.dumps(k) + ": " + pretty_json(v, width, _indent + 1) for k, v in value.items()]
    return "{\n" + ",\n".join(items) + "\n" + end + "}"


def _zeros(shape: list[int], dtype: str, size: int):
    if dtype == "string":
        zero = ""
    elif dtype == "bool":
        zero = False
    else:
        zero = 0 if ("int" in dtype or size > 64) else 0.0  # a big input: 0 reads shorter than 0.0
    value = zero
    for d in reversed(shape):
        value = [value] * max(1, d if d and d > 0 else 1)
    return value


def example_request(sig: dict | None, has_entry_script: bool = False) -> str:
    """A request body that fits the signature: one instance of zeros (TF Serving's row format)."""
    if has_entry_script and not sig:
        return '{"data": [[0.0]]}'
    inputs = (sig or {}).get("inputs") or []
    if not inputs or any(s.get("shape") is None for s in inputs):
        return '{"instances": [[0.0]]}'
    size = 0
    for s in inputs:
        n = 1
        for d in s["shape"][1:]:
            n *= d if d and d > 0 else 1
        size += n
    if size > MAX_EXAMPLE_VALUES:
        return '{"instances": []}'
    if len(inputs) == 1:
        s = inputs[0]
        instance = _zeros(s["shape"][1:], s["dtype"], size)
    else:
        instance = {s["name"]: _zeros(s["shape"][1:], s["dtype"], size) for s in inputs}
    return pretty_json({"instances": [instance]})


def endpoint_stats(ws, state, name: str) -> dict:
    """GET /v1/stats (not counted by the service): requests, errors, requests_per_s, latency_ms."""
    from ...core.webservice import Webservice
    return Webservice(ws, name).stats() or {}


def send_request(ws, state, name: str, body: str) -> dict:
    """Sends ``body`` to the endpoint's :predict; ``{"answer", "ms"}``. Raises with the
    service's own message on a 4xx/5xx answer."""
    from ...core.webservice import Webservice
    svc = Webservice(ws, name)
    t0 = time.perf_counter()
    answer = svc.run(body)
    ms = (time.perf_counter() - t0) * 1e3
    return {"answer": answer, "ms": ms, "text": pretty_json(answer)}


def endpoint_logs(ws, state, name: str, lines: int = LOG_LINES) -> str:
    from ...core.webservice import Webservice
    return Webservice(ws, name).get_logs(lines)


def rotate_key(ws, state, name: str) -> str:
    from ...core.webservice import Webservice
    return Webservice(ws, name).regen_key()


def stop_endpoint(ws, state, name: str) -> str:
    from ...core.webservice import Webservice
    Webservice(ws, name).stop()
    return name


def start_endpoint(ws, state, name: str) -> dict:
    from ...core.webservice import Webservice
    svc = Webservice(ws, name)
    state.progress(0, 0, f"starting {name}")
    st = svc.start()
    return {"name": name, "state": st, "detail": svc.state_detail,
            "log": svc.get_logs(60) if st != "Healthy" else ""}


def delete_endpoint(ws, state, name: str) -> str:
    from ...core.webservice import Webservice
    Webservice(ws, name).delete()
    return name


# ------------------------------------------------------------------------------ deploying

def deploy_choices(ws, state=None) -> dict:
    """What the Deploy dialog offers: models (name, versions, framework), Docker targets,
    the endpoint names already taken."""
    from ...core.compute import ComputeTarget
    from ...core.model import Model
    models: dict[str, list[dict]] = {}
    for m in sorted(Model.list(ws), key=lambda m: (m.name, -m.version)):
        models.setdefault(m.name, []).append({"version": m.version, "framework": m.model_framework or ""})
    targets = [{"name": t.name, "state": t.provisioning_state, "detail": t.state_detail}
               for t in ComputeTarget.list(ws).values() if t.kind == "docker"]
    return {"models": models, "targets": targets, "endpoints": endpoint_names(ws)}


def deploy_model(ws, state, form: dict) -> dict:
    """Deploys ``form`` = {name, model, version, where ("local" or a docker target), port,
    entry_script, overwrite, auth_enabled (default True: a key)} and waits until the service is Healthy or Failed.
    Returns the endpoint's record plus its log when it did not become Healthy."""
    from ...core.model import Model
    from ...core.webservice import InferenceConfig, LocalWebservice, Webservice, deploy
    model = Model(ws, form["model"], version=int(form["version"]) if form.get("version") else None)
    if form.get("where", "local") == "local":
        config = LocalWebservice.deploy_configuration(port=int(form.get("port") or 0) or None,
                                                      auth_enabled=bool(form.get("auth_enabled", True)))
    else:
        from ...core.webservice import DockerWebservice
        config = DockerWebservice.deploy_configuration(compute_target=form["where"],
                                                       port=int(form.get("port") or 0) or None,
                                                       auth_enabled=bool(form.get("auth_enabled", True)))
    ic = None
    if form.get("entry_script"):
        p = Path(form["entry_script"]).expanduser()
        ic = InferenceConfig(entry_script=p.name, source_directory=str(p.parent))
    state.progress(0, 0, f"starting the service for {model.id}")
    overwrite = bool(form.get("overwrite"))
    existed = endpoint_exists(ws, form["name"])
    try:
        svc = deploy(ws, form["name"], [model], inference_config=ic, deployment_config=config,
                     overwrite=overwrite)
    except Exception as exc:
        # a launch that failed (e.g. no Docker engine) leaves a Failed endpoint: show it as such;
        # a refusal (bad name, name taken, not a no-code model) created nothing: raise it
        if not endpoint_exists(ws, form["name"]) or (existed and not overwrite):
            raise
        svc = Webservice(ws, form["name"])
        out = _record(svc)
        out["detail"] = out.get("detail") or str(exc)
        out["log"] = svc.get_logs(200)
        return out
    out = _record(svc)
    out["log"] = svc.get_logs(200) if out["state"] != "Healthy" else ""
    return out
