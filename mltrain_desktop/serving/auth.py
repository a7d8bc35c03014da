"""The API key: the content of a key file, re-read whenever the file changes, or no key at all
(an endpoint deployed with ``auth_enabled=False``, as Azure's ACI default: every request passes)."""
from __future__ import annotations

import hmac
import logging
import os
import threading
from pathlib import Path

from .errors import EXIT_KEY_FAILED, StartupError

log = logging.getLogger("mltrain.serving")


class KeyFile:
    """The key is the file's content (whitespace stripped), re-read when the file changes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._sig: tuple | None = None
        self._key: bytes | None = None
        try:
            self._refresh(os.stat(self.path))
        except OSError as e:
            raise StartupError("key", f"cannot read key file {self.path}: {e.strerror or e}",
                               EXIT_KEY_FAILED) from None
        if not self._key:
            raise StartupError("key", f"key file {self.path} is empty", EXIT_KEY_FAILED)

    def _refresh(self, st: os.stat_result) -> None:
        sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        if sig == self._sig:
            return
        data = self.path.read_bytes().strip()
        if self._sig is not None:
            log.info("key file %s changed; new key in use", self.path)
        self._sig, self._key = sig, data or None

    def current(self) -> bytes | None:
        with self._lock:
            try:
                self._refresh(os.stat(self.path))
            except OSError as e:
                if self._key is not None:
                    log.warning("key file %s unreadable (%s); refusing requests", self.path, e)
                self._sig, self._key = None, None
            return self._key

    def check(self, authorization: str | None) -> bool:
        key = self.current()
        if not key or not authorization:
            return False
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(token.strip().encode("utf-8", errors="replace"), key)


class NoAuth:
    """An endpoint without a key: every request passes, with or without an Authorization header."""

    path = None

    def current(self) -> bytes | None:
        return None

    def check(self, authorization: str | None) -> bool:
        return True
