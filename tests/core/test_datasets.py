"""File datasets: sources of every kind, content addressing, versions, URL downloads and their failures."""
from __future__ import annotations

import http.server
import os
import threading
import time

import pytest

from mltrain_desktop.core import Dataset
from mltrain_desktop.core.dataset import DatasetError
from mltrain_desktop.core.samples import SUBSET_DIR


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(3)
        if self.path.startswith("/short"):  # promises more bytes than it sends
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            return
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    _Handler.files = {"/data/a.bin": os.urandom(300_000), "/data/b.txt": b"hello"}
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def _versions(ws):
    return ws.db.execute("SELECT COUNT(*) FROM dataset_versions").fetchone()[0]


def test_register_files_folder_glob(ws, tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "x.txt").write_text("x")
    (tmp_path / "d" / "sub" / "y.txt").write_text("y")
    ds = Dataset.File.from_files(path=[str(tmp_path / "d")]).register(ws, "folder")
    assert ds.to_path() == ["/sub/y.txt", "/x.txt"]
    ds2 = Dataset.File.from_files(path=str(SUBSET_DIR / "*.gz")).register(ws, "glob", "four files")
    assert len(ds2.files) == 4 and ds2.version == 1 and ds2.description == "four files"
    mount = ds2.mount_path()
    assert sorted(p.name for p in mount.iterdir() if not p.name.startswith(".")) == sorted(f["path"] for f in ds2.files)
    assert oct((mount / ds2.files[0]["path"]).stat().st_mode & 0o777) == "0o444"


def test_same_bytes_stored_once_and_versions_are_immutable(ws, tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(os.urandom(50_000))
    v1 = Dataset.File.from_files(path=[str(f)]).register(ws, "d", create_new_version=True)
    v2 = Dataset.File.from_files(path=[str(f)]).register(ws, "d", create_new_version=True)
    assert (v1.version, v2.version) == (1, 2)
    blobs = [p for p in ws.blobs_dir.rglob("*") if p.is_file()]
    assert len(blobs) == 1
    f.write_bytes(b"changed")
    v3 = Dataset.File.from_files(path=[str(f)]).register(ws, "d", create_new_version=True)
    assert Dataset.get_by_name(ws, "d", 1).files[0]["sha256"] == v1.files[0]["sha256"] != v3.files[0]["sha256"]
    assert Dataset.get_by_name(ws, "d").version == 3


def test_existing_name_without_new_version(ws, tmp_path):
    (tmp_path / "a").write_text("a")
    Dataset.File.from_files(path=[str(tmp_path / "a")]).register(ws, "d")
    with pytest.raises(DatasetError, match="already exists"):
        Dataset.File.from_files(path=[str(tmp_path / "a")]).register(ws, "d")
    assert _versions(ws) == 1


def test_unknown_name_or_version(ws, tmp_path):
    (tmp_path / "a").write_text("a")
    Dataset.File.from_files(path=[str(tmp_path / "a")]).register(ws, "known")
    with pytest.raises(DatasetError, match="no dataset named 'nope'.*known"):
        Dataset.get_by_name(ws, "nope")
    with pytest.raises(DatasetError, match=r"has no version 7; its versions are \[1\]"):
        Dataset.get_by_name(ws, "known", 7)
    with pytest.raises(DatasetError, match="must be a number"):
        Dataset.get_by_name(ws, "known", "seven")


def test_path_that_does_not_exist(ws, tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        Dataset.File.from_files(path=[str(tmp_path / "missing.gz")])
    with pytest.raises(DatasetError, match="matches no files"):
        Dataset.File.from_files(path=[str(tmp_path / "*.nothing")]).register(ws, "x")
    assert _versions(ws) == 0


def test_url_download(ws, server):
    seen = []
    ds = Dataset.File.from_files(path=[f"{server}/data/a.bin", f"{server}/data/b.txt"]).register(
        ws, "web", progress=lambda d, t, m: seen.append((d, t)))
    assert ds.to_path() == ["/a.bin", "/b.txt"]
    assert (ds.mount_path() / "a.bin").read_bytes() == _Handler.files["/data/a.bin"]
    assert seen and seen[-1][0] == seen[-1][1] == 5


def test_url_404_leaves_no_version(ws, server):
    with pytest.raises(DatasetError, match="HTTP 404"):
        Dataset.File.from_files(path=[f"{server}/data/b.txt", f"{server}/data/missing.gz"]).register(ws, "web")
    assert _versions(ws) == 0
    assert not list((ws.path / "tmp").iterdir())


def test_url_timeout_and_short_body(ws, server, monkeypatch):
    import mltrain_desktop.core.dataset as dsmod
    monkeypatch.setattr(dsmod, "URL_TIMEOUT", 0.5)
    with pytest.raises(DatasetError, match="downloading .*slow.* failed"):
        Dataset.File.from_files(path=[f"{server}/slow/x.bin"]).register(ws, "slow")
    with pytest.raises(DatasetError, match="stopped at 10 of 1000 bytes"):
        Dataset.File.from_files(path=[f"{server}/short/x.bin"]).register(ws, "short")
    assert _versions(ws) == 0
    assert not list((ws.path / "tmp").iterdir())


def test_download_and_named_inputs(ws, tmp_path):
    ds = Dataset.File.from_files(path=str(SUBSET_DIR / "*.gz")).register(ws, "mnist dataset")
    out = ds.download(tmp_path / "copy")
    assert len(out) == 4
    inp = ds.as_named_input("mnist")
    assert inp.as_mount().mode == "mount" and inp.as_download().mode == "download"
    assert inp.as_mount().to_spec()["version_id"] == ds.version_id


def test_bad_names(ws, tmp_path):
    (tmp_path / "a").write_text("a")
    with pytest.raises(DatasetError, match="non-empty name"):
        Dataset.File.from_files(path=[str(tmp_path / "a")]).register(ws, "  ")
    with pytest.raises(DatasetError, match="not a string"):
        Dataset.File.from_files(path=[42], validate=False).register(ws, "n")
