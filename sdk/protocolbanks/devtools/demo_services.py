"""The demo's moving parts other than the APIs' logic: the relayer as a real child process, a local webhook
listener standing in for the payer's alerting, uvicorn servers on loopback threads, and the library logs sent
to a file (the console shows the story; the log file shows the details when something goes wrong).

Everything here is a context manager that stops what it started, also on Ctrl-C or an error.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

from protocolbanks.devtools import thread_server
from protocolbanks.devtools.demo_config import DemoFailed

LIBRARY_LOGGERS = ("protocolbanks", "x402", "uvicorn", "httpx", "web3")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class RelayerProcess:
    """`python -m protocolbanks.relayer.cli relayer run` with PB_RELAYER_* settings, in its own session (so a
    Ctrl-C reaches the demo, which stops the relayer after the gateways flushed their vouchers)."""

    def __init__(self, settings: Mapping[str, str], log_path: Path) -> None:
        self.port = int(settings["PB_RELAYER_LISTEN_PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._env = {key: value for key, value in os.environ.items() if not key.startswith("PB_RELAYER_")}
        self._env.update(settings)
        self.process: subprocess.Popen[bytes] | None = None
        self.pid = 0

    def __enter__(self) -> RelayerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "protocolbanks.relayer.cli", "relayer", "run"], env=self._env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        self.pid = self.process.pid
        try:
            self._wait_healthy(timeout_s=30)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise DemoFailed(f"the relayer exited with code {self.process.returncode}:\n{tail(self.log_path)}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise DemoFailed(f"the relayer did not answer on {self.url} within {timeout_s:.0f} s:\n"
                         f"{tail(self.log_path)}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (aiohttp shuts down gracefully), then SIGKILL if it is still there."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)


class WebhookListener:
    """A local HTTP endpoint receiving the relayer's JSON notifications (`notify_webhook_url`)."""

    def __init__(self, on_event: Callable[[dict[str, Any]], None]) -> None:
        self.events: list[dict[str, Any]] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    event = json.loads(body)
                except ValueError:
                    event = {"raw": body.decode(errors="replace")}
                self.send_response(204)
                self.end_headers()
                listener.events.append(event)
                on_event(event)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/sentinel"
        self._thread = threading.Thread(target=self._server.serve_forever, name="pb-demo-webhook", daemon=True)

    def __enter__(self) -> WebhookListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve_asgi(app: Any, name: str) -> AbstractContextManager[str]:
    """Serves an ASGI app with uvicorn on a loopback port from a thread (no lifespan, no access log); yields its
    base URL. uvicorn installs no signal handlers outside the main thread: Ctrl-C reaches the demo, which stops it."""
    return thread_server.serve_asgi(app, what=f"the {name} API", thread_name=f"pb-demo-{name}", lifespan="off",
                                    access_log=False, start_error=DemoFailed)


@contextmanager
def library_logs_to(path: Path) -> Iterator[None]:
    """Sends the libraries' log records to `path` instead of the console, for the duration."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    saved = []
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate, logger.level))
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, propagate, level in saved:
            logger.removeHandler(handler)
            logger.propagate = propagate
            logger.setLevel(level)
        handler.close()


@contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Ctrl-C (SIGINT) and SIGTERM become a KeyboardInterrupt for the duration (main thread only), so the demo
    stops what it started while the chain is still up; the previous handlers (Ape's stop anvil at exit) are
    restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, interrupt) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
