"""A plain-Python shadow of StreamChannels, used by the stateful property tests.

It mirrors the contract's rules (docs/protocol.md) so each rule can predict the exact outcome — success and the
amount moved, or the custom error — before the transaction is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocolbanks.sdk import LaneTerms

REDEEM_WINDOW = 3600


@dataclass
class Lane:
    signer: str
    key: bytes | str
    terms: LaneTerms
    period_spent: int = 0
    period_index: int = 0

    @property
    def ident(self) -> tuple[str, int]:
        return (self.signer, self.terms.pack())


@dataclass
class SignedVoucher:
    channel: int  # index into the machine's channel list
    cumulative: int
    signer: str
    terms: LaneTerms
    row: tuple


@dataclass
class ChannelModel:
    handle: object
    deposit: int
    lane: Lane
    claimed: int = 0
    retired: dict[tuple[str, int], tuple[int, Lane]] = field(default_factory=dict)
    frozen_valid_until: int = 0
    closes_at: int = 0
    closed: bool = False
    refunded: int = 0
    max_signed: int = 0

    def check(self, terms: LaneTerms, period_spent: int, period_index: int, cumulative: int, now: int):
        """The contract's `_checkVoucher`: (delta, new_spent, new_index, error-name-or-None)."""
        if now >= terms.valid_until:
            return 0, 0, 0, "LaneExpired"
        if cumulative <= self.claimed:
            return 0, 0, 0, None
        if cumulative > self.deposit:
            return 0, 0, 0, "VoucherExceedsDeposit"
        if cumulative > terms.ceiling:
            return 0, 0, 0, "VoucherExceedsCap"
        delta = cumulative - self.claimed
        if terms.period_length == 0:
            return delta, 0, 0, None
        index = (now // terms.period_length) & 0xFFFF
        spent = (period_spent if index == period_index else 0) + delta
        if spent > terms.period_cap:
            return 0, 0, 0, "PeriodCapExceeded"
        return delta, spent, index, None

    def redeem(self, signer: str, terms: LaneTerms, cumulative: int, now: int, apply: bool = True):
        """The contract's `_applyVoucher` for an authenticated signer: (delta, error-name-or-None)."""
        ident = (signer, terms.pack())
        if not self.closed and ident == self.lane.ident:
            delta, spent, index, err = self.check(terms, self.lane.period_spent, self.lane.period_index,
                                                  cumulative, now)
            if delta and apply:
                self.claimed = cumulative
                self.lane.period_spent, self.lane.period_index = spent, index
            return delta, err
        if ident not in self.retired:
            return 0, ("ChannelIsClosed" if self.closed else "UnknownLane")
        until, lane = self.retired[ident]
        if now >= until:
            return 0, "LaneExpired"
        if self.closed:
            return 0, "ChannelIsClosed"
        delta, spent, index, err = self.check(terms, lane.period_spent, lane.period_index, cumulative, now)
        if delta and apply:
            self.claimed = cumulative
            lane.period_spent, lane.period_index = spent, index
        return delta, err

    def retire_current(self, now: int) -> None:
        self.retired[self.lane.ident] = (now + REDEEM_WINDOW, self.lane)
