"""Content-addressed file store: each distinct file body is kept once, named by its sha256."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


class BlobStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path_of(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def has(self, digest: str) -> bool:
        return self.path_of(digest).is_file()

    def put_file(self, src: Path) -> tuple[str, int]:
        """Copies ``src`` in (hashing while copying); returns (sha256, size)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        h = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out, open(src, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            return self._commit(tmp, h.hexdigest()), size
        except BaseException:
            _unlink(tmp)
            raise

    def adopt(self, tmp_path: Path, digest: str) -> str:
        """Moves an already-hashed temporary file (inside the store's filesystem) in."""
        return self._commit(str(tmp_path), digest)

    def _commit(self, tmp: str, digest: str) -> str:
        dest = self.path_of(digest)
        if dest.is_file():
            _unlink(tmp)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, dest)
        return digest

    def materialize(self, digest: str, dest: Path) -> None:
        """Places the blob at ``dest`` as a hard link (a copy across filesystems)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        src = self.path_of(digest)
        try:
            os.link(src, dest)
        except OSError:
            shutil.copyfile(src, dest)
            os.chmod(dest, 0o444)


def _unlink(p) -> None:
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass
