"""When a channel's accepted-but-unredeemed money should go on-chain: pure decisions, no I/O.

A channel is due when its unsettled amount reaches the threshold, when its oldest unsettled payment is older
than the interval, or at once when something makes waiting risky (the payer asked to close, the key was
revoked or rotated, a freeze appeared, the key nears expiry). Due channels are settled together in one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DueReason(StrEnum):
    THRESHOLD = "threshold"
    AGE = "age"
    CLOSING = "payer_closing"
    SIGNER_CHANGED = "signer_changed"
    FROZEN = "frozen"
    EXPIRING = "key_expiring"


@dataclass(frozen=True)
class SettlementPolicy:
    threshold: int = 10_000_000  # base units (10 U of a 6-decimal token, the seed's example)
    interval_ms: int = 3_600_000  # settle anything older than this (1 h)
    expiry_margin_s: int = 600  # settle this long before a key expires
    max_batch: int = 100  # channels per transaction

    def __post_init__(self) -> None:
        if self.threshold <= 0 or self.interval_ms <= 0 or self.expiry_margin_s < 0 or not 0 < self.max_batch:
            raise ValueError(f"invalid settlement policy: {self}")


@dataclass(frozen=True)
class ChannelDue:
    """What the scheduler knows of one channel with unsettled money."""

    channel_id: bytes
    unsettled: int
    first_unsettled_at_ms: int
    closing: bool = False
    frozen: bool = False
    signer_changed: bool = False
    valid_until_s: int | None = None


def due_reason(channel: ChannelDue, policy: SettlementPolicy, now_ms: int) -> DueReason | None:
    """Why the channel must be settled now, or None."""
    if channel.unsettled <= 0:
        return None
    if channel.closing:
        return DueReason.CLOSING
    if channel.signer_changed:
        return DueReason.SIGNER_CHANGED
    if channel.frozen:
        return DueReason.FROZEN
    if channel.valid_until_s is not None and now_ms // 1000 >= channel.valid_until_s - policy.expiry_margin_s:
        return DueReason.EXPIRING
    if channel.unsettled >= policy.threshold:
        return DueReason.THRESHOLD
    if now_ms - channel.first_unsettled_at_ms >= policy.interval_ms:
        return DueReason.AGE
    return None


_URGENCY = {DueReason.CLOSING: 0, DueReason.SIGNER_CHANGED: 0, DueReason.FROZEN: 0, DueReason.EXPIRING: 1,
            DueReason.THRESHOLD: 2, DueReason.AGE: 3}


def next_batches(channels: list[ChannelDue], policy: SettlementPolicy, now_ms: int) -> list[list[ChannelDue]]:
    """Due channels grouped into batches of at most `max_batch`, most urgent first."""
    due = [(due_reason(c, policy, now_ms), c) for c in channels]
    ordered = sorted(((r, c) for r, c in due if r is not None),
                     key=lambda rc: (_URGENCY[rc[0]], -rc[1].unsettled, rc[1].channel_id))
    picked = [c for _, c in ordered]
    return [picked[i: i + policy.max_batch] for i in range(0, len(picked), policy.max_batch)]
