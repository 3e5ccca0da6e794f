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
from protocolbanks.sdk import pack_redemption_rows
from protocolbanks.sdk.redeemed_rows import decode_redeemed_rows
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


def error_name_of(channels, selector: bytes) -> str:
    return next(abi.name for abi in channels.contract_type.errors
                if keccak(text=f"{abi.name}({','.join(str(i.canonical_type) for i in abi.inputs)})")[:4] == selector)


def outcome_of_batch(channels, payee, token, row, channel):
    before = token.balanceOf(payee)
    tx = channels.redeemBatch(payee, token, pack_redemption_rows([row]), sender=payee)
    skipped = tx.decode_logs(channels.RedemptionSkipped)
    error = error_name_of(channels, bytes(skipped[0].reason)) if skipped else None
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


@pytest.mark.parametrize("examples", [pytest.param(300, marks=pytest.mark.long), 30], ids=["long", "ci"])
def test_batch__ends_exactly_like_its_rows_redeemed_one_by_one(examples, chain, project, deployer, open_channel,
                                                               channels, token, payee, payer):
    """Rows of several channels, in any order and mix (current keys with period caps, a retired key within or past
    its window, strangers, the payer, repeats, amounts past every cap): one `redeemBatch` ends exactly like `redeem`
    of each row in turn, in one transaction (same block time) — money, every channel's state, the skipped rows
    and their reasons in order, and the redeemed rows the event lists."""
    redeemer = deployer.deploy(project.SequentialRedeemer)

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        deposits=st.lists(st.integers(1, 20).map(lambda u: u * UNIT), min_size=3, max_size=3),
        rows=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["current"] * 4 + ["retired", "stranger", "payer"]),
                                st.integers(0, 24).map(lambda u: u * UNIT // 2)), min_size=1, max_size=8),
        wait=st.sampled_from([0, 61, HOUR]),
    )
    def scenario(deposits, rows, wait):
        snapshot = chain.snapshot()
        try:
            opened = [open_channel(deposit) for deposit in deposits]
            capped, rotated, _own = opened  # a key with a per-minute cap; a key replaced by another; the payer's lane
            now = chain.pending_timestamp
            capped.grant(Account.create().key, total_cap=8 * UNIT, period_cap=3 * UNIT, period_length=60,
                         valid_for=HOUR, now=now)
            old_key = Account.create().key
            rotated.grant(old_key, total_cap=10 * UNIT, now=now)
            old_terms = rotated.terms
            new_key = Account.create().key
            channels.rotateSessionKey(rotated.config, Account.from_key(new_key).address,
                                      (12 * UNIT, 4 * UNIT, HOUR, now + 2 * HOUR, 0), sender=payer)
            rotated.signer_key = new_key
            rotated.refresh_terms()
            chain.pending_timestamp += wait
            at = chain.pending_timestamp
            signed = []
            for index, who, amount in rows:
                channel = opened[index]
                if who == "retired" and channel is rotated:
                    signed.append(channel.voucher(amount, key=old_key, terms=old_terms))
                elif who == "stranger":
                    signed.append(channel.voucher(amount, key=Account.create().key))
                elif who == "payer":
                    signed.append(channel.voucher(amount, key=payer.private_key))
                else:
                    signed.append(channel.voucher(amount))

            inner = chain.snapshot()
            before = token.balanceOf(payee)
            outcomes = redeemer.redeemEach(channels, payee, token, signed, sender=payee).decode_logs(redeemer.Outcome)
            expected = (token.balanceOf(payee) - before, [channel.state() for channel in opened],
                        [(bytes(o.channelId), bytes(o.reason)) for o in outcomes if bytes(o.reason) != bytes(4)],
                        [(bytes(o.channelId), signed[o.index][1]) for o in outcomes if o.paid])
            chain.restore(inner)
            chain.pending_timestamp = at  # anvil forgets the next block's timestamp on a revert to a snapshot

            before = token.balanceOf(payee)
            tx = channels.redeemBatch(payee, token, pack_redemption_rows(signed), sender=payee)
            [event] = tx.decode_logs(channels.VouchersRedeemed)
            actual = (token.balanceOf(payee) - before, [channel.state() for channel in opened],
                      [(bytes(s.channelId), bytes(s.reason)) for s in tx.decode_logs(channels.RedemptionSkipped)],
                      decode_redeemed_rows(event.redeemed))
            assert actual == expected
            assert event.total == actual[0]
            seen.extend(error_name_of(channels, reason) for _, reason in expected[2])
            seen.extend(["paid"] * len(expected[3]))
        finally:
            chain.restore(snapshot)

    seen: list[str] = []
    scenario()
    print("row outcomes:", {name: seen.count(name) for name in sorted(set(seen))})
