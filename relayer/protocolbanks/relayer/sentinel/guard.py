"""The Sentinel as the intake sees it: per key (channel + grant epoch), hard rules then the spike detector; a key
that trips is refused from then on and reported once through `on_trip` (which freezes it on-chain and notifies
the payer — I/O lives there, not here)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from protocolbanks.relayer.sentinel.hard_rules import HardLimits, HardRuleBook
from protocolbanks.relayer.sentinel.spike_detector import SpikeDetector, SpikeSettings
from protocolbanks.sdk.acceptance import ChannelSnapshot

SPIKE = "sentinel_spike"
TRIPPED = "sentinel_key_tripped"


@dataclass(frozen=True)
class SentinelTrip:
    """A key stopped by the Sentinel: the rule, and what was seen."""

    channel_id: bytes
    payer: str
    signer: str
    epoch: int
    reason: str
    payment: int
    at_ms: int
    detail: dict[str, int]
    config: tuple[str, str, str, bytes] = ("", "", "", b"")  # ChannelConfig(payer, payee, token, salt)


@dataclass
class SentinelPolicy:
    """Limits for every key, with overrides per payer (lower-case address)."""

    limits: HardLimits = field(default_factory=HardLimits)
    spike: SpikeSettings | None = field(default_factory=SpikeSettings)
    per_payer: Mapping[str, HardLimits] = field(default_factory=dict)

    def limits_for(self, payer: str) -> HardLimits:
        return self.per_payer.get(payer.lower(), self.limits)


class SentinelGuard:
    """Callable as the intake's `sentinel`: returns a reason code to refuse, or None to let the payment pass."""

    def __init__(self, policy: SentinelPolicy, on_trip: Callable[[SentinelTrip], None] | None = None) -> None:
        self.policy = policy
        self.on_trip = on_trip
        self._books: dict[tuple[bytes, int], HardRuleBook] = {}
        self._curves: dict[tuple[bytes, int], SpikeDetector] = {}
        self._tripped: set[tuple[bytes, int]] = set()

    def is_tripped(self, channel_id: bytes, epoch: int) -> bool:
        return (channel_id, epoch) in self._tripped

    def __call__(self, snapshot: ChannelSnapshot, signer: str, payment: int, remaining: int,
                 now_ms: int) -> str | None:
        key = (snapshot.channel_id, snapshot.terms.epoch)
        if key in self._tripped:
            return TRIPPED
        book = self._books.get(key)
        if book is None:
            book = self._books[key] = HardRuleBook(self.policy.limits_for(snapshot.payer))
        violation = book.check(payment, now_ms, remaining)
        if violation is not None:
            return self._trip(snapshot, signer, violation.value, payment, now_ms,
                              {"spent_last_minute": book.spent_last_minute, "spent_last_hour": book.spent_last_hour})
        if self.policy.spike is not None:
            curve = self._curves.get(key)
            if curve is None:
                curve = self._curves[key] = SpikeDetector(self.policy.spike)
            verdict = curve.observe(payment, now_ms)
            if verdict.tripped:
                return self._trip(snapshot, signer, SPIKE, payment, now_ms,
                                  {"short_rate_per_s": verdict.short_rate_per_s,
                                   "baseline_per_s": verdict.baseline_per_s})
        book.record(payment, now_ms)
        return None

    def _trip(self, snapshot: ChannelSnapshot, signer: str, reason: str, payment: int, now_ms: int,
              detail: dict[str, int]) -> str:
        key = (snapshot.channel_id, snapshot.terms.epoch)
        self._tripped.add(key)
        if self.on_trip is not None:
            self.on_trip(SentinelTrip(snapshot.channel_id, snapshot.payer, signer, snapshot.terms.epoch, reason,
                                      payment, now_ms, detail,
                                      (snapshot.payer, snapshot.payee, snapshot.token, snapshot.salt)))
        return reason

    def lift(self, channel_id: bytes, epoch: int) -> None:
        """The payer confirmed the key (human in the loop): accept its vouchers again, with fresh windows."""
        key = (channel_id, epoch)
        self._tripped.discard(key)
        self._books.pop(key, None)
        self._curves.pop(key, None)

    def mark_tripped(self, channel_id: bytes, epoch: int) -> None:
        """A trip seen elsewhere (another worker, or before a restart): refuse the key here too."""
        self._tripped.add((channel_id, epoch))

    def tripped_epochs(self, channel_id: bytes) -> list[int]:
        return sorted(epoch for channel, epoch in self._tripped if channel == channel_id)

    def lift_channel(self, channel_id: bytes) -> list[int]:
        """The payer lifted a freeze on-chain: every tripped key of the channel is accepted again."""
        epochs = self.tripped_epochs(channel_id)
        for epoch in epochs:
            self.lift(channel_id, epoch)
        return epochs
