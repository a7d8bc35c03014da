"""Servables: the loaded model that answers a predict (a Keras model or a SavedModel).

TensorFlow is imported here only when a model is loaded, never at import time.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from .errors import model_error, short_exc
from .model_discovery import check_model_file, resolve_model_path
from .protocol import ProtocolError, TensorSpec

log = logging.getLogger("mltrain.serving")


class Servable:
    kind = "?"
    inputs: list[TensorSpec] | None = None
    outputs: list[TensorSpec] | None = None

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self.outputs or []]

    def signature_json(self) -> dict | None:
        if self.inputs is None:
            return None
        return {"inputs": [s.to_json() for s in self.inputs],
                "outputs": [s.to_json() for s in self.outputs or []]}

    def predict(self, feeds: dict) -> dict:
        raise NotImplementedError

    def warm_up(self) -> None:
        """One prediction on zeros so the first request does not pay for tracing."""
        import numpy as np
        if not self.inputs or any(s.shape is None or s.is_string for s in self.inputs):
            return
        feeds = {}
        for s in self.inputs:
            shape = [1 if (d is None and i == 0) else d for i, d in enumerate(s.shape)]
            if any(d is None for d in shape):
                return
            feeds[s.name] = np.zeros(shape, dtype=s.dtype)
        try:
            self.predict(feeds)
        except Exception as e:  # a model that cannot eat zeros still gets served
            log.warning("warm-up prediction failed (serving anyway): %s", short_exc(e))


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    return tf


def _input_error_types(tf) -> tuple:
    return (tf.errors.InvalidArgumentError, ValueError, TypeError)


class KerasServable(Servable):
    kind = "keras"

    def __init__(self, path: Path):
        tf = _tf()
        import keras
        self._tf = tf
        try:
            model = keras.models.load_model(str(path), compile=False)
        except Exception as e:
            raise model_error(f"not a loadable model: {path} could not be loaded as a Keras "
                              f"model: {short_exc(e)}") from None
        self.model = model
        struct = _structure(model, "input")
        if struct is None:
            # A subclassed model without a known input: accept any float32 batch.
            self._input_kind = "single"
            self.inputs = [TensorSpec("input", "float32", None)]
            self.outputs = None
            self._output_names: list[str] = []
            self._fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
            return
        if isinstance(struct, dict):
            self._input_kind, names, tensors = "dict", list(struct), list(struct.values())
        elif isinstance(struct, (list, tuple)):
            tensors = list(struct)
            self._input_kind, names = "list", [t.name for t in tensors]
            if len(set(names)) != len(names):
                names = [f"input_{i}" for i in range(len(tensors))]
        else:
            self._input_kind, names, tensors = "single", [struct.name], [struct]
        self.inputs = [TensorSpec(n, _dtype_name(t.dtype), tuple(t.shape))
                       for n, t in zip(names, tensors)]
        out = _structure(model, "output")
        if isinstance(out, dict):
            onames, otensors = list(out), list(out.values())
        else:
            otensors = list(out) if isinstance(out, (list, tuple)) else [out]
            onames = list(getattr(model, "output_names", None) or [])
            if len(onames) != len(otensors) or len(set(onames)) != len(onames) or \
                    not all(isinstance(n, str) for n in onames):
                onames = [f"output_{i}" for i in range(len(otensors))]
        self._output_names = onames
        self.outputs = [TensorSpec(n, _dtype_name(t.dtype), tuple(t.shape))
                        for n, t in zip(onames, otensors)]
        kind = self._input_kind
        in_names = names

        def call(*args):
            if kind == "dict":
                x = dict(zip(in_names, args))
            elif kind == "list":
                x = list(args)
            else:
                x = args[0]
            return model(x, training=False)

        sig = [tf.TensorSpec(s.shape, s.dtype if s.dtype != "string" else tf.string)
               for s in self.inputs]
        self._fn = tf.function(call, input_signature=sig, autograph=False)

    def predict(self, feeds: dict) -> dict:
        args = [feeds[s.name] for s in self.inputs]
        try:
            y = self._fn(*args)
        except _input_error_types(self._tf) as e:
            raise ProtocolError(f"the model rejected the input: {_input_error_message(e)}") \
                from None
        return _outputs_to_numpy(y, self._output_names)


class SavedModelServable(Servable):
    kind = "saved_model"

    def __init__(self, path: Path):
        tf = _tf()
        self._tf = tf
        try:
            self._obj = tf.saved_model.load(str(path))
        except Exception as e:
            raise model_error(f"not a loadable model: {path} could not be loaded as a "
                              f"SavedModel: {short_exc(e)}") from None
        sigs = getattr(self._obj, "signatures", {}) or {}
        if "serving_default" in sigs:
            fn = sigs["serving_default"]
        elif len(sigs) == 1:
            name = next(iter(sigs))
            log.warning("SavedModel has no 'serving_default' signature; serving %r", name)
            fn = sigs[name]
        else:
            raise model_error(f"not a loadable model: SavedModel {path} has no "
                              f"'serving_default' signature (signatures: {sorted(sigs)})")
        self._fn = fn
        _, kwargs = fn.structured_input_signature
        self.inputs = [TensorSpec(n, s.dtype.name, _tf_shape(s.shape)) for n, s in kwargs.items()]
        self._tf_dtypes = {n: s.dtype for n, s in kwargs.items()}
        outs = fn.structured_outputs
        if isinstance(outs, dict):
            self.outputs = [TensorSpec(n, s.dtype.name, _tf_shape(s.shape))
                            for n, s in outs.items()]
        else:
            self.outputs = [TensorSpec("output_0", outs.dtype.name, _tf_shape(outs.shape))]

    def predict(self, feeds: dict) -> dict:
        tf = self._tf
        try:
            kw = {n: tf.constant(v, dtype=self._tf_dtypes[n]) for n, v in feeds.items()}
            y = self._fn(**kw)
        except _input_error_types(tf) as e:
            raise ProtocolError(f"the model rejected the input: {_input_error_message(e)}") \
                from None
        return _outputs_to_numpy(y, self.output_names)


def _structure(model: Any, which: str) -> Any:
    """``model.input``/``model.output`` (a tensor, list or dict); for a Sequential model,
    which never gets those, the single tensor of ``model.inputs``/``model.outputs``."""
    try:
        return getattr(model, which)
    except (AttributeError, ValueError):
        pass
    try:
        flat = getattr(model, which + "s")
    except (AttributeError, ValueError):
        return None
    if not flat:
        return None
    return flat[0] if len(flat) == 1 else list(flat)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXC_LINE = re.compile(r"^\s*[A-Za-z_.]*(Error|Exception): ")


def _input_error_message(e: BaseException) -> str:
    """A TF/Keras error without the traced user-code frames and terminal colours."""
    text = _ANSI.sub("", str(e))
    lines = text.splitlines()
    starts = [i for i, ln in enumerate(lines) if _EXC_LINE.match(ln)]
    if starts:
        lines = lines[starts[-1]:]
        lines[0] = _EXC_LINE.sub("", lines[0])
    msg = " ".join(ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("File "))
    msg = f"{type(e).__name__}: {msg}"
    return msg if len(msg) <= 600 else msg[:597] + "..."


def _dtype_name(dtype: Any) -> str:
    name = getattr(dtype, "name", None) or str(dtype)
    return "string" if name in ("string", "object") else name


def _tf_shape(shape) -> tuple | None:
    if shape.rank is None:
        return None
    return tuple(shape.as_list())


def _outputs_to_numpy(y: Any, names: list[str]) -> dict:
    if isinstance(y, dict):
        return {k: v.numpy() for k, v in y.items()}
    if isinstance(y, (list, tuple)):
        return {(names[i] if i < len(names) else f"output_{i}"): v.numpy()
                for i, v in enumerate(y)}
    return {(names[0] if names else "output_0"): y.numpy()}


def load_servable(model_path: str | os.PathLike) -> Servable:
    resolved = resolve_model_path(model_path)
    check_model_file(resolved)
    log.info("loading %s model from %s", resolved.kind, resolved.path)
    if resolved.kind == "keras":
        return KerasServable(resolved.path)
    return SavedModelServable(resolved.path)
