"""The batch's fast path against the reference path: one voucher redeemed through `redeemBatch` (assembly fast
path, falling back to the reference routine) must end exactly like the same voucher through `redeem` (reference
routine, strict): same money moved, same channel state, and the batch's skip reason equal to `redeem`'s revert.

Scenarios cover the payer's own lane and session keys with total and period caps, earlier redemptions in the
same or an older period, expiry, rotation (the retired key's window), strangers and every cap boundary.
"""

from __future__ import annotations

import pytest
from ape.exceptions import ContractLogicError
from conftest import UNIT
from eth_account import Account
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_invariants import error_name

HOUR = 3600


def outcome_of_redeem(channels, payee, token, row, channel):
    before = token.balanceOf(payee)
    try:
        channels.redeem(payee, token, row, sender=payee)
        error = None
    except ContractLogicError as exc:  # the revert is the outcome under test
        error = error_name(exc, channels)
    return token.balanceOf(payee) - before, channel.state(), error


def outcome_of_batch(channels, payee, token, row, channel):
    before = token.balanceOf(payee)
    tx = channels.redeemBatch(payee, token, [row], sender=payee)
    skipped = tx.decode_logs(channels.RedemptionSkipped)
    error = None
    if skipped:
        reason = bytes(skipped[0].reason)
        error = next(abi.name for abi in channels.contract_type.errors
                     if keccak(text=f"{abi.name}({','.join(str(i.canonical_type) for i in abi.inputs)})")[:4]
                     == reason)
    return token.balanceOf(payee) - before, channel.state(), error


@pytest.mark.parametrize("examples", [pytest.param(400, marks=pytest.mark.long), 60], ids=["long", "ci"])
def test_batch_of_one__ends_exactly_like_redeem(examples, chain, open_channel, channels, token, payee, payer):
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        deposit=st.integers(1, 60).map(lambda u: u * UNIT),
        keyed=st.sampled_from([True, True, True, False]),
        total_cap=st.integers(1, 12).map(lambda u: u * UNIT),
        period=st.sampled_from([(0, 0), (60, 3 * UNIT), (HOUR, 10 * UNIT)]),
        earlier=st.integers(0, 20).map(lambda u: u * UNIT // 2),
        wait=st.sampled_from([0, 30, 61, HOUR, 2 * HOUR, 30 * HOUR]),
        signer=st.sampled_from(["current"] * 5 + ["stranger", "payer", "retired"]),
        step=st.integers(-2, 16).map(lambda u: u * UNIT // 2),
        valid_for=st.sampled_from([45, HOUR, 24 * HOUR]),
    )
    def scenario(deposit, keyed, total_cap, period, earlier, wait, signer, step, valid_for):
        cumulative = max(0, earlier + step)
        snapshot = chain.snapshot()
        try:
            channel = open_channel(deposit)
            payer_key = channel.signer_key
            key = Account.create().key
            retired_row = None
            if keyed:
                channel.grant(key, total_cap=total_cap, period_cap=period[1], period_length=period[0],
                              valid_for=valid_for, now=chain.pending_timestamp)
            if earlier and earlier <= deposit:
                try:
                    channels.redeem(payee, token, channel.voucher(earlier), sender=payee)
                except ContractLogicError:  # an earlier voucher above a cap is simply not redeemed
                    pass
            if signer == "retired" and keyed:
                retired_row = channel.voucher(cumulative)
                channels.rotateSessionKey(channel.config, Account.create().address,
                                          (UNIT, 0, 0, chain.pending_timestamp + HOUR, 0), sender=payer)
            chain.pending_timestamp += wait
            at = chain.pending_timestamp
            row = retired_row or {
                "current": lambda: channel.voucher(cumulative),
                "retired": lambda: channel.voucher(cumulative),  # no key to retire: the current signer
                "stranger": lambda: channel.voucher(cumulative, key=Account.create().key),
                "payer": lambda: channel.voucher(cumulative, key=payer_key),
            }[signer]()
            inner = chain.snapshot()
            expected = outcome_of_redeem(channels, payee, token, row, channel)
            outcomes.append(expected[2] or ("paid" if expected[0] else "nothing due"))
            chain.restore(inner)
            # anvil forgets the next block's timestamp on a revert to a snapshot: both runs share one instant
            chain.pending_timestamp = at
            assert outcome_of_batch(channels, payee, token, row, channel) == expected
        finally:
            chain.restore(snapshot)

    outcomes: list[str] = []
    scenario()
    print("outcomes:", {name: outcomes.count(name) for name in sorted(set(outcomes))})
