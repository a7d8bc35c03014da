"""The local inference service: a TensorFlow-Serving-compatible REST server for one model (``server``), its wire protocol (``protocol``) and request counters (``stats``)."""
