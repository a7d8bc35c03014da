"""The server's auth arguments: exactly one of --key-file and --no-auth; NoAuth lets every request through."""
from __future__ import annotations

import pytest

from mltrain_desktop.serving.auth import KeyFile, NoAuth
from mltrain_desktop.serving.server import parse_args

BASE = ["--model-name", "m", "--model-version", "1", "--model-path", "/x"]


def test_one_of_key_file_and_no_auth_is_required(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_args(BASE)
    assert "--key-file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(BASE + ["--no-auth", "--key-file", "k"])
    assert "not allowed with" in capsys.readouterr().err
    assert parse_args(BASE + ["--no-auth"]).no_auth is True
    assert parse_args(BASE + ["--key-file", "k"]).no_auth is False


def test_no_auth_passes_everything_a_key_file_only_its_key(tmp_path):
    assert NoAuth().check(None) and NoAuth().check("Bearer anything")
    (tmp_path / "key").write_text("s3cret\n")
    keys = KeyFile(tmp_path / "key")
    assert keys.check("Bearer s3cret") and not keys.check(None) and not keys.check("Bearer other")
