"""Read what was appended to a (log) file since the last call. Pure Python, no Qt.

A job may print anything: bytes that are not UTF-8, a 1 MB line, or its log may not exist yet,
be truncated (a restarted job opening it with "w"), or be deleted and created again.
:class:`FileTailer` copes with each and never raises for them; run it off the GUI thread (a
bridge thread or a timer in a worker) and hand the text to the log view.
"""

from __future__ import annotations

import codecs
import os

__all__ = ["FileTailer"]

DEFAULT_MAX_BYTES = 8 * 1024 * 1024


class FileTailer:
    """Tail one file by byte offset.

    >>> t = FileTailer("runs/abc/logs/driver.log")
    >>> text = t.read()          # '' while the file does not exist
    >>> more = t.read()          # only what was appended since

    * Decoding is incremental UTF-8 with ``errors="replace"``: a multi-byte character split
      between two reads is decoded whole; invalid bytes become U+FFFD.
    * If the file shrank below the offset (truncated) or is another file at the same path
      (deleted and re-created, replaced by rename: a new inode, or seen missing in between),
      reading restarts at byte 0 and
      ``was_reset`` is True for that read (``reset_count`` counts them).
    * At most ``max_bytes`` are read per call (``at_eof`` tells whether more is waiting), so a
      huge existing log is caught up in bounded steps.
    """

    def __init__(self, path: str | os.PathLike, offset: int = 0, max_bytes: int = DEFAULT_MAX_BYTES):
        self.path = os.fspath(path)
        self.offset = int(offset)
        self.max_bytes = int(max_bytes)
        self.exists = False
        self.at_eof = True
        self.was_reset = False
        self.reset_count = 0
        self._ident: tuple[int, int] | None = None
        self._vanished = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read(self, max_bytes: int | None = None) -> str:
        """Return the text appended since the last call ('' if none or no file)."""
        self.was_reset = False
        limit = self.max_bytes if max_bytes is None else int(max_bytes)
        try:
            f = open(self.path, "rb")  # noqa: SIM115 (closed below; reopened each call so the
        except FileNotFoundError:  # file can be deleted or rotated, Windows included)
            if self._ident is not None:
                self._vanished = True  # whatever appears there next is a new file
            self.exists = False
            self.at_eof = True
            return ""
        except OSError:
            self.at_eof = True
            return ""
        with f:
            self.exists = True
            st = os.fstat(f.fileno())
            ident = (st.st_dev, st.st_ino)
            replaced = self._ident is not None and ident != self._ident and st.st_ino != 0
            if replaced or self._vanished or st.st_size < self.offset:
                self._restart()
            self._ident = ident
            self._vanished = False
            if st.st_size == self.offset:
                self.at_eof = True
                return ""
            f.seek(self.offset)
            data = f.read(limit)
        self.offset += len(data)
        self.at_eof = self.offset >= st.st_size
        return self._decoder.decode(data)

    def read_all(self) -> str:
        """Read until the end of the file as it is now (several bounded reads)."""
        parts = [self.read()]
        while not self.at_eof:
            parts.append(self.read())
        return "".join(parts)

    def flush(self) -> str:
        """Decode bytes held back as an incomplete character (e.g. once the job has ended)."""
        return self._decoder.decode(b"", final=True)

    def _restart(self) -> None:
        self.offset = 0
        self._decoder.reset()
        self.was_reset = True
        self.reset_count += 1
