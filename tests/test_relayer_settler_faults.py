"""Settlement faults on a real chain: a row the contract refuses for good is skipped on-chain, recorded with its
reason and never blocks the other channels; stale lane terms are refreshed from the chain cache and sent again; an
RPC outage is retried with backoff (state in the ledger, no busy loop, a restart continues) — paid once, always."""

import pytest
from conftest import UNIT
from eth_account import Account
from hexbytes import HexBytes
from protocolbanks.relayer import inspection
from protocolbanks.relayer.intake import VoucherIntake
from protocolbanks.relayer.metrics import RelayerMetrics
from protocolbanks.relayer.retry_backoff import Backoff
from protocolbanks.relayer.row_verdicts import STALE_TERMS_RETRIES
from protocolbanks.relayer.settlement_policy import SettlementPolicy
from protocolbanks.relayer.settlement_receipts import read_redemptions
from protocolbanks.relayer.settler import Settler
from protocolbanks.sdk import LaneTerms, Voucher
from settler_harness import Rig, forge_into_store, open_keyed, submission, submit_all
from web3 import Web3
from web3.providers.base import BaseProvider


@pytest.fixture
def rig(chain, channels, payee, domain, tmp_path):
    return Rig.fresh(chain, channels, payee, domain, tmp_path)


def failures_metric(metrics, failure_class, reason):
    return metrics.registry.get_sample_value("pb_settlement_failures_total",
                                             {"class": failure_class, "reason": reason}) or 0


def test_permanently_refused_rows__skipped_on_chain__recorded__others_paid(chain, channels, open_channel, payee,
                                                                           token, rig):
    (good_a, key_a), (good_b, key_b) = open_keyed(chain, open_channel), open_keyed(chain, open_channel)
    forged, key_f = open_keyed(chain, open_channel)
    stranger_signed, _ = open_keyed(chain, open_channel)
    rig.cache.poll()
    assert [r.status for r in submit_all(rig.intake, [submission(good_a, key_a, 3 * UNIT),
                                                      submission(good_b, key_b, 2 * UNIT)])] == ["accepted"] * 2
    forge_into_store(rig.store, forged, 4 * UNIT, r=b"\x00" * 32, vs=b"\x00" * 32)  # the contract: InvalidSignature
    wrong = Voucher(stranger_signed.id, stranger_signed.terms.epoch, UNIT).sign(stranger_signed.domain,
                                                                                 Account.create().key)
    forge_into_store(rig.store, stranger_signed, UNIT, r=wrong.r, vs=wrong.vs)  # no such lane: UnknownLane
    metrics = RelayerMetrics()
    settler = rig.settler(payee, channels.address, metrics=metrics)
    before = token.balanceOf(payee)

    [sent] = settler.settle_due()  # one batch with all four rows
    assert sent.channels == 4
    receipt = rig.w3.eth.get_transaction_receipt(HexBytes(sent.tx_hash))
    skipped = read_redemptions(settler.chain.contract, receipt).skipped  # RedemptionSkipped events
    assert set(skipped) == {forged.id, stranger_signed.id}
    assert settler.confirm_sent() == 1
    assert token.balanceOf(payee) - before == 5 * UNIT  # the good rows went through

    [shown] = inspection.settlements(rig.store, failed_only=True)
    errors = {item["channelId"]: item["error"] for item in shown["failedItems"]}
    assert errors == {"0x" + forged.id.hex(): "InvalidSignature"}  # refused for good at once
    progress = rig.store.progress()
    assert progress[forged.id].unsettled == 4 * UNIT and progress[good_a.id].unsettled == 0
    assert failures_metric(metrics, "permanent", "InvalidSignature") == 1
    # No lane for the stranger's voucher and no other terms known: the chain view may be a poll behind the node,
    # so the row is looked at again after a backoff, STALE_TERMS_RETRIES times, and then given up.
    for _ in range(STALE_TERMS_RETRIES):
        assert failures_metric(metrics, "permanent", "UnknownLane") == 0
        rig.clock.now += 3600
        settler.run_round()
    assert failures_metric(metrics, "transient", "UnknownLane") == STALE_TERMS_RETRIES
    assert failures_metric(metrics, "permanent", "UnknownLane") == 1
    failed = {item["channelId"]: item["error"]
              for shown in inspection.settlements(rig.store, failed_only=True) for item in shown["failedItems"]}
    error = failed["0x" + stranger_signed.id.hex()]
    assert error.startswith("UnknownLane") and error.endswith("no other lane terms known for the voucher's epoch")
    assert rig.store.progress()[stranger_signed.id].unsettled == UNIT

    rig.clock.now += 10**6  # however long it waits, a refused voucher is not sent again
    assert settler.run_round().sent == []
    # A newer, valid voucher for the channel lifts the hold: it goes out and pays in full.
    intake = VoucherIntake(rig.store, rig.cache.get, forged.domain, payee=payee.address)  # picks up from the store
    assert submit_all(intake, [submission(forged, key_f, 5 * UNIT)])[0].status == "accepted"
    assert [o.channels for o in settler.run_round().sent] == [1]
    assert settler.confirm_sent() == 1
    assert token.balanceOf(payee) - before == 10 * UNIT and rig.store.progress()[forged.id].unsettled == 0


def test_stale_terms__skipped__refreshed_from_the_chain_cache__sent_again(chain, channels, open_channel, payee, token,
                                                                          rig):
    good, good_key = open_keyed(chain, open_channel)
    stale, stale_key = open_keyed(chain, open_channel)
    rig.cache.poll()
    submit_all(rig.intake, [submission(good, good_key, UNIT)])
    old = stale.terms  # the row carries terms the contract never had for this epoch (a signature covers the epoch)
    wrong_terms = LaneTerms(old.ceiling - 1, old.period_cap, old.period_length, old.valid_until, old.epoch).pack()
    signed = Voucher(stale.id, old.epoch, 2 * UNIT).sign(stale.domain, stale_key)
    forge_into_store(rig.store, stale, 2 * UNIT, r=signed.r, vs=signed.vs, terms=wrong_terms)
    cache_has_it = {"yes": False}  # the chain cache has not seen the stale channel yet when the batch goes out
    settler = Settler(rig.w3, channels.address, Account.from_key(payee.private_key), rig.store,
                      lambda cid: rig.cache.get(cid) if cache_has_it["yes"] or cid != stale.id else None,
                      SettlementPolicy(threshold=UNIT, interval_ms=10**9), confirmations=0, clock=rig.clock)
    before = token.balanceOf(payee)
    [first] = settler.settle_due()
    cache_has_it["yes"] = True
    assert settler.confirm_sent() == 1
    assert token.balanceOf(payee) - before == UNIT  # the stale row was skipped (UnknownLane)
    [row] = [i for i in inspection.settlements(rig.store)[0]["items"] if i["channelId"] == "0x" + stale.id.hex()]
    assert (row["outcome"], row["error"].split("(")[0]) == ("skipped", "UnknownLane")
    [second] = settler.run_round().sent  # at once, with the lane's real terms
    assert second.settlement_id != first.settlement_id
    assert settler.confirm_sent() == 1
    assert token.balanceOf(payee) - before == 3 * UNIT and rig.store.progress()[stale.id].unsettled == 0


def test_freeze_moments_before_the_batch__chain_view_behind__settled_once_it_catches_up(chain, channels, open_channel,
                                                                                     payee, payer, guardian, token,
                                                                                     rig):
    """The Sentinel's freeze moves the lane a moment before a batch is built: the node says UnknownLane while the
    chain view still holds the old terms. The row is looked at again after a backoff, with the frozen lane's terms
    once the view has them, and paid — not given up (the demo's runaway channel, seen once in CI)."""
    channel, key = open_keyed(chain, open_channel)
    rig.cache.poll()
    assert submit_all(rig.intake, [submission(channel, key, 3 * UNIT)])[0].status == "accepted"
    channels.setGuardian(guardian, sender=payer)
    channels.freeze(channel.config, sender=guardian)  # the chain view is not polled: it is behind
    settler = rig.settler(payee, channels.address)
    before = token.balanceOf(payee)
    assert settler.run_round().sent == []  # simulated: UnknownLane, nothing sent
    assert rig.store.progress()[channel.id].unsettled == 3 * UNIT
    rig.cache.poll()
    rig.clock.now += 60  # past the backoff
    assert [o.channels for o in settler.run_round().sent] == [1]
    assert settler.confirm_sent() == 1
    assert token.balanceOf(payee) - before == 3 * UNIT and rig.store.progress()[channel.id].unsettled == 0


class SwitchableProvider(BaseProvider):
    """The chain's own provider behind a switch: while `down`, every request fails as a refused connection would."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.down = False
        self.calls = 0

    def request_func(self, w3, middleware_onion):
        inner = self.inner.request_func(w3, middleware_onion)  # keeps the inner provider's own formatting

        def request(method, params):
            self.calls += 1
            if self.down:
                raise ConnectionError(f"connection refused ({method})")
            return inner(method, params)
        return request

    def make_request(self, method, params):
        raise NotImplementedError("requests go through request_func")


def test_rpc_outage__backoff_in_the_ledger__no_busy_loop__restart_continues__paid_once(chain, channels, open_channel,
                                                                                       payee, token, rig):
    channel, key = open_keyed(chain, open_channel)
    rig.cache.poll()
    submit_all(rig.intake, [submission(channel, key, 3 * UNIT)])
    provider = SwitchableProvider(rig.w3.provider)
    flaky = Web3(provider)
    metrics = RelayerMetrics()

    def settler():  # a (re)started relayer process: only the database carries over
        return Settler(flaky, channels.address, Account.from_key(payee.private_key), rig.store, rig.cache.get,
                       SettlementPolicy(threshold=UNIT, interval_ms=10**9), confirmations=1, clock=rig.clock,
                       backoff=Backoff(1_000, 8_000), metrics=metrics)

    first = settler()
    provider.down = True
    assert first.run_round().sent == []
    [queued] = inspection.settlements(rig.store)
    assert (queued["status"], queued["attempts"], queued["errorClass"]) == ("queued", 1, "transient")
    assert queued["retryAtMs"] == rig.clock.now * 1000 + 1_000
    calls = provider.calls
    for _ in range(50):  # rounds before the retry time touch no RPC
        first.run_round()
    assert provider.calls == calls
    rig.clock.now += 1
    first.run_round()  # second failure: the wait doubles
    assert inspection.settlements(rig.store)[0]["retryAtMs"] == rig.clock.now * 1000 + 2_000

    restarted = settler()
    rig.clock.now += 1
    restarted.run_round()
    assert provider.calls == calls + 1  # still waiting, as the ledger says: no call
    provider.down = False
    rig.clock.now += 1
    before = token.balanceOf(payee)
    [sent] = restarted.run_round().sent
    assert sent.settlement_id == queued["id"]  # the same settlement, on its third attempt
    assert failures_metric(metrics, "transient", "rpc_unavailable") == 2

    provider.down = True  # down again while the settlement waits for its confirmation
    restarted.run_round()
    calls = provider.calls
    restarted.run_round()
    assert provider.calls == calls  # the round itself backs off
    provider.down = False
    chain.mine(1)
    rig.clock.now += 10
    assert restarted.run_round().confirmed == 1
    assert token.balanceOf(payee) - before == 3 * UNIT and rig.store.progress()[channel.id].unsettled == 0
