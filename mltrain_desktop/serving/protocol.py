"""TensorFlow Serving REST protocol: routes, request parsing and validation, response shapes.

Pure Python + numpy (no TensorFlow), so it can be unit-tested fast and reused by a client.

A model is described by ``TensorSpec`` lists (inputs and outputs). ``parse_predict_request``
turns a ``:predict`` body into ``{input_name: np.ndarray}`` feeds checked against those specs;
``format_predict_response`` turns ``{output_name: np.ndarray}`` back into JSON, in the format
the request used:

- row format ``{"instances": [...]}`` -> ``{"predictions": [...]}``; with several inputs each
  instance is an object keyed by input name; with several outputs each prediction is one;
- columnar format ``{"inputs": ...}`` -> ``{"outputs": ...}``; for a single-input model
  ``inputs`` may be the bare (batched) value or ``{"<input name>": value}``.

String inputs take JSON strings or ``{"b64": "..."}`` objects, as TF Serving does.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import re
from typing import Any, Sequence

import numpy as np

# numpy dtype name -> TensorFlow DataType enum name (as TF Serving's metadata shows it).
_TF_DTYPES = {
    "float16": "DT_HALF", "bfloat16": "DT_BFLOAT16", "float32": "DT_FLOAT",
    "float64": "DT_DOUBLE", "int8": "DT_INT8", "int16": "DT_INT16", "int32": "DT_INT32",
    "int64": "DT_INT64", "uint8": "DT_UINT8", "uint16": "DT_UINT16", "uint32": "DT_UINT32",
    "uint64": "DT_UINT64", "bool": "DT_BOOL", "string": "DT_STRING",
    "complex64": "DT_COMPLEX64", "complex128": "DT_COMPLEX128",
}


class ProtocolError(Exception):
    """A request the server refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str                          # numpy-style name ("float32", "int64", "string", ...)
    shape: tuple[int | None, ...] | None  # None = unknown rank; None dims = any size

    def shape_list(self) -> list[int] | None:
        return None if self.shape is None else [-1 if d is None else int(d) for d in self.shape]

    def to_json(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": self.shape_list()}

    @classmethod
    def from_json(cls, d: dict) -> "TensorSpec":
        shape = d.get("shape")
        if shape is not None:
            shape = tuple(None if s is None or s < 0 else s for s in shape)
        return cls(d["name"], d["dtype"], shape)

    def tensor_info(self, graph_name: str) -> dict:
        """TF Serving's TensorInfo JSON (as its metadata endpoint prints it)."""
        if self.shape is None:
            shape = {"dim": [], "unknown_rank": True}
        else:
            shape = {"dim": [{"size": str(-1 if d is None else d), "name": ""} for d in self.shape],
                     "unknown_rank": False}
        return {"dtype": _TF_DTYPES.get(self.dtype, "DT_INVALID"), "tensor_shape": shape,
                "name": graph_name}

    @property
    def is_string(self) -> bool:
        return self.dtype == "string"


def fmt_shape(shape: Sequence[int | None] | None) -> str:
    if shape is None:
        return "<any rank>"
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape) + "]"


# --------------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Route:
    kind: str                  # healthz | stats | score | status | metadata | predict
    methods: tuple[str, ...]   # allowed methods
    model: str | None = None
    version: str | None = None
    verb: str | None = None    # for :classify/:regress (unsupported)


_MODEL_RE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+))?"
    r"(?:(?P<meta>/metadata)|:(?P<verb>[A-Za-z]+))?/?$")


def match_route(path: str) -> Route | None:
    """The route for a request path (query string ignored), or None if unknown (404)."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    if path == "/healthz":
        return Route("healthz", ("GET",))
    if path == "/v1/stats":
        return Route("stats", ("GET",))
    if path == "/score":
        return Route("score", ("POST",))
    m = _MODEL_RE.match(path)
    if not m:
        return None
    name, version = m.group("name"), m.group("version")
    if m.group("meta"):
        return Route("metadata", ("GET",), name, version)
    verb = m.group("verb")
    if verb is None:
        return Route("status", ("GET",), name, version)
    if verb == "predict":
        return Route("predict", ("POST",), name, version)
    if verb in ("classify", "regress"):
        return Route("unsupported", ("POST",), name, version, verb)
    return None


# --------------------------------------------------------------------------------------------
# Status and metadata
# --------------------------------------------------------------------------------------------

def model_status(version: str | int) -> dict:
    return {"model_version_status": [
        {"version": str(version), "state": "AVAILABLE",
         "status": {"error_code": "OK", "error_message": ""}}]}


def model_metadata(name: str, version: str | int, inputs: Sequence[TensorSpec] | None,
                   outputs: Sequence[TensorSpec] | None) -> dict:
    sigs: dict[str, Any] = {}
    if inputs is not None:
        sigs["serving_default"] = {
            "inputs": {s.name: s.tensor_info(f"serving_default_{s.name}:0") for s in inputs},
            "outputs": {s.name: s.tensor_info(f"StatefulPartitionedCall:{i}")
                        for i, s in enumerate(outputs or [])},
            "method_name": "tensorflow/serving/predict",
        }
    return {"model_spec": {"name": name, "signature_name": "", "version": str(version)},
            "metadata": {"signature_def": {"signature_def": sigs}}}


# --------------------------------------------------------------------------------------------
# Predict requests
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class PredictRequest:
    feeds: dict[str, np.ndarray]
    row_format: bool
    batch_size: int


def parse_json_body(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProtocolError(f"request body is not UTF-8 text ({e})") from None
    if not text.strip():
        raise ProtocolError("request body is empty; send a JSON object such as "
                            '{"instances": [...]} or {"inputs": ...}')
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ProtocolError(f"request body is not valid JSON: {e}") from None


def parse_predict_request(body: bytes | Any, inputs: Sequence[TensorSpec],
                          data_alias: bool = False) -> PredictRequest:
    """Parses and validates a predict body (bytes, or an already decoded JSON value).

    ``data_alias``: also accept ``{"data": [...]}`` as the row format (Azure ML's habit,
    used for ``/score`` when no entry script is deployed).
    """
    doc = parse_json_body(body) if isinstance(body, (bytes, bytearray)) else body
    if not isinstance(doc, dict):
        raise ProtocolError("request body must be a JSON object with 'instances' (row format) "
                            f"or 'inputs' (columnar format), not a JSON {type(doc).__name__}")
    sig = doc.get("signature_name")
    if sig not in (None, "", "serving_default"):
        raise ProtocolError(f"unknown signature_name {sig!r}: this model serves only "
                            "'serving_default'")
    has_rows, has_cols = "instances" in doc, "inputs" in doc
    if data_alias and "data" in doc and not has_rows and not has_cols:
        doc = {"instances": doc["data"]}
        has_rows = True
    if has_rows and has_cols:
        raise ProtocolError("request has both 'instances' and 'inputs'; send one: 'instances' "
                            "(a list of rows) or 'inputs' (columnar)")
    if not has_rows and not has_cols:
        keys = ", ".join(repr(k) for k in list(doc)[:5]) or "none"
        raise ProtocolError("request has neither 'instances' (row format) nor 'inputs' "
                            f"(columnar format); keys found: {keys}")
    if not inputs:
        raise ProtocolError("the model has no inputs to feed", 500)
    if has_rows:
        feeds = _parse_rows(doc["instances"], inputs)
        row = True
    else:
        feeds = _parse_columns(doc["inputs"], inputs)
        row = False
    sizes = {k: v.shape[0] for k, v in feeds.items()}
    if len(set(sizes.values())) > 1:
        raise ProtocolError(f"inputs have different batch sizes: {sizes}")
    return PredictRequest(feeds, row, next(iter(sizes.values())))


def _is_b64(v: Any) -> bool:
    return isinstance(v, dict) and len(v) == 1 and "b64" in v


def _parse_rows(instances: Any, inputs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    if not isinstance(instances, list):
        raise ProtocolError(f"'instances' must be a list of rows, not a JSON "
                            f"{type(instances).__name__}")
    if not instances:
        raise ProtocolError("empty batch: 'instances' is an empty list; send at least one row")
    names = [s.name for s in inputs]
    if len(inputs) == 1:
        spec = inputs[0]
        if all(isinstance(r, dict) and not _is_b64(r) for r in instances):
            values = []
            for i, r in enumerate(instances):
                if set(r) != {spec.name}:
                    raise ProtocolError(f"instance {i} has keys {sorted(r)}; the model's only "
                                        f"input is {spec.name!r}")
                values.append(r[spec.name])
        else:
            values = instances
        return {spec.name: to_array(values, spec, "instances", row_format=True)}
    per_input: dict[str, list] = {n: [] for n in names}
    for i, r in enumerate(instances):
        if not isinstance(r, dict) or _is_b64(r):
            raise ProtocolError(f"the model has {len(inputs)} inputs ({', '.join(names)}): each "
                                f"instance must be an object keyed by input name; instance {i} "
                                "is not")
        missing = [n for n in names if n not in r]
        extra = sorted(k for k in r if k not in per_input)
        if missing or extra:
            raise ProtocolError(f"instance {i}: missing inputs {missing}, unknown keys {extra}; "
                                f"expected exactly {names}")
        for n in names:
            per_input[n].append(r[n])
    return {s.name: to_array(per_input[s.name], s, f"instances[*].{s.name}", row_format=True)
            for s in inputs}


def _parse_columns(value: Any, inputs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    names = [s.name for s in inputs]
    if isinstance(value, dict) and not _is_b64(value):
        missing = [n for n in names if n not in value]
        extra = sorted(k for k in value if k not in names)
        if missing or extra:
            raise ProtocolError(f"'inputs': missing inputs {missing}, unknown keys {extra}; "
                                f"expected exactly {names}")
        return {s.name: to_array(value[s.name], s, f"inputs.{s.name}", row_format=False)
                for s in inputs}
    if len(inputs) != 1:
        raise ProtocolError(f"the model has {len(inputs)} inputs ({', '.join(names)}): 'inputs' "
                            "must be an object keyed by input name")
    return {inputs[0].name: to_array(value, inputs[0], "inputs", row_format=False)}


def _decode_strings(v: Any) -> Any:
    if isinstance(v, list):
        return [_decode_strings(x) for x in v]
    if _is_b64(v):
        try:
            return base64.b64decode(v["b64"], validate=True)
        except (ValueError, TypeError) as e:
            raise ProtocolError(f"bad base64 value: {e}") from None
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, bytes):
        return v
    raise ProtocolError(f"expected strings (or {{\"b64\": ...}} objects), got "
                        f"{type(v).__name__} {v!r:.40}")


def _expectation(spec: TensorSpec, row_format: bool) -> str:
    if spec.shape is None:
        return f"dtype {spec.dtype}, any shape"
    if row_format:
        return (f"each instance of shape {fmt_shape(spec.shape[1:])} and dtype {spec.dtype} "
                f"(input {spec.name!r} has shape {fmt_shape(spec.shape)})")
    return f"shape {fmt_shape(spec.shape)} and dtype {spec.dtype}"


def to_array(value: Any, spec: TensorSpec, where: str, row_format: bool) -> np.ndarray:
    """``value`` (batched: rows first) as an array of ``spec``'s dtype; ProtocolError if it
    cannot be one or its shape does not fit."""
    expect = _expectation(spec, row_format)
    if spec.is_string:
        try:
            raw = np.array(_decode_strings(value), dtype=object)
        except ValueError as e:
            raise ProtocolError(f"{where}: nested lists of different lengths ({e}); expected "
                                f"{expect}") from None
        arr = raw
    else:
        try:
            raw = np.asarray(value)
        except (ValueError, TypeError) as e:
            raise ProtocolError(f"{where}: nested lists of different lengths or mixed types "
                                f"({_short(e)}); expected {expect}") from None
        kind = raw.dtype.kind
        if kind in "OUS":
            what = "strings" if kind in "US" else "mixed or missing values (null, objects)"
            raise ProtocolError(f"{where}: got {what} but the model expects numbers; "
                                f"expected {expect}")
        target = np.dtype(spec.dtype) if spec.dtype != "bfloat16" else np.dtype("float32")
        if target.kind in "iu":
            if kind == "b":
                raise ProtocolError(f"{where}: got booleans; expected {expect}")
            if kind == "f" and raw.size and not np.all(np.isfinite(raw) & (np.mod(raw, 1) == 0)):
                raise ProtocolError(f"{where}: got non-integer numbers; expected {expect}")
            if raw.size:
                info = np.iinfo(target)
                lo, hi = raw.min(), raw.max()
                if lo < info.min or hi > info.max:
                    raise ProtocolError(f"{where}: values out of range for {spec.dtype} "
                                        f"({lo}..{hi}); expected {expect}")
        elif target.kind == "b":
            if kind not in "biu" or (kind in "iu" and raw.size and
                                     not np.all((raw == 0) | (raw == 1))):
                raise ProtocolError(f"{where}: got {raw.dtype.name} values; expected {expect}")
        elif target.kind in "fc" and kind == "b":
            raise ProtocolError(f"{where}: got booleans; expected {expect}")
        arr = raw.astype(target, copy=False)
    if arr.ndim == 0:
        raise ProtocolError(f"{where}: got a single scalar; expected a batch (a list with one "
                            f"entry per example) of {expect}")
    if arr.shape[0] == 0:
        raise ProtocolError(f"empty batch: {where} has no rows; send at least one")
    if spec.shape is not None:
        ok = arr.ndim == len(spec.shape) and all(
            d is None or d == a for d, a in zip(spec.shape, arr.shape))
        if not ok:
            if row_format:
                got = (f"got {arr.shape[0]} instance(s) of shape {fmt_shape(arr.shape[1:])}")
            else:
                got = f"got shape {fmt_shape(arr.shape)}"
            raise ProtocolError(f"{where}: wrong shape: {got}; expected {expect}")
    return arr


def _short(e: Exception) -> str:
    s = str(e)
    return s if len(s) <= 160 else s[:157] + "..."


# --------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------

def to_jsonable(arr: np.ndarray) -> Any:
    """An output tensor as JSON-ready lists (bytes -> str, or {"b64"} when not UTF-8)."""
    arr = np.asarray(arr)
    if arr.dtype.kind in "OS":
        def conv(v):
            if isinstance(v, list):
                return [conv(x) for x in v]
            if isinstance(v, bytes):
                try:
                    return v.decode("utf-8")
                except UnicodeDecodeError:
                    return {"b64": base64.b64encode(v).decode("ascii")}
            return v
        return conv(arr.tolist())
    if arr.dtype.kind == "V" or arr.dtype.name == "bfloat16":
        arr = arr.astype(np.float32)
    return arr.tolist()


def format_predict_response(outputs: dict[str, np.ndarray], output_names: Sequence[str],
                            row_format: bool) -> dict:
    names = [n for n in output_names if n in outputs] + [n for n in outputs
                                                         if n not in output_names]
    if row_format:
        if len(names) == 1:
            return {"predictions": to_jsonable(outputs[names[0]])}
        sizes = {n: (np.shape(outputs[n])[0] if np.ndim(outputs[n]) else None) for n in names}
        if len(set(sizes.values())) != 1 or None in sizes.values():
            raise ProtocolError("the model's outputs have different batch sizes "
                                f"({sizes}); use the columnar 'inputs' format", 400)
        cols = {n: to_jsonable(outputs[n]) for n in names}
        count = next(iter(sizes.values()))
        return {"predictions": [{n: cols[n][i] for n in names} for i in range(count)]}
    if len(names) == 1:
        return {"outputs": to_jsonable(outputs[names[0]])}
    return {"outputs": {n: to_jsonable(outputs[n]) for n in names}}


def error_body(message: str) -> dict:
    return {"error": message}
