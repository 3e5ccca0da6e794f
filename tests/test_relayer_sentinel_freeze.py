"""A Sentinel trip freezes the channel on-chain through the guardian hook and is recorded and notified."""

import json

from conftest import UNIT
from eth_account import Account
from local_servers import json_http_server, smtp_server
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
    from protocolbanks.relayer.sentinel.guard import SentinelTrip
    from protocolbanks.relayer.sentinel.webhook import WebhookNotifier

    trip = SentinelTrip(b"\x01" * 32, "0xPayer", "0xKey", 1, "sentinel_spike", 2 * UNIT, 5, {"short_rate_per_s": 9})
    with json_http_server(status=204) as (url, calls):
        WebhookNotifier(f"{url}/hook").notify(trip, "0xabc")
    received = [body for _path, body in calls]
    assert received[0]["reason"] == "sentinel_spike" and received[0]["payment"] == str(2 * UNIT)
    assert received[0]["freezeTx"] == "0xabc" and received[0]["channelId"] == "0x" + "01" * 32


def _trip():
    from protocolbanks.relayer.sentinel.guard import SentinelTrip

    return SentinelTrip(b"\x02" * 32, "0xPayer", "0xKey", 3, "sentinel_max_per_hour", 7 * UNIT, 9, {})


def test_email_notifier__delivers_to_a_real_local_smtp_server():
    from protocolbanks.relayer.sentinel.mail_and_telegram import EmailNotifier

    with smtp_server() as (port, inbox):
        EmailNotifier("127.0.0.1", port, "sentinel@merchant.test", "payer@example.test").notify(_trip(), "0xf00")
    assert len(inbox) == 1 and inbox[0]["To"] == "payer@example.test"
    assert "sentinel_max_per_hour" in inbox[0]["Subject"] and "0xf00" in inbox[0].get_payload()


def test_telegram_notifier__calls_send_message_on_a_local_stand_in():
    from protocolbanks.relayer.sentinel.mail_and_telegram import TelegramNotifier

    with json_http_server({"ok": True, "result": {"message_id": 1}}) as (url, calls):
        TelegramNotifier("123:abc", "42", api_base=url).notify(_trip(), None)
    path, body = calls[0]
    assert path == "/bot123:abc/sendMessage" and body["chat_id"] == "42"
    assert "sentinel_max_per_hour" in body["text"]
