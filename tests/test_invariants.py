"""Stateful property tests: channels, session keys, freezes and closes driven together against a shadow model.

Proven here (each after every step of every generated sequence):
  I1  a channel's redeemed amount never decreases, never exceeds its deposit, nor the highest amount any of its
      signers signed;
  I2  redeeming a voucher twice moves nothing;
  I3  the contract's token balance equals the sum of unredeemed deposits of live channels;
  I4  when a channel ends, what its payee received plus the payer's refund equals its deposits, exactly;
  I5  spend through a session key never exceeds its total cap, nor its cap in any one period;
  I6  expired, revoked (after their window) or frozen (after the window) keys, and strangers, authorise nothing;
  I7  only the payer unfreezes; the guardian moves no funds; every outflow goes to the channel's payee
      (or, on close, the refund to its payer);
  I8  after the challenge period the payer can always withdraw what is unredeemed.
Each rule predicts the exact outcome (amount or custom error) from the model before sending the transaction.
"""

from __future__ import annotations

import ast
import os
from collections import defaultdict

import pytest
from ape.exceptions import ContractLogicError
from channel_model import REDEEM_WINDOW, ChannelModel, Lane, SignedVoucher
from conftest import UNIT, Channel
from eth_account import Account
from eth_utils import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from protocolbanks.sdk import LaneTerms, Voucher, pack_redemption_rows

LONG = os.environ.get("PB_LONG") == "1"
amounts = st.integers(min_value=1, max_value=30 * UNIT)


def error_name(exc: Exception, contract) -> str:
    """The custom error's name; decodes the selector itself when Ape hands back raw revert data."""
    name = type(exc).__name__
    if name != "ContractLogicError":
        return name
    raw = getattr(exc, "revert_message", "") or str(exc)
    if isinstance(raw, str) and raw[:2] in ("b'", 'b"'):
        raw = ast.literal_eval(raw)
    data = raw if isinstance(raw, bytes) else bytes.fromhex(raw[2:]) if raw.startswith("0x") else b""
    for abi in contract.contract_type.errors:
        signature = f"{abi.name}({','.join(str(i.canonical_type) for i in abi.inputs)})"
        if keccak(text=signature)[:4] == data[:4]:
            return abi.name
    return name


@pytest.mark.parametrize("long_run", [pytest.param(True, marks=pytest.mark.long), False], ids=["long", "ci"])
def test_channels_and_keys_state_machine(long_run, chain, channels, token, domain, payer, payee, guardian,
                                         stranger):
    if long_run != LONG:
        pytest.skip("the long run replaces the CI run when PB_LONG=1")

    class ChannelMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = chain.snapshot()
            self.now = chain.pending_timestamp + 10
            self.models: list[ChannelModel] = []
            self.vouchers: list[SignedVoucher] = []
            self.key_spend: dict[tuple[str, int], int] = defaultdict(int)
            self.key_period_spend: dict[tuple[str, int, int], int] = defaultdict(int)
            self.key_caps: dict[tuple[str, int], LaneTerms] = {}
            self.start = {who: token.balanceOf(who) for who in (channels, payer, payee, guardian)}
            self.paid_in_by_payer = 0
            self.salt = 0
            self.guardian_named = False

        def teardown(self) -> None:
            chain.restore(self.snapshot)

        # ------------------------------------------------------------ helpers

        def send(self, method, *args, sender):
            chain.pending_timestamp = self.now
            try:
                return method(*args, sender=sender)
            finally:
                self.now += 1

        def expect(self, error: str | None, method, *args, sender):
            """Sends the transaction and checks it fails with exactly `error` (or succeeds when None)."""
            at = self.now
            try:
                receipt = self.send(method, *args, sender=sender)
            except ContractLogicError as exc:
                got = error_name(exc, channels)
                assert error is not None, f"unexpected revert {got}: {exc}"
                assert got == error, f"expected {error}, got {got}: {exc}"
                return None, at
            assert error is None, f"expected {error}, but it succeeded"
            return receipt, at

        def live(self) -> list[int]:
            return [i for i, m in enumerate(self.models) if not m.closed]

        # ------------------------------------------------------------ rules

        @initialize(deposit=amounts)
        def open_first(self, deposit):
            self.open_channel(deposit)

        @precondition(lambda self: len(self.models) < 3)
        @rule(deposit=amounts)
        def open_channel(self, deposit):
            self.salt += 1
            salt = self.salt.to_bytes(32, "big")
            self.send(channels.open, payee, token, salt, deposit, sender=payer)
            handle = Channel(channels, domain, payer, payee, token, salt, payer.private_key)
            lane = Lane(payer.address, payer.private_key, LaneTerms.for_payer(0))
            self.models.append(ChannelModel(handle, deposit, lane))
            self.paid_in_by_payer += deposit

        @rule(data=st.data(), amount=amounts)
        def top_up(self, data, amount):
            if not self.live():
                return
            index = data.draw(st.sampled_from(self.live()))
            model = self.models[index]
            self.send(channels.topUp, model.handle.config, amount, sender=stranger)
            model.deposit += amount

        @rule(data=st.data(), step=st.integers(min_value=1, max_value=15 * UNIT), by_stranger=st.booleans())
        def sign(self, data, step, by_stranger):
            if not self.models:
                return
            index = data.draw(st.integers(0, len(self.models) - 1))
            model = self.models[index]
            lane = model.lane
            key = Account.create().key if by_stranger else lane.key
            signer = Account.from_key(key).address
            cumulative = max(model.max_signed, model.claimed) + step
            sig = Voucher(model.handle.id, lane.terms.epoch, cumulative).sign(domain, key)
            row = (model.handle.id, cumulative, lane.terms.pack(), sig.r, sig.vs)
            if not by_stranger:
                model.max_signed = max(model.max_signed, cumulative)
            self.vouchers.append(SignedVoucher(index, cumulative, signer, lane.terms, row))

        @rule(data=st.data(), refresh=st.booleans())
        def redeem(self, data, refresh):
            if not self.vouchers:
                return
            voucher = data.draw(st.sampled_from(self.vouchers))
            model = self.models[voucher.channel]
            terms, row = voucher.terms, voucher.row
            current = model.lane.terms
            if refresh and voucher.signer == model.lane.signer and current.epoch == terms.epoch:
                terms, row = current, row[:2] + (current.pack(),) + row[3:]  # what a relayer following events does
            claimed_before = model.claimed
            delta, err = model.redeem(voucher.signer, terms, voucher.cumulative, self.now, apply=False)
            before = token.balanceOf(payee)
            receipt, at = self.expect(err, channels.redeem, payee, token, row, sender=stranger)
            if receipt is None:
                return
            model.redeem(voucher.signer, terms, voucher.cumulative, at)
            assert token.balanceOf(payee) - before == delta == model.claimed - claimed_before
            self.record_key_spend(voucher, terms, delta, at)
            # I2: the same voucher again moves nothing.
            again_before = token.balanceOf(payee)
            self.send(channels.redeem, payee, token, row, sender=stranger)
            assert token.balanceOf(payee) == again_before

        @rule(data=st.data())
        def redeem_batch(self, data):
            if not self.vouchers:
                return
            picked = data.draw(st.lists(st.sampled_from(self.vouchers), min_size=1, max_size=5))
            at = self.now
            expected_total = 0
            for voucher in picked:
                delta, _err = self.models[voucher.channel].redeem(voucher.signer, voucher.terms, voucher.cumulative,
                                                                 at)
                expected_total += delta
                self.record_key_spend(voucher, voucher.terms, delta, at)
            before = token.balanceOf(payee)
            self.send(channels.redeemBatch, payee, token, pack_redemption_rows([v.row for v in picked]),
                      sender=stranger)
            assert token.balanceOf(payee) - before == expected_total

        def record_key_spend(self, voucher, terms, delta, at):
            if voucher.signer == payer.address or delta == 0:
                return
            lane_id = (voucher.signer, terms.epoch)
            self.key_spend[lane_id] += delta
            if terms.period_length:
                self.key_period_spend[(*lane_id, at // terms.period_length)] += delta

        @rule(data=st.data(), total=amounts, period_cap=amounts, period_length=st.sampled_from([0, 60, 3600]),
              valid_for=st.integers(min_value=1, max_value=4 * 3600), rotate=st.booleans())
        def grant_key(self, data, total, period_cap, period_length, valid_for, rotate):
            if not self.live():
                return
            model = self.models[data.draw(st.sampled_from(self.live()))]
            key = Account.create()
            policy = (total, period_cap, period_length, self.now + valid_for, 0)
            has_key = model.lane.signer != payer.address
            method = channels.rotateSessionKey if rotate else channels.grantSessionKey
            err = "NoSessionKey" if rotate and not has_key else ("CloseAlreadyRequested" if model.closes_at else None)
            receipt, at = self.expect(err, method, model.handle.config, key.address, policy, sender=payer)
            if receipt is None:
                return
            model.retire_current(at)
            epoch = model.lane.terms.epoch + 1
            ceiling = min(model.claimed + total, 2**80 - 1)
            terms = LaneTerms(ceiling, period_cap, period_length, policy[3], epoch)
            assert LaneTerms.unpack(model.handle.state().terms) == terms
            model.lane = Lane(key.address, key.key, terms)
            model.frozen_valid_until = 0
            self.key_caps[(key.address, epoch)] = LaneTerms(total, period_cap, period_length, 0, epoch)

        @rule(data=st.data())
        def revoke_key(self, data):
            if not self.live():
                return
            model = self.models[data.draw(st.sampled_from(self.live()))]
            err = None if model.lane.signer != payer.address else "NoSessionKey"
            receipt, at = self.expect(err, channels.revokeSessionKey, model.handle.config, sender=payer)
            if receipt is None:
                return
            model.retire_current(at)
            model.lane = Lane(payer.address, payer.private_key, LaneTerms.for_payer(model.lane.terms.epoch + 1))
            model.frozen_valid_until = 0

        @rule(data=st.data(), by_guardian=st.booleans())
        def freeze(self, data, by_guardian):
            if not self.live():
                return
            model = self.models[data.draw(st.sampled_from(self.live()))]
            if not self.guardian_named:
                self.send(channels.setGuardian, guardian, sender=payer)
                self.guardian_named = True
            who = guardian if by_guardian else stranger
            err = None if by_guardian and not model.frozen_valid_until else (
                "NotGuardian" if not by_guardian else "AlreadyFrozen")
            receipt, at = self.expect(err, channels.freeze, model.handle.config, sender=who)
            if receipt is None:
                return
            model.frozen_valid_until = model.lane.terms.valid_until
            until = min(model.lane.terms.valid_until, at + REDEEM_WINDOW)
            model.lane.terms = LaneTerms(**{**model.lane.terms.__dict__, "valid_until": until})

        @rule(data=st.data(), by_payer=st.booleans())
        def unfreeze(self, data, by_payer):
            if not self.live():
                return
            model = self.models[data.draw(st.sampled_from(self.live()))]
            who = payer if by_payer else guardian
            err = "NotPayer" if not by_payer else (None if model.frozen_valid_until else "NotFrozen")
            receipt, _ = self.expect(err, channels.unfreeze, model.handle.config, sender=who)
            if receipt is None:
                return
            model.lane.terms = LaneTerms(**{**model.lane.terms.__dict__, "valid_until": model.frozen_valid_until})
            model.frozen_valid_until = 0

        @rule(seconds=st.sampled_from([1, 59, 600, 3599, 3600, 7200]))
        def advance_time(self, seconds):
            self.now += seconds

        @rule(data=st.data())
        def request_close(self, data):
            if not self.live():
                return
            model = self.models[data.draw(st.sampled_from(self.live()))]
            err = "CloseAlreadyRequested" if model.closes_at else None
            receipt, at = self.expect(err, channels.requestClose, model.handle.config, sender=payer)
            if receipt is not None:
                model.closes_at = at + REDEEM_WINDOW

        @rule(data=st.data())
        def withdraw(self, data):
            if not self.live():
                return
            model = self.models[data.draw(st.sampled_from(self.live()))]
            err = ("CloseNotRequested" if not model.closes_at
                   else "ChallengePeriodActive" if self.now < model.closes_at else None)
            before = token.balanceOf(payer)
            receipt, _ = self.expect(err, channels.withdraw, model.handle.config, sender=payer)
            if receipt is None:
                return
            model.closed, model.refunded = True, model.deposit - model.claimed
            assert token.balanceOf(payer) - before == model.refunded  # I8

        @rule(data=st.data())
        def close_cooperative(self, data):
            if not self.live():
                return
            model = self.models[data.draw(st.sampled_from(self.live()))]
            empty = (model.handle.id, 0, 0, b"\x00" * 32, b"\x00" * 32)
            before = token.balanceOf(payer)
            self.send(channels.closeCooperative, model.handle.config, empty, sender=payee)
            model.closed, model.refunded = True, model.deposit - model.claimed
            assert token.balanceOf(payer) - before == model.refunded

        # ------------------------------------------------------------ invariants

        @invariant()
        def channel_accounting(self):  # I1, I4
            for model in self.models:
                assert 0 <= model.claimed <= model.deposit
                assert model.claimed <= model.max_signed or model.claimed == 0
                if model.closed:
                    assert model.claimed + model.refunded == model.deposit
                    continue
                state = model.handle.state()
                assert (state.claimed, state.deposit) == (model.claimed, model.deposit)

        @invariant()
        def contract_holds_unredeemed_deposits(self):  # I3
            held = sum(m.deposit - m.claimed for m in self.models if not m.closed)
            assert token.balanceOf(channels) - self.start[channels] == held

        @invariant()
        def money_goes_only_to_payee_or_back_to_payer(self):  # I7
            paid = sum(m.claimed for m in self.models)
            refunded = sum(m.refunded for m in self.models)
            assert token.balanceOf(payee) - self.start[payee] == paid
            assert self.start[payer] - token.balanceOf(payer) == self.paid_in_by_payer - refunded
            assert token.balanceOf(guardian) == self.start[guardian]

        @invariant()
        def key_spend_within_caps(self):  # I5
            for (signer, epoch), spent in self.key_spend.items():
                caps = self.key_caps[(signer, epoch)]
                assert spent <= caps.ceiling
            for (signer, epoch, _), spent in self.key_period_spend.items():
                caps = self.key_caps[(signer, epoch)]
                assert spent <= caps.period_cap

    ChannelMachine.TestCase.settings = settings(
        max_examples=int(os.environ.get("PB_EXAMPLES", "1000" if long_run else "10")),
        stateful_step_count=40 if long_run else 25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    ChannelMachine.TestCase().runTest()
