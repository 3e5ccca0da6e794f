"""The merchant's book of channels: decides on a voucher locally, in the request path, with no chain or relayer call.

A paid request goes through three steps:

1. `reserve(voucher, price)` — recovers the signer, checks the channel's snapshot (from a chain cache kept fresh
   by contract events) with `protocolbanks.sdk.acceptance.evaluate_voucher`, requires the voucher to be exactly
   *accepted cumulative + price* and holds the channel for this request (a second request of the same channel
   gets `pb_channel_busy` until the first one finishes).
2. The handler runs.
3. `commit(reservation)` when it succeeded — the voucher becomes the channel's accepted cumulative and is handed
   to `on_commit` (the relayer forwarder) — or `release(reservation)` when it failed: nothing is charged and the
   payer's next request signs the same cumulative again.

A committed voucher cannot be taken back: the forwarder may already have sent it to the relayer, which redeems
the full cumulative on-chain. So a request that fails *after* its commit (a streamed body that breaks, a response
that cannot be delivered) is turned into a **credit** of its price on the channel (`credit(reservation)`). The
payer, having seen no confirmation, naturally sends the same cumulative again: a voucher equal to the accepted
cumulative is served once per credited price without a new charge. A credit that is never used stays on the book
(`credit_of`) for the merchant to honour off-chain.

Amounts are integer base units. Thread-safe (one lock around in-memory state; signature recovery and the relayer
lookup run outside it). The only blocking call is the lookup of a channel the book does not know yet; asyncio
callers run `await book.aensure_loaded(channel_id)` first.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from protocolbanks.sdk.acceptance import ChannelSnapshot, PeriodUsage, Rejection, evaluate_voucher
from protocolbanks.sdk.keccak import keccak256
from protocolbanks.sdk.signing import SignatureError, recover_signer
from protocolbanks.sdk.typed_data import ChannelDomain, Voucher
from protocolbanks.sdk.x402.wire import (
    CHANNEL_BUSY,
    CUMULATIVE_MISMATCH,
    SENTINEL_HOLD,
    UNKNOWN_CHANNEL_FOR_PAYEE,
    ChannelStateExtra,
    VoucherPayload,
)

log = logging.getLogger("protocolbanks.gateway.book")

INVALID_SIGNATURE = "invalid_signature"
STATE_UNAVAILABLE = "pb_state_unavailable"  # the relayer could not say where an unknown channel stands
CHAIN_UNAVAILABLE = "chain_unavailable"  # the chain view is too old to trust (a freeze could be hidden)

SnapshotSource = Callable[[bytes], ChannelSnapshot | None]
AcceptedLookup = Callable[[bytes], int | None]  # accepted cumulative the relayer holds; None = channel unknown there


def payment_id_of(channel_id: bytes, cumulative: int) -> str:
    """Stable id of a payment (the relayer's IntakeResult.payment_id): a cumulative names one acceptance."""
    return keccak256(channel_id + cumulative.to_bytes(32, "big"))[:16].hex()


class VoucherRefused(Exception):
    """The book does not take this voucher; `code` goes on the wire as the 402's error."""

    def __init__(self, code: str, message: str, *, channel_id: bytes | None = None,
                 accepted: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.channel_id = channel_id
        self.accepted = accepted  # the accepted cumulative, for a corrective 402


@dataclass(frozen=True)
class PaymentReceipt:
    """What one paid request cost and where the channel stands after it."""

    payment_id: str
    channel_id: bytes
    payer: str  # the channel's payer (owner of the deposit)
    amount: int  # charged by this request; 0 when it was served against a credit
    cumulative: int  # the channel's accepted cumulative after this request
    remaining: int  # what the current signer can still authorise on the channel
    units: int = 1

    def channel_state(self) -> ChannelStateExtra:
        return ChannelStateExtra(self.channel_id, self.cumulative, self.remaining)


@dataclass(frozen=True)
class Reservation:
    """A verified voucher holding its channel until the handler's outcome is known."""

    token: int
    voucher: VoucherPayload
    price: int
    base: int  # accepted cumulative when the reservation was made
    receipt: PaymentReceipt
    period: PeriodUsage  # the signer's period usage once committed
    expires_at: float  # monotonic seconds; an abandoned reservation stops blocking the channel after this
    credited: bool = False  # a replayed voucher served against a credit


@dataclass
class _Entry:
    accepted: int
    period: PeriodUsage = field(default_factory=PeriodUsage)
    units: int = 0
    credit: int = 0
    reservation: Reservation | None = None


class GatewayChannelBook:
    """Accepted cumulative, period usage, credits and reservations of every channel paying this merchant."""

    def __init__(self, domain: ChannelDomain, snapshots: SnapshotSource, *, payee: str, token: str,
                 accepted_lookup: AcceptedLookup | None = None,
                 on_commit: Callable[[VoucherPayload], None] | None = None,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 reservation_ttl: float = 60.0, chain_lag: Callable[[], float | None] | None = None,
                 max_chain_lag_s: float = 60.0) -> None:
        self.domain = domain
        self.snapshots = snapshots
        self.payee = payee
        self.token = token
        self.accepted_lookup = accepted_lookup
        self.on_commit = on_commit
        self.clock = clock
        self.monotonic = monotonic
        self.reservation_ttl = reservation_ttl
        self.chain_lag = chain_lag  # seconds since the snapshots were refreshed (None: never); see ChainFollower
        self.max_chain_lag_s = max_chain_lag_s
        self._payee = payee.lower()
        self._token = token.lower()
        self._entries: dict[bytes, _Entry] = {}
        self._holds: dict[bytes, tuple[float, str]] = {}  # channel -> (monotonic end of the hold, why)
        self._lock = threading.Lock()
        self._tokens = itertools.count(1)

    # ------------------------------------------------------------------ loading
    def is_known(self, channel_id: bytes) -> bool:
        with self._lock:
            return channel_id in self._entries

    def ensure_loaded(self, channel_id: bytes) -> None:
        """Starts a channel the book does not know from the relayer's accepted cumulative (0 if the relayer does
        not know it either). Blocking; raises VoucherRefused(pb_state_unavailable) if the lookup fails."""
        if self.is_known(channel_id):
            return
        accepted = 0
        if self.accepted_lookup is not None:
            try:
                accepted = self.accepted_lookup(channel_id) or 0
            except Exception as exc:
                log.warning("accepted cumulative of channel 0x%s unavailable: %s", channel_id.hex(), exc,
                            extra={"channel": "0x" + channel_id.hex()})
                raise VoucherRefused(STATE_UNAVAILABLE, f"channel state unavailable: {exc}",
                                     channel_id=channel_id) from exc
        with self._lock:
            if channel_id not in self._entries:
                self._entries[channel_id] = _Entry(accepted)
                log.info("channel 0x%s starts at accepted cumulative %s", channel_id.hex(), accepted,
                         extra={"channel": "0x" + channel_id.hex(), "accepted": accepted})

    async def aensure_loaded(self, channel_id: bytes) -> None:
        """`ensure_loaded` for asyncio callers: the lookup runs in a worker thread."""
        if not self.is_known(channel_id):
            await asyncio.to_thread(self.ensure_loaded, channel_id)

    # ------------------------------------------------------------------ reading
    def accepted(self, channel_id: bytes) -> int:
        """The channel's accepted cumulative: what this book committed, or what was redeemed on-chain if more."""
        self.ensure_loaded(channel_id)
        snapshot = self.snapshots(channel_id)
        with self._lock:
            return self._base(self._entries[channel_id], snapshot)

    def state(self, channel_id: bytes) -> ChannelStateExtra:
        """Where the channel stands for the payer (corrective 402s)."""
        snapshot = self.snapshots(channel_id)
        base = self.accepted(channel_id)
        remaining = None if snapshot is None else max(min(snapshot.deposit, snapshot.terms.ceiling) - base, 0)
        return ChannelStateExtra(channel_id, base, remaining)

    def credit_of(self, channel_id: bytes) -> int:
        with self._lock:
            entry = self._entries.get(channel_id)
            return 0 if entry is None else entry.credit

    def units_of(self, channel_id: bytes) -> int:
        """Units this gateway charged on the channel (the payer's volume for tiered prices)."""
        with self._lock:
            entry = self._entries.get(channel_id)
            return 0 if entry is None else entry.units

    @staticmethod
    def _base(entry: _Entry, snapshot: ChannelSnapshot | None) -> int:
        return max(entry.accepted, snapshot.claimed if snapshot is not None else 0)

    def hold(self, channel_id: bytes, reason: str, seconds: float) -> None:
        """Refuses the channel's payments for `seconds`: the relayer's Sentinel refused its vouchers, and serving
        on until the guardian's freeze reaches the chain view would be serving work nobody pays for. A later
        voucher after the hold is forwarded again; if the relayer still refuses it, the channel is held again."""
        with self._lock:
            self._holds[channel_id] = (self.monotonic() + seconds, reason)
        log.warning("channel 0x%s held for %s s: the relayer refused its vouchers (%s)", channel_id.hex(), seconds,
                    reason, extra={"channel": "0x" + channel_id.hex(), "reason": reason})

    # ------------------------------------------------------------------ deciding
    def reserve(self, voucher: VoucherPayload, price: int, *, units: int = 1) -> Reservation:
        """Checks the voucher against accepted + price and the chain's rules, and holds the channel.
        Raises VoucherRefused with the wire code."""
        if isinstance(price, bool) or not isinstance(price, int) or price <= 0:
            raise ValueError(f"price must be a positive int of base units, got {price!r}")
        cid = voucher.channel_id
        try:
            digest = Voucher(cid, voucher.terms.epoch, voucher.cumulative).digest(self.domain)
            signer = "0x" + recover_signer(digest, voucher.signature).hex()
        except (SignatureError, ValueError) as exc:
            raise VoucherRefused(INVALID_SIGNATURE, f"voucher signature: {exc}", channel_id=cid) from exc
        if self.chain_lag is not None:
            lag = self.chain_lag()
            if lag is None or lag > self.max_chain_lag_s:
                raise VoucherRefused(CHAIN_UNAVAILABLE, f"chain view is {lag} s old", channel_id=cid)
        snapshot = self.snapshots(cid)
        if snapshot is None:
            raise VoucherRefused(Rejection.UNKNOWN_CHANNEL.value, "channel not found on-chain", channel_id=cid)
        if snapshot.payee.lower() != self._payee or snapshot.token.lower() != self._token:
            raise VoucherRefused(UNKNOWN_CHANNEL_FOR_PAYEE, "the channel pays another merchant or token",
                                 channel_id=cid)
        self.ensure_loaded(cid)
        now, mono = int(self.clock()), self.monotonic()
        with self._lock:
            until, why = self._holds.get(cid, (0.0, ""))
            if until > mono:
                raise VoucherRefused(SENTINEL_HOLD, f"the relayer refused this channel's vouchers ({why}); payments "
                                     f"paused for {until - mono:.0f} s", channel_id=cid)
            entry = self._entries[cid]
            held = entry.reservation
            if held is not None and held.expires_at <= mono:
                log.warning("reservation %s on channel 0x%s abandoned: released", held.token, cid.hex(),
                            extra={"channel": "0x" + cid.hex(), "cumulative": held.voucher.cumulative})
                entry.reservation = held = None
            base = self._base(entry, snapshot)
            if held is not None:
                raise VoucherRefused(CHANNEL_BUSY, "another request of this channel is being served",
                                     channel_id=cid, accepted=base)
            credited = voucher.cumulative == base and entry.credit >= price
            if not credited and voucher.cumulative != base + price:
                raise VoucherRefused(CUMULATIVE_MISMATCH,
                                     f"voucher must be accepted {base} + price {price}, got {voucher.cumulative}",
                                     channel_id=cid, accepted=base)
            decision, usage = evaluate_voucher(snapshot, signer=signer, epoch=voucher.terms.epoch,
                                               cumulative=voucher.cumulative, accepted_cumulative=base,
                                               period=entry.period, now=now)
            if not decision.accepted or decision.stale != credited:
                reason = decision.rejection.value if decision.rejection else CUMULATIVE_MISMATCH
                raise VoucherRefused(reason, f"voucher refused: {reason}", channel_id=cid, accepted=base)
            if voucher.terms != snapshot.terms:  # the relayer could not redeem it under the channel's lane
                raise VoucherRefused(Rejection.SIGNER_NOT_AUTHORISED.value,
                                     "voucher names lane terms the channel does not have", channel_id=cid)
            receipt = PaymentReceipt(payment_id_of(cid, voucher.cumulative), cid, snapshot.payer,
                                     0 if credited else price, voucher.cumulative, decision.remaining, units)
            reservation = Reservation(next(self._tokens), voucher, price, base, receipt, usage,
                                      mono + self.reservation_ttl, credited)
            entry.reservation = reservation
        return reservation

    def commit(self, reservation: Reservation) -> PaymentReceipt:
        """The handler succeeded: the voucher is the channel's accepted cumulative and goes to `on_commit`."""
        cid = reservation.voucher.channel_id
        with self._lock:
            entry = self._entries[cid]
            held = entry.reservation
            if held is not None and held.token != reservation.token:
                raise VoucherRefused(CHANNEL_BUSY, "reservation was taken over after it expired", channel_id=cid,
                                     accepted=entry.accepted)
            if held is None and entry.accepted != reservation.base:
                raise VoucherRefused(CUMULATIVE_MISMATCH, "channel moved on after the reservation expired",
                                     channel_id=cid, accepted=entry.accepted)
            entry.reservation = None
            entry.accepted = max(entry.accepted, reservation.voucher.cumulative)
            entry.units += reservation.receipt.units
            if reservation.credited:
                entry.credit -= reservation.price
            else:
                entry.period = reservation.period
        log.debug("payment %s committed on channel 0x%s: cumulative %s (+%s)", reservation.receipt.payment_id,
                 cid.hex(), reservation.voucher.cumulative, reservation.receipt.amount,
                 extra={"channel": "0x" + cid.hex(), "cumulative": reservation.voucher.cumulative,
                        "amount": reservation.receipt.amount, "payment_id": reservation.receipt.payment_id})
        if not reservation.credited and self.on_commit is not None:
            self.on_commit(reservation.voucher)
        return reservation.receipt

    def release(self, reservation: Reservation) -> bool:
        """The handler failed before commit: nothing is charged. False if the reservation no longer held."""
        cid = reservation.voucher.channel_id
        with self._lock:
            entry = self._entries.get(cid)
            if entry is None or entry.reservation is None or entry.reservation.token != reservation.token:
                return False
            entry.reservation = None
        log.debug("reservation on channel 0x%s released: not charged", cid.hex(),
                 extra={"channel": "0x" + cid.hex(), "cumulative": reservation.voucher.cumulative})
        return True

    def credit(self, reservation: Reservation) -> int:
        """A committed request failed afterwards: its price becomes a credit on the channel (see the module doc).
        Returns the channel's credit."""
        cid = reservation.voucher.channel_id
        with self._lock:
            entry = self._entries[cid]
            entry.credit += reservation.price
            credit = entry.credit
        log.warning("payment %s failed after commit: %s credited to channel 0x%s", reservation.receipt.payment_id,
                    reservation.price, cid.hex(),
                    extra={"channel": "0x" + cid.hex(), "credit": credit, "payment_id": reservation.receipt.payment_id})
        return credit


__all__ = ["AcceptedLookup", "GatewayChannelBook", "PaymentReceipt", "Reservation", "SnapshotSource",
           "VoucherRefused", "payment_id_of"]
