"""Hands SQLite's write lock from one relayer process to the next without sleeping.

SQLite lets one writer at a time; a process that finds the database locked retries from its busy handler, which
sleeps (up to 100 ms per try). With several workers committing hundreds of times a second that sleep becomes the
tail latency. Taking an OS file lock (flock) around the write transaction instead makes a waiting writer wake the
moment the other one commits. Only the intake's hot path uses it; rare writers keep SQLite's busy timeout.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class WriterLock:
    def __init__(self, database_path: str | None) -> None:
        self.path = f"{database_path}.write-lock" if database_path else None
        self._local = threading.Lock()  # one writer thread per process at a time, too
        self._fd: int | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._local:
            if self.path is None:
                yield
                return
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # blocks this thread only (the GIL is released)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


def sqlite_file_of(url_database: str | None) -> str | None:
    """The database file of an SQLite URL's database part, or None for in-memory databases."""
    if not url_database or url_database == ":memory:" or url_database.startswith("file::memory:"):
        return None
    return url_database
