"""Real servers on loopback for the notification and outage tests: a JSON-recording HTTP server (webhooks, a
stand-in for Telegram's Bot API), an SMTP server (aiosmtpd) and a TCP proxy a test can take down; `send_json`
answers a stand-in server's request."""

from __future__ import annotations

import json
import socket
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from protocolbanks.devtools.thread_server import free_port, serve_in_thread


def send_json(handler: BaseHTTPRequestHandler, status: int, body: object) -> None:
    """Answers the handler's request with `body` as JSON."""
    payload = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


@contextmanager
def json_http_server(answer: dict | None = None, status: int = 200):
    """Yields (base_url, calls): every POST is recorded as (path, parsed JSON body) and answered `answer`."""
    calls: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            calls.append((self.path, json.loads(self.rfile.read(int(self.headers["content-length"])))))
            send_json(self, status, answer or {})

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with serve_in_thread(server):
        yield f"http://127.0.0.1:{server.server_port}", calls


@contextmanager
def smtp_server():
    """Yields (port, inbox): messages delivered to a real aiosmtpd server on loopback."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    inbox: list = []

    class Inbox(Message):
        def handle_message(self, message):
            inbox.append(message)

    port = free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


class SwitchableTcpProxy:
    """A TCP forwarder on loopback that a test can take down (every connection cut, the port refusing) and
    bring back on the same port: an RPC outage as the relayer sees it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            victims, self._sockets = self._sockets, []
            listener, self._listener = self._listener, None
        for sock in [*victims, *([listener] if listener else [])]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
