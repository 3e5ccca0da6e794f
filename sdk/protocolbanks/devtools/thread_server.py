"""Servers on a loopback port, run from a background thread, for the demo and the tests: a uvicorn server for an
ASGI app, any `socketserver`-style server (the standard library's `http.server`, werkzeug's WSGI servers), and a
free port to bind.

Each runner is a context manager: it yields once the server answers, and on exit stops the server and joins its
thread. uvicorn installs no signal handlers outside the main thread, so Ctrl-C still reaches the caller.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, Protocol

import uvicorn

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago (bound to port 0, then released)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


class ThreadableServer(Protocol):
    """What `serve_in_thread` runs: `socketserver.BaseServer`'s loop, its stop and its socket close."""

    def serve_forever(self) -> None: ...

    def shutdown(self) -> None: ...

    def server_close(self) -> None: ...


@contextmanager
def serve_in_thread(server: ThreadableServer, name: str | None = None) -> Iterator[None]:
    """Runs `server.serve_forever()` in a daemon thread for the duration; then shuts it down, closes its socket and
    joins the thread."""
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def serve_asgi(app: Any, *, what: str = "uvicorn", thread_name: str | None = None,
               lifespan: Literal["auto", "on", "off"] = "auto", access_log: bool = True,
               start_error: type[Exception] = RuntimeError, start_timeout_s: float = 10.0) -> Iterator[str]:
    """Serves `app` with uvicorn on a free loopback port from a daemon thread; yields its base URL once uvicorn has
    started. Raises `start_error("<what> did not start on port <port>")` when the thread dies first or
    `start_timeout_s` passes."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning",
                                           access_log=access_log, lifespan=lifespan))
    thread = threading.Thread(target=server.run, name=thread_name, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise start_error(f"{what} did not start on port {port}")
        time.sleep(0.01)
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
