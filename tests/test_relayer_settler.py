"""Settlement on a real chain: accepted vouchers go on-chain in one batch per token, confirmed; a double submission
moves nothing; a transaction lost to a reorg or a crash is broadcast again with its nonce; one whose nonce another
transaction took is dropped and its vouchers are sent again — paid once every time."""

import pytest
from conftest import UNIT
from eth_account import Account
from hexbytes import HexBytes
from protocolbanks.relayer import inspection
from protocolbanks.relayer.settlement_policy import SettlementPolicy
from protocolbanks.relayer.settler import Settler
from protocolbanks.sdk import Voucher, pack_redemption_rows
from settler_harness import Rig, open_keyed, submission, submit_all


@pytest.fixture
def rig(chain, channels, payee, domain, tmp_path):
    """A chain cache from the current block, an SQLite store, an intake, and a clock the test moves."""
    return Rig.fresh(chain, channels, payee, domain, tmp_path)


@pytest.fixture
def relayer_channel(chain, open_channel, rig):
    """A 10 U channel with an 8 U session key, seen by the rig's chain cache."""
    channel, key = open_keyed(chain, open_channel)
    rig.cache.poll()
    return channel, key


def test_settler__threshold_batch_confirm_and_double_submission(chain, channels, open_channel, payee, token, rig):
    keyed = [open_keyed(chain, open_channel) for _ in range(3)]
    rig.cache.poll()
    results = submit_all(rig.intake, [submission(c, k, amount) for (c, k), amount in
                                      zip(keyed, (3 * UNIT, 2 * UNIT, UNIT // 2), strict=True)])
    assert [r.status for r in results] == ["accepted"] * 3

    settler = rig.settler(payee, channels.address, confirmations=1,
                          policy=SettlementPolicy(threshold=2 * UNIT, interval_ms=10**9))
    before = token.balanceOf(payee)
    outcomes = settler.settle_due()
    assert [o.channels for o in outcomes] == [2]  # the 0.5 U channel is below the threshold
    assert settler.settle_due() == []  # in flight: not sent again on the next round
    chain.mine(2)
    assert settler.confirm_sent() == 1
    assert token.balanceOf(payee) - before == 5 * UNIT
    progress = rig.store.progress()
    assert [progress[c.id].unsettled for c, _ in keyed] == [0, 0, UNIT // 2]
    assert progress[keyed[0][0].id].first_unsettled_at_ms is None

    # Sending the same vouchers again (as after a crash with an unknown outcome) moves nothing.
    rows = []
    for (c, k), amount in zip(keyed[:2], (3 * UNIT, 2 * UNIT), strict=True):
        sig = Voucher(c.id, c.terms.epoch, amount).sign(c.domain, k)
        rows.append((c.id, amount, c.terms.pack(), sig.r, sig.vs))
    channels.redeemBatch(payee, token, pack_redemption_rows(rows), sender=payee)
    assert token.balanceOf(payee) - before == 5 * UNIT


def test_settler__reorg_removes_the_settlement__the_same_signed_tx_is_broadcast_again(chain, channels, payee, token,
                                                                                      rig, relayer_channel):
    channel, key = relayer_channel
    submit_all(rig.intake, [submission(channel, key, 3 * UNIT)])
    settler = rig.settler(payee, channels.address, confirmations=3)
    before = token.balanceOf(payee)
    snapshot = chain.snapshot()
    [sent] = settler.settle_due()
    assert channel.state().claimed == 3 * UNIT  # mined, but not yet under 3 confirmations
    chain.restore(snapshot)  # a reorg takes the block away (and the transaction with it)
    assert channel.state().claimed == 0
    assert settler.confirm_sent() == 0  # the node does not know it any more: broadcast again, same bytes
    receipt = rig.w3.eth.wait_for_transaction_receipt(HexBytes(sent.tx_hash), timeout=10)  # mined again
    assert receipt["status"] == 1 and settler.settle_due() == []  # still in flight: no second settlement
    chain.mine(3)
    assert settler.confirm_sent() == 1
    assert token.balanceOf(payee) - before == 3 * UNIT and rig.store.progress()[channel.id].unsettled == 0
    assert settler.ledger.sent() == []


def test_settler__crash_between_recording_and_broadcast__restart_broadcasts_the_recorded_tx(chain, channels, payee,
                                                                                           token, rig,
                                                                                           relayer_channel):
    channel, key = relayer_channel
    submit_all(rig.intake, [submission(channel, key, 2 * UNIT)])
    crashing = rig.settler(payee, channels.address)

    def power_cut(raw):
        raise KeyboardInterrupt("power cut after the write-ahead record")

    crashing.chain.broadcast = power_cut
    with pytest.raises(KeyboardInterrupt):
        crashing.settle_due()
    [recorded] = crashing.ledger.sent()
    assert recorded.newest.status == "signed" and channel.state().claimed == 0
    nonce_before = rig.w3.eth.get_transaction_count(payee.address)

    restarted = rig.settler(payee, channels.address)  # a new process on the same database
    before = token.balanceOf(payee)
    assert restarted.run_round().sent == []  # nothing new: the recorded transaction is broadcast as it is
    receipt = rig.w3.eth.get_transaction_receipt(HexBytes(recorded.newest.tx_hash))
    assert receipt["status"] == 1 and recorded.nonce == nonce_before
    assert restarted.confirm_sent() == 1
    assert token.balanceOf(payee) - before == 2 * UNIT and rig.store.progress()[channel.id].unsettled == 0


def test_settler__nonce_taken_by_another_tx__dropped_and_sent_again__paid_once(chain, channels, payee, token, rig,
                                                                             relayer_channel, stranger):
    channel, key = relayer_channel
    submit_all(rig.intake, [submission(channel, key, 4 * UNIT)])
    settler = rig.settler(payee, channels.address)
    settler.chain.broadcast = lambda raw: (_ for _ in ()).throw(ConnectionError("the node went away"))
    settler.settle_due()  # recorded, broadcast failed: fate unknown
    [recorded] = settler.ledger.sent()
    payee.transfer(stranger, 1)  # the operator's wallet uses the same nonce for something else
    assert rig.w3.eth.get_transaction_count(payee.address) > recorded.nonce
    del settler.chain.broadcast
    before = token.balanceOf(payee)
    report = settler.run_round()  # dropped (the nonce is not ours any more), and the voucher goes out again
    assert len(report.sent) == 1 and report.sent[0].tx_hash != "0x" + recorded.newest.tx_hash.hex()
    assert settler.confirm_sent() == 1
    assert token.balanceOf(payee) - before == 4 * UNIT
    assert {s["status"] for s in inspection.settlements(rig.store)} == {"dropped", "confirmed"}


def test_settler__settlement_sent_before_v2_and_lost__dropped__vouchers_sent_again(chain, channels, payee, token,
                                                                                   rig, relayer_channel):
    channel, key = relayer_channel
    submit_all(rig.intake, [submission(channel, key, 2 * UNIT)])
    settler = rig.settler(payee, channels.address)
    [voucher] = settler.ledger.newest_vouchers([channel.id]).values()
    nonce = rig.w3.eth.get_transaction_count(payee.address)
    settler.ledger.record_sent([voucher], b"\x77" * 32, nonce, 500)  # no signed bytes; the node never had it
    before = token.balanceOf(payee)
    [resent] = settler.run_round().sent
    assert settler.confirm_sent() == 1 and token.balanceOf(payee) - before == 2 * UNIT
    assert [s["status"] for s in inspection.settlements(rig.store)] == ["confirmed", "dropped"]
    assert resent.tx_hash != "0x" + "77" * 32


def test_settler__already_redeemed_elsewhere__simulated__nothing_sent__settled(chain, channels, payee, token, rig,
                                                                             relayer_channel):
    channel, key = relayer_channel
    submit_all(rig.intake, [submission(channel, key, 3 * UNIT)])
    # the payee did it
    channels.redeemBatch(payee, token, pack_redemption_rows([channel.voucher(3 * UNIT, key=key)]), sender=payee)
    settler = rig.settler(payee, channels.address)
    nonce = rig.w3.eth.get_transaction_count(payee.address)
    assert settler.run_round().sent == []
    assert rig.w3.eth.get_transaction_count(payee.address) == nonce  # no gas spent on a batch that moves nothing
    assert rig.store.progress()[channel.id].unsettled == 0
    [shown] = inspection.settlements(rig.store)
    assert shown["status"] == "skipped" and [i["outcome"] for i in shown["items"]] == ["nothing_due"]


def test_settler__payer_close_makes_small_balances_due_at_once(chain, channels, payee, token, rig, relayer_channel):
    channel, key = relayer_channel
    submit_all(rig.intake, [submission(channel, key, UNIT // 10)])  # far below the threshold
    settler = Settler(rig.w3, channels.address, Account.from_key(payee.private_key), rig.store, rig.cache.get,
                      SettlementPolicy(threshold=5 * UNIT), confirmations=0)
    assert settler.settle_due() == []
    channels.requestClose(channel.config, sender=channel.payer)  # the payer starts a unilateral close
    rig.cache.poll()
    assert len(settler.settle_due()) == 1  # due at once: the payee's window is running
    assert settler.confirm_sent() == 1
    payer_before, payee_claimed = token.balanceOf(channel.payer), channel.state().claimed
    chain.pending_timestamp += 3600
    channels.withdraw(channel.config, sender=channel.payer)
    assert payee_claimed == UNIT // 10
    assert token.balanceOf(channel.payer) - payer_before == 10 * UNIT - UNIT // 10
