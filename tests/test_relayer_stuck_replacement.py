"""A settlement transaction that does not get mined is replaced with the same nonce and higher fees, on anvil with
mining switched off: the replacement is what gets mined and the payee is paid once. The fee cap stops a bump (the
relayer then keeps waiting), and anvil's own refusals are classified as transient.

Anvil only (the in-process EVM has no transaction pool to get stuck in): `make test-anvil`.
"""

import logging
import os
from contextlib import contextmanager

import pytest
from conftest import UNIT
from eth_account import Account
from hexbytes import HexBytes
from protocolbanks.relayer import inspection
from protocolbanks.relayer.metrics import RelayerMetrics
from protocolbanks.relayer.revert_classifier import ALREADY_KNOWN, REPLACEMENT_UNDERPRICED, classify_exception
from settler_harness import Rig, open_keyed, submission, submit_all
from web3.exceptions import TransactionNotFound

pytestmark = pytest.mark.skipif(os.environ.get("PB_ON_ANVIL") != "1", reason="needs anvil: make test-anvil")


@pytest.fixture
def rig(chain, channels, payee, domain, tmp_path):
    return Rig.fresh(chain, channels, payee, domain, tmp_path)


@contextmanager
def mining_off(chain):
    chain.provider.auto_mine = False
    try:
        yield
    finally:
        chain.provider.auto_mine = True
        chain.mine()  # nothing left pending for the next test


def pending(w3, tx_hash):
    try:
        return w3.eth.get_transaction(HexBytes(tx_hash))
    except TransactionNotFound:
        return None


def test_stuck_settlement__replaced_same_nonce_higher_fees__the_replacement_is_mined__paid_once(
        chain, channels, open_channel, payee, token, rig):
    channel, key = open_keyed(chain, open_channel)
    rig.cache.poll()
    submit_all(rig.intake, [submission(channel, key, 3 * UNIT)])
    metrics = RelayerMetrics()
    settler = rig.settler(payee, channels.address, confirmations=1, stuck_after_ms=60_000, metrics=metrics)
    before = token.balanceOf(payee)
    with mining_off(chain):
        [first] = settler.settle_due()
        original = pending(rig.w3, first.tx_hash)
        assert original is not None and original["blockNumber"] is None  # in the pool, not mined
        rig.clock.now += 30
        assert settler.run_round().sent == [] and len(settler.ledger.sent()[0].transactions) == 1  # not stuck yet
        rig.clock.now += 31
        settler.run_round()  # stuck for 61 s: re-signed with the same nonce and calldata, fees bumped
        [in_flight] = settler.ledger.sent()
        old, new = in_flight.transactions
        replacement = pending(rig.w3, new.tx_hash)
        assert replacement is not None and pending(rig.w3, old.tx_hash) is None  # the pool swapped them
        assert replacement["nonce"] == original["nonce"] and replacement["input"] == original["input"]
        assert replacement["maxFeePerGas"] * 8 >= original["maxFeePerGas"] * 9
        assert replacement["maxPriorityFeePerGas"] * 8 >= original["maxPriorityFeePerGas"] * 9
        chain.mine(2)
    rig.clock.now += 1
    assert settler.run_round().confirmed == 1
    receipt = rig.w3.eth.get_transaction_receipt(HexBytes(new.tx_hash))
    assert receipt["status"] == 1
    with pytest.raises(TransactionNotFound):
        rig.w3.eth.get_transaction_receipt(HexBytes(old.tx_hash))
    assert token.balanceOf(payee) - before == 3 * UNIT and channel.state().claimed == 3 * UNIT
    [shown] = inspection.settlements(rig.store)
    assert shown["status"] == "confirmed" and shown["txHash"] == "0x" + new.tx_hash.hex()
    assert [t["status"] for t in shown["transactions"]] == ["replaced", "mined"]
    assert metrics.registry.get_sample_value("pb_settlement_replacements_total") == 1
    assert settler.run_round().sent == []  # settled: nothing goes out again


def test_stuck_settlement__fee_cap_leaves_no_room__keeps_waiting__logged_once(chain, channels, open_channel, payee,
                                                                             token, rig, caplog):
    channel, key = open_keyed(chain, open_channel)
    rig.cache.poll()
    submit_all(rig.intake, [submission(channel, key, 2 * UNIT)])
    w3 = chain.provider.web3
    base_fee, tip = w3.eth.get_block("latest")["baseFeePerGas"], w3.eth.max_priority_fee
    cap = 2 * base_fee + tip  # exactly the first offer: no room for a 12.5 % bump
    settler = rig.settler(payee, channels.address, confirmations=0, stuck_after_ms=60_000, max_fee_per_gas=cap)
    before = token.balanceOf(payee)
    with mining_off(chain), caplog.at_level(logging.WARNING, logger="protocolbanks.relayer.settler"):
        [first] = settler.settle_due()
        for _ in range(3):
            rig.clock.now += 61
            settler.run_round()
        [in_flight] = settler.ledger.sent()
        assert [t.tx_hash.hex() for t in in_flight.transactions] == [first.tx_hash[2:]]  # no replacement
        assert pending(rig.w3, first.tx_hash) is not None
        assert len([r for r in caplog.records if "leaves no room" in r.getMessage()]) == 1
    assert settler.run_round().confirmed == 1  # mined as it was, once mining resumed
    assert token.balanceOf(payee) - before == 2 * UNIT


def test_anvil_refusals__same_nonce_without_a_bump__and_a_resend__classified(chain, payee, stranger):
    w3 = chain.provider.web3
    account = Account.from_key(payee.private_key)
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    tx = {"type": 2, "chainId": w3.eth.chain_id, "nonce": nonce, "to": stranger.address, "value": 1, "gas": 21_000,
          "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    with mining_off(chain):
        signed = account.sign_transaction(tx)
        w3.eth.send_raw_transaction(signed.raw_transaction)
        with pytest.raises(Exception) as again:
            w3.eth.send_raw_transaction(signed.raw_transaction)
        assert classify_exception(again.value).reason == ALREADY_KNOWN
        with pytest.raises(Exception) as no_bump:
            w3.eth.send_raw_transaction(account.sign_transaction(dict(tx, value=2)).raw_transaction)
        failure = classify_exception(no_bump.value)
        assert (str(failure.failure_class), failure.reason) == ("transient", REPLACEMENT_UNDERPRICED)
