"""The human in the loop after a Sentinel trip: the payer lifts or confirms the freeze on-chain and the relayer
follows; and each payer is told at its own addresses."""

import asyncio
import json
import os
import subprocess
import sys

import pytest
from conftest import HOUR, UNIT
from eth_account import Account
from local_servers import json_http_server, smtp_server
from protocolbanks.relayer.chain_cache import ChainCache
from protocolbanks.relayer.config import RelayerConfig
from protocolbanks.relayer.intake import VoucherIntake
from protocolbanks.relayer.sentinel import HardLimits, SentinelGuard, SentinelPolicy
from protocolbanks.relayer.sentinel.guard import SentinelTrip
from protocolbanks.relayer.sentinel.resolution import FreezeResolutionWatcher
from protocolbanks.relayer.sentinel.responder import SentinelResponder
from protocolbanks.relayer.sentinel_wiring import notifiers, sentinel_policy
from protocolbanks.relayer.store import VoucherStore, schema
from protocolbanks.relayer.wire import parse_submission
from protocolbanks.sdk import Voucher
from protocolbanks.sdk.payer_channels import ChannelConfig, PayerChannels, SessionKeyPolicy
from sqlalchemy import select


class RunningIntake:
    """An intake started on one event loop that the (synchronous) test drives voucher by voucher."""

    def __init__(self, intake):
        self.intake, self.loop = intake, asyncio.new_event_loop()
        self.loop.run_until_complete(intake.start())

    def submit(self, channel, terms, key, amount):
        sig = Voucher(channel.id, terms.epoch, amount).sign(channel.domain, key)
        body = {"channelId": "0x" + channel.id.hex(), "cumulativeAmount": str(amount), "terms": hex(terms.pack()),
                "r": "0x" + sig.r.hex(), "vs": "0x" + sig.vs.hex()}
        return self.loop.run_until_complete(self.intake.submit(parse_submission(json.dumps(body).encode())))

    def close(self):
        self.loop.run_until_complete(self.intake.stop())
        self.loop.close()


def test_payer_lifts_then_confirms_a_freeze__relayer_follows(chain, channels, open_channel, guardian, payee,
                                                             tmp_path):
    w3 = chain.provider.web3
    cache = ChainCache(w3, channels.address, from_block=chain.blocks.head.number, reorg_depth=2)
    channel = open_channel(10 * UNIT)
    channels.setGuardian(guardian, sender=channel.payer)
    key = Account.create().key
    channel.grant(key, total_cap=8 * UNIT, valid_for=HOUR, now=chain.pending_timestamp)
    cache.poll()
    store = VoucherStore(f"sqlite:///{tmp_path / 'relayer.db'}")
    responder = SentinelResponder(store, w3=w3, contract_address=channels.address,
                                  guardian=Account.from_key(guardian.private_key))
    guard = SentinelGuard(SentinelPolicy(limits=HardLimits(max_per_payment=UNIT), spike=None), responder.enqueue)
    cache.hooks.append(FreezeResolutionWatcher(guard, store))
    intake = RunningIntake(VoucherIntake(store, cache.get, channel.domain, payee=payee.address, sentinel=guard))
    _submit = intake.submit
    terms = channel.terms

    assert _submit(channel, terms, key, UNIT // 2).status == "accepted"
    assert _submit(channel, terms, key, 3 * UNIT).reason == "sentinel_max_per_payment"  # the spike
    responder.handle_pending()  # guardian freezes on-chain
    cache.poll()
    assert cache.get(channel.id).frozen
    assert _submit(channel, terms, key, UNIT).reason == "channel_frozen"

    payer = PayerChannels(w3, channels.address, Account.from_key(channel.payer.private_key))
    config = ChannelConfig(*channel.config)
    payer.lift_freeze(config)  # "that was me"
    cache.poll()
    assert not cache.get(channel.id).frozen
    assert _submit(channel, terms, key, UNIT).status == "accepted"  # the key works again

    assert _submit(channel, terms, key, 3 * UNIT).reason == "sentinel_max_per_payment"
    responder.handle_pending()
    cache.poll()
    payer.confirm_freeze(config)  # "that was not me": the key is revoked for good
    cache.poll()
    assert _submit(channel, cache.get(channel.id).terms, key, 2 * UNIT).reason == "signer_not_authorised"

    intake.close()
    with store.engine.connect() as connection:
        rows = connection.execute(select(schema.sentinel_events).order_by(schema.sentinel_events.c.id)).mappings()
        kinds = [(r["kind"], r["action"]) for r in rows]
    assert kinds == [("sentinel_max_per_payment", "freeze_sent"), ("payer_lifted", "resolved"),
                     ("sentinel_max_per_payment", "freeze_sent"), ("payer_confirmed", "resolved")]


def _trip(payer):
    return SentinelTrip(b"\x03" * 32, payer, "0xKey", 2, "sentinel_spike", 4 * UNIT, 11, {"short_rate_per_s": 5})


def test_each_payer_is_told_at_its_own_addresses(tmp_path):
    alice, bob = Account.create().address, Account.create().address
    with json_http_server({"ok": True, "result": {}}) as (hook_url, hooks), \
            json_http_server({"ok": True, "result": {"message_id": 1}}) as (bot_url, bot_calls), \
            smtp_server() as (smtp_port, inbox):
        config = RelayerConfig(
            contract="0x" + "11" * 20, payee="0x" + "22" * 20,
            notify_email={"host": "127.0.0.1", "port": smtp_port, "sender": "sentinel@merchant.test",
                          "starttls": False},
            notify_telegram={"bot_token": "9:xyz", "api_base": bot_url},
            payers={alice: {"webhook_url": f"{hook_url}/alice", "email": "alice@agent.test",
                            "telegram_chat_id": "777"}},
        )
        for notifier in notifiers(config):
            notifier.notify(_trip(alice), "0xfeed")
            notifier.notify(_trip(bob), None)  # bob registered nothing; there is no operator address either
    assert [path for path, _ in hooks] == ["/alice"] and hooks[0][1]["payer"] == alice
    assert [m["To"] for m in inbox] == ["alice@agent.test"] and "0xfeed" in inbox[0].get_payload()
    assert [(path, body["chat_id"]) for path, body in bot_calls] == [("/bot9:xyz/sendMessage", "777")]


def test_payer_limits_override_the_defaults_one_by_one():
    alice = Account.create().address
    config = RelayerConfig(contract="0x" + "11" * 20, payee="0x" + "22" * 20,
                           sentinel={"max_per_payment": 10 * UNIT, "max_per_hour": 50 * UNIT},
                           payers={alice.upper().replace("0X", "0x"): {"max_per_hour": 5 * UNIT}})
    policy = sentinel_policy(config)
    assert policy.limits_for(alice) == HardLimits(max_per_payment=10 * UNIT, max_per_hour=5 * UNIT)
    assert policy.limits_for(Account.create().address) == HardLimits(max_per_payment=10 * UNIT,
                                                                      max_per_hour=50 * UNIT)


def test_payer_policy_valid_until_is_enforced_by_the_key_policy_type():
    policy = SessionKeyPolicy(total_cap=UNIT, valid_until=123, period_cap=2, period_length=3, max_per_payment=4)
    assert policy.as_tuple() == (UNIT, 2, 3, 123, 4)  # the contract's SessionKeyPolicy field order


@pytest.mark.skipif(os.environ.get("PB_ON_ANVIL") != "1", reason="the CLI talks to an RPC URL: make test-anvil")
def test_payer_cli__status_lift_and_named_errors(chain, channels, open_channel, guardian):
    channel = open_channel(10 * UNIT)
    channels.setGuardian(guardian, sender=channel.payer)
    channels.freeze(channel.config, sender=guardian)
    env = dict(os.environ, PB_RPC_URL=chain.provider.uri, PB_CONTRACT=channels.address,
               PB_PAYER_PRIVATE_KEY=channel.payer.private_key)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "protocolbanks.relayer.cli", "payer", *args], env=env,
                              capture_output=True, text=True, timeout=60, check=False)

    channel_id = "0x" + channel.id.hex()
    shown = cli("status", channel_id)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["frozen"] is True and json.loads(shown.stdout)["deposit"] == 10 * UNIT
    lifted = cli("lift-freeze", channel_id)
    assert lifted.returncode == 0 and lifted.stdout.startswith("freeze lifted: tx 0x"), lifted.stderr
    assert not channel.state().frozen
    again = cli("lift-freeze", channel_id)
    assert again.returncode == 1 and "unfreeze failed: NotFrozen(channelId=" in again.stderr
    assert "Traceback" not in again.stderr
    bad = cli("status", "0x1234")
    assert bad.returncode == 2 and "not a 32-byte hex channel id" in bad.stderr
    unknown = cli("status", "0x" + "ab" * 32)
    assert unknown.returncode == 1 and "no channel 0x" in unknown.stderr
