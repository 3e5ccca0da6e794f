"""Whether a merchant should accept a voucher now: the off-chain mirror of the contract's rules plus the
policy the chain cannot see (per-payment cap, off-chain period accounting).

Pure: the caller supplies the channel's snapshot (from a cache kept fresh by contract events), the highest
cumulative amount it already accepted, and the time. Used by the relayer's intake and the HTTP 402 gateway.
Amounts are integer base units.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocolbanks.sdk.lane_terms import LaneTerms


class Rejection(StrEnum):
    """Stable, machine-readable reasons; the value is what goes on the wire."""

    UNKNOWN_CHANNEL = "unknown_channel"
    CHANNEL_CLOSED = "channel_closed"
    CHANNEL_CLOSING = "channel_closing"
    CHANNEL_FROZEN = "channel_frozen"
    SIGNER_NOT_AUTHORISED = "signer_not_authorised"
    KEY_EXPIRED = "key_expired"
    EXCEEDS_DEPOSIT = "exceeds_deposit"
    EXCEEDS_TOTAL_CAP = "exceeds_total_cap"
    EXCEEDS_PERIOD_CAP = "exceeds_period_cap"
    EXCEEDS_MAX_PER_PAYMENT = "exceeds_max_per_payment"


@dataclass(frozen=True)
class ChannelSnapshot:
    """What the chain says about a channel, as of the cache's last event."""

    channel_id: bytes
    payer: str
    payee: str
    token: str
    signer: str  # checksummed address of whoever may sign now (payer or session key)
    terms: LaneTerms
    deposit: int
    claimed: int  # redeemed on-chain
    max_per_payment: int = 0  # 0 = no per-payment cap
    salt: bytes = b"\x00" * 32  # with payer, payee and token: the ChannelConfig that payer/guardian calls take
    frozen: bool = False
    closing: bool = False
    closed: bool = False


@dataclass(frozen=True)
class Acceptance:
    """The decision for one voucher."""

    accepted: bool
    payment: int = 0  # what this voucher adds over the highest accepted one
    remaining: int = 0  # what the signer can still authorise on this channel after it
    stale: bool = False  # an older or equal voucher: acknowledged, nothing added
    rejection: Rejection | None = None


@dataclass(frozen=True)
class PeriodUsage:
    """Off-chain period accounting for the current signer: accepted amount within `index`."""

    index: int = -1
    spent: int = 0

    def after(self, terms: LaneTerms, now: int, payment: int) -> PeriodUsage:
        index = now // terms.period_length
        return PeriodUsage(index, (self.spent if index == self.index else 0) + payment)


def evaluate_voucher(
    snapshot: ChannelSnapshot | None,
    *,
    signer: str,  # 0x-address; compared case-insensitively
    epoch: int,
    cumulative: int,
    accepted_cumulative: int,
    period: PeriodUsage,
    now: int,
) -> tuple[Acceptance, PeriodUsage]:
    """Decides on a voucher already authenticated as signed by `signer` for `epoch`; returns the decision and
    the period usage to keep if it is accepted."""
    if snapshot is None:
        return _reject(Rejection.UNKNOWN_CHANNEL), period
    if snapshot.closed:
        return _reject(Rejection.CHANNEL_CLOSED), period
    if snapshot.closing:
        return _reject(Rejection.CHANNEL_CLOSING), period
    if snapshot.frozen:
        return _reject(Rejection.CHANNEL_FROZEN), period
    terms = snapshot.terms
    if signer.lower() != snapshot.signer.lower() or epoch != terms.epoch:
        return _reject(Rejection.SIGNER_NOT_AUTHORISED), period
    if now >= terms.valid_until:
        return _reject(Rejection.KEY_EXPIRED), period
    limit = min(snapshot.deposit, terms.ceiling)
    baseline = max(accepted_cumulative, snapshot.claimed)
    if cumulative <= baseline:
        return Acceptance(True, 0, max(limit - baseline, 0), stale=True), period
    if cumulative > snapshot.deposit:
        return _reject(Rejection.EXCEEDS_DEPOSIT), period
    if cumulative > terms.ceiling:
        return _reject(Rejection.EXCEEDS_TOTAL_CAP), period
    payment = cumulative - baseline
    if snapshot.max_per_payment and payment > snapshot.max_per_payment:
        return _reject(Rejection.EXCEEDS_MAX_PER_PAYMENT), period
    usage = period
    if terms.period_length:
        usage = period.after(terms, now, payment)
        if usage.spent > terms.period_cap:
            return _reject(Rejection.EXCEEDS_PERIOD_CAP), period
    return Acceptance(True, payment, limit - cumulative), usage


def _reject(reason: Rejection) -> Acceptance:
    return Acceptance(False, rejection=reason)
