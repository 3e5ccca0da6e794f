"""Off-chain acceptance of vouchers: each reason, stale acks, and agreement with the contract's caps."""

import pytest
from protocolbanks.sdk.acceptance import ChannelSnapshot, PeriodUsage, Rejection, evaluate_voucher
from protocolbanks.sdk.lane_terms import LaneTerms

KEY = "0x00000000000000000000000000000000000000Aa"
U = 10**6
TERMS = LaneTerms(ceiling=50 * U, period_cap=20 * U, period_length=3600, valid_until=100_000, epoch=1)
SNAP = ChannelSnapshot(b"\x01" * 32, "0xPayer", "0xPayee", "0xToken", KEY, TERMS, deposit=40 * U, claimed=0,
                       max_per_payment=5 * U)


NO_USAGE = PeriodUsage()


def decide(snapshot=SNAP, *, signer=KEY, epoch=1, cumulative=U, accepted=0, period=NO_USAGE, now=7200):
    return evaluate_voucher(snapshot, signer=signer, epoch=epoch, cumulative=cumulative,
                            accepted_cumulative=accepted, period=period, now=now)


def test_accept__reports_payment_remaining_and_period_usage():
    decision, usage = decide(cumulative=3 * U, accepted=U)
    assert (decision.accepted, decision.payment, decision.remaining) == (True, 2 * U, 37 * U)
    assert usage == PeriodUsage(index=2, spent=2 * U)


def test_stale_voucher__is_an_idempotent_ack():
    decision, usage = decide(cumulative=2 * U, accepted=2 * U, period=PeriodUsage(2, 2 * U))
    assert decision.accepted and decision.stale and decision.payment == 0 and usage == PeriodUsage(2, 2 * U)


@pytest.mark.parametrize("change, reason", [
    ({"snapshot": None}, Rejection.UNKNOWN_CHANNEL),
    ({"snapshot": SNAP.__class__(**{**SNAP.__dict__, "closed": True})}, Rejection.CHANNEL_CLOSED),
    ({"snapshot": SNAP.__class__(**{**SNAP.__dict__, "closing": True})}, Rejection.CHANNEL_CLOSING),
    ({"snapshot": SNAP.__class__(**{**SNAP.__dict__, "frozen": True})}, Rejection.CHANNEL_FROZEN),
    ({"signer": "0x00000000000000000000000000000000000000Bb"}, Rejection.SIGNER_NOT_AUTHORISED),
    ({"epoch": 0}, Rejection.SIGNER_NOT_AUTHORISED),
    ({"now": 100_000}, Rejection.KEY_EXPIRED),
    ({"cumulative": 41 * U, "accepted": 40 * U}, Rejection.EXCEEDS_DEPOSIT),
    ({"cumulative": 6 * U}, Rejection.EXCEEDS_MAX_PER_PAYMENT),
    ({"cumulative": 21 * U, "accepted": 17 * U, "period": PeriodUsage(2, 17 * U)}, Rejection.EXCEEDS_PERIOD_CAP),
])
def test_reject__each_reason(change, reason):
    decision, usage = decide(**change)
    assert not decision.accepted and decision.rejection is reason
    assert usage == change.get("period", PeriodUsage())


def test_total_cap__binds_before_deposit():
    snap = ChannelSnapshot(**{**SNAP.__dict__, "deposit": 100 * U, "max_per_payment": 0,
                              "terms": LaneTerms(10 * U, 0, 0, 100_000, 1)})
    decision, _ = decide(snap, cumulative=11 * U, accepted=9 * U)
    assert decision.rejection is Rejection.EXCEEDS_TOTAL_CAP


def test_new_period__resets_period_usage():
    decision, usage = decide(cumulative=5 * U, accepted=U, period=PeriodUsage(1, 20 * U), now=7200)
    assert decision.accepted and usage == PeriodUsage(2, 4 * U)
