"""A Sentinel trip freezes the channel on-chain through the guardian hook and is recorded and notified."""

import json

from conftest import UNIT
from eth_account import Account
from protocolbanks.relayer.chain_cache import ChainCache
from protocolbanks.relayer.sentinel import HardLimits, SentinelGuard, SentinelPolicy
from protocolbanks.relayer.sentinel.responder import SentinelResponder
from protocolbanks.relayer.store import VoucherStore, schema
from sqlalchemy import select


class RecordingNotifier:
    def __init__(self):
        self.seen = []

    def notify(self, trip, freeze_tx):
        self.seen.append((trip.reason, freeze_tx))


def test_trip__freezes_on_chain_records_and_notifies(chain, channels, open_channel, guardian, tmp_path):
    cache = ChainCache(chain.provider.web3, channels.address, from_block=chain.blocks.head.number)
    channel = open_channel(10 * UNIT)
    channels.setGuardian(guardian, sender=channel.payer)
    channel.grant(Account.create().key, total_cap=5 * UNIT, now=chain.pending_timestamp)
    cache.poll()
    store = VoucherStore(f"sqlite:///{tmp_path / 'relayer.db'}")
    notifier = RecordingNotifier()
    responder = SentinelResponder(store, w3=chain.provider.web3, contract_address=channels.address,
                                  guardian=Account.from_key(guardian.private_key), notifiers=[notifier])
    guard = SentinelGuard(SentinelPolicy(limits=HardLimits(max_per_payment=UNIT), spike=None), responder.enqueue)
    snapshot = cache.get(channel.id)
    assert guard(snapshot, "0xkey", UNIT // 2, 4 * UNIT, 1_000) is None
    assert guard(snapshot, "0xkey", 2 * UNIT, 3 * UNIT, 2_000) == "sentinel_max_per_payment"
    assert responder.handle_pending() == 1
    chain.mine()
    assert channel.state().frozen  # the guardian hook was used on-chain
    with store.engine.connect() as connection:
        row = connection.execute(select(schema.sentinel_events)).mappings().one()
    assert (row["kind"], row["action"]) == ("sentinel_max_per_payment", "freeze_sent")
    assert json.loads(row["detail"])["freezeTx"].startswith("0x")
    assert notifier.seen == [("sentinel_max_per_payment", json.loads(row["detail"])["freezeTx"])]


def test_webhook_notifier__posts_json_to_a_real_local_server():
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from protocolbanks.relayer.sentinel.guard import SentinelTrip
    from protocolbanks.relayer.sentinel.webhook import WebhookNotifier

    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    trip = SentinelTrip(b"\x01" * 32, "0xPayer", "0xKey", 1, "sentinel_spike", 2 * UNIT, 5, {"short_rate_per_s": 9})
    WebhookNotifier(f"http://127.0.0.1:{server.server_port}/hook").notify(trip, "0xabc")
    server.server_close()
    assert received[0]["reason"] == "sentinel_spike" and received[0]["payment"] == str(2 * UNIT)
    assert received[0]["freezeTx"] == "0xabc" and received[0]["channelId"] == "0x" + "01" * 32


def _trip():
    from protocolbanks.relayer.sentinel.guard import SentinelTrip

    return SentinelTrip(b"\x02" * 32, "0xPayer", "0xKey", 3, "sentinel_max_per_hour", 7 * UNIT, 9, {})


def test_email_notifier__delivers_to_a_real_local_smtp_server():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message
    from protocolbanks.relayer.sentinel.mail_and_telegram import EmailNotifier

    inbox = []

    class Inbox(Message):
        def handle_message(self, message):
            inbox.append(message)

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        EmailNotifier("127.0.0.1", port, "sentinel@merchant.test", "payer@example.test").notify(_trip(), "0xf00")
    finally:
        controller.stop()
    assert len(inbox) == 1 and inbox[0]["To"] == "payer@example.test"
    assert "sentinel_max_per_hour" in inbox[0]["Subject"] and "0xf00" in inbox[0].get_payload()


def test_telegram_notifier__calls_send_message_on_a_local_stand_in():
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from protocolbanks.relayer.sentinel.mail_and_telegram import TelegramNotifier

    calls = []

    class BotApi(BaseHTTPRequestHandler):
        def do_POST(self):
            calls.append((self.path, json.loads(self.rfile.read(int(self.headers["content-length"])))))
            payload = json.dumps({"ok": True, "result": {"message_id": 1}}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), BotApi)
    threading.Thread(target=server.handle_request, daemon=True).start()
    TelegramNotifier("123:abc", "42", api_base=f"http://127.0.0.1:{server.server_port}").notify(_trip(), None)
    server.server_close()
    path, body = calls[0]
    assert path == "/bot123:abc/sendMessage" and body["chat_id"] == "42"
    assert "sentinel_max_per_hour" in body["text"]
