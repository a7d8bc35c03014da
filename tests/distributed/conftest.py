"""Fixtures for the distributed-training tests (helpers live in dist_helpers.py)."""
from __future__ import annotations

import os

import pytest

from dist_helpers import context_factory


@pytest.fixture
def make_ctx(tmp_path):
    """make_ctx(dist, script=FAKE_JOB, args=(), config=None) -> JobContext."""
    return context_factory(tmp_path)


@pytest.fixture(autouse=True)
def _no_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
