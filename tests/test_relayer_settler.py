"""Settlement on a real chain: accepted vouchers go on-chain in one batch per token, confirmed, and a double
submission moves nothing."""

import asyncio
import json

import pytest
from conftest import UNIT
from eth_account import Account
from protocolbanks.relayer.chain_cache import ChainCache
from protocolbanks.relayer.intake import VoucherIntake
from protocolbanks.relayer.settlement_policy import SettlementPolicy
from protocolbanks.relayer.settler import Settler
from protocolbanks.relayer.store import VoucherStore
from protocolbanks.relayer.wire import parse_submission
from protocolbanks.sdk import Voucher


def submit_all(intake, items):
    async def main():
        await intake.start()
        results = [await intake.submit(parse_submission(json.dumps(item).encode())) for item in items]
        await intake.stop()
        return results
    return asyncio.run(main())


def submission(channel, key, amount):
    sig = Voucher(channel.id, channel.terms.epoch, amount).sign(channel.domain, key)
    return {"channelId": "0x" + channel.id.hex(), "cumulativeAmount": str(amount),
            "terms": hex(channel.terms.pack()), "r": "0x" + sig.r.hex(), "vs": "0x" + sig.vs.hex()}


@pytest.fixture
def relayer_channel(chain, channels, open_channel, payee, tmp_path):
    """A 10 U channel with an 8 U session key, a chain cache that saw it, and an intake storing to SQLite."""
    w3 = chain.provider.web3
    cache = ChainCache(w3, channels.address, from_block=chain.blocks.head.number)
    channel = open_channel(10 * UNIT)
    key = Account.create().key
    channel.grant(key, total_cap=8 * UNIT, now=chain.pending_timestamp)
    cache.poll()
    store = VoucherStore(f"sqlite:///{tmp_path / 'relayer.db'}")
    intake = VoucherIntake(store, cache.get, channel.domain, payee=payee.address)
    return w3, cache, channel, key, store, intake


def test_settler__threshold_batch_confirm_and_double_submission(chain, channels, open_channel, payee, token,
                                                                tmp_path):
    w3 = chain.provider.web3
    cache = ChainCache(w3, channels.address, from_block=chain.blocks.head.number)
    keyed = []
    for _ in range(3):
        channel = open_channel(10 * UNIT)
        key = Account.create().key
        channel.grant(key, total_cap=8 * UNIT, now=chain.pending_timestamp)
        keyed.append((channel, key))
    cache.poll()
    store = VoucherStore(f"sqlite:///{tmp_path / 'relayer.db'}")
    intake = VoucherIntake(store, cache.get, keyed[0][0].domain, payee=payee.address)
    results = submit_all(intake, [submission(c, k, amount) for (c, k), amount in
                                  zip(keyed, (3 * UNIT, 2 * UNIT, UNIT // 2), strict=True)])
    assert [r.status for r in results] == ["accepted"] * 3

    account = Account.from_key(payee.private_key)
    settler = Settler(w3, channels.address, account, store, cache.get,
                      SettlementPolicy(threshold=2 * UNIT, interval_ms=10**9), confirmations=1)
    before = token.balanceOf(payee)
    outcomes = settler.settle_due()
    assert [o.channels for o in outcomes] == [2]  # the 0.5 U channel is below the threshold
    assert settler.settle_due() == []  # in flight: not sent again on the next round
    chain.mine(2)
    assert settler.confirm_sent() == 1
    assert token.balanceOf(payee) - before == 5 * UNIT
    progress = store.progress()
    assert [progress[c.id].unsettled for c, _ in keyed] == [0, 0, UNIT // 2]
    assert progress[keyed[0][0].id].first_unsettled_at_ms is None

    # Sending the same vouchers again (as after a crash with an unknown outcome) moves nothing.
    rows = []
    for (c, k), amount in zip(keyed[:2], (3 * UNIT, 2 * UNIT), strict=True):
        sig = Voucher(c.id, c.terms.epoch, amount).sign(c.domain, k)
        rows.append((c.id, amount, c.terms.pack(), sig.r, sig.vs))
    channels.redeemBatch(payee, token, rows, sender=payee)
    assert token.balanceOf(payee) - before == 5 * UNIT


def test_settler__unmined_settlement_is_given_up_and_sent_again_harmlessly(channels, payee, token, relayer_channel):
    w3, cache, channel, key, store, intake = relayer_channel
    assert submit_all(intake, [submission(channel, key, 4 * UNIT)])[0].status == "accepted"
    settler = Settler(w3, channels.address, Account.from_key(payee.private_key), store, cache.get,
                      SettlementPolicy(threshold=UNIT), confirmations=0, resend_after_ms=0)
    before = token.balanceOf(payee)
    first = settler.settle_due()
    second = settler.settle_due()  # "not mined in time": given up, the same voucher goes out again
    assert len(first) == len(second) == 1 and first[0].tx_hash != second[0].tx_hash
    assert settler.confirm_sent() == 1  # the replaced one is no longer awaited
    assert token.balanceOf(payee) - before == 4 * UNIT  # paid once, although redeemed twice
    assert store.progress()[channel.id].unsettled == 0


def test_settler__reorg_removes_the_settlement__it_is_sent_again(chain, channels, payee, token, relayer_channel):
    w3, cache, channel, key, store, intake = relayer_channel
    submit_all(intake, [submission(channel, key, 3 * UNIT)])
    clock = {"now": 1_000.0}
    settler = Settler(w3, channels.address, Account.from_key(payee.private_key), store, cache.get,
                      SettlementPolicy(threshold=UNIT), confirmations=3, resend_after_ms=60_000,
                      clock=lambda: clock["now"])
    before = token.balanceOf(payee)
    snapshot = chain.snapshot()
    settler.settle_due()
    assert channel.state().claimed == 3 * UNIT  # mined, but not yet under 3 confirmations
    chain.restore(snapshot)  # a reorg takes the block away
    assert channel.state().claimed == 0 and settler.confirm_sent() == 0
    clock["now"] += 61  # not mined within the resend window: sent again
    assert len(settler.settle_due()) == 1
    chain.mine(3)
    assert settler.confirm_sent() == 1
    assert token.balanceOf(payee) - before == 3 * UNIT and store.progress()[channel.id].unsettled == 0


def test_settler__payer_close_makes_small_balances_due_at_once(chain, channels, payee, token, relayer_channel):
    w3, cache, channel, key, store, intake = relayer_channel
    submit_all(intake, [submission(channel, key, UNIT // 10)])  # far below the threshold
    settler = Settler(w3, channels.address, Account.from_key(payee.private_key), store, cache.get,
                      SettlementPolicy(threshold=5 * UNIT), confirmations=0)
    assert settler.settle_due() == []
    channels.requestClose(channel.config, sender=channel.payer)  # the payer starts a unilateral close
    cache.poll()
    assert len(settler.settle_due()) == 1  # due at once: the payee's window is running
    assert settler.confirm_sent() == 1
    payer_before, payee_claimed = token.balanceOf(channel.payer), channel.state().claimed
    chain.pending_timestamp += 3600
    channels.withdraw(channel.config, sender=channel.payer)
    assert payee_claimed == UNIT // 10
    assert token.balanceOf(channel.payer) - payer_before == 10 * UNIT - UNIT // 10
