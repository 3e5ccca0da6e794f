"""The payer's x402 scheme client for `pb-channel`: turns a merchant's requirement into a signed cumulative
voucher, and keeps the channel in step with what the merchant confirms.

`create_payment_payload(requirements)`:
  1. the channel for (payTo, asset, verifyingContract) on the requirement's chain — one channel per merchant;
  2. the budget guard (amount, merchant, host, published rate, spend windows) — a refusal signs nothing;
  3. cumulative = charged + amount, signed with the channel's current signer (the session key);
  4. the ledger records it (persisted) before the voucher leaves.
`scheme_hooks["on_payment_response"]`:
  - PAYMENT-RESPONSE: the merchant's `channelState.chargedCumulativeAmount` becomes the new base (a claim above the
    highest cumulative ever signed is not believed);
  - corrective 402 (`pb_cumulative_mismatch` with `channelState`): resync to the merchant's base only when it is
    <= the highest cumulative ever signed (then the transport retries once), else `ResyncRefused`.

Register it with `register_with(x402Client() or x402ClientSync())`: that also opts our token in to the library's
spend controls, which otherwise reject every asset the library does not know.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from eth_account.signers.local import LocalAccount
from protocolbanks.sdk.lane_terms import LaneTerms
from protocolbanks.sdk.payer.budget import BudgetGuard, PaymentAsk
from protocolbanks.sdk.payer.errors import BudgetExceeded, PaymentRefused, RefusalReason
from protocolbanks.sdk.payer.ledger import ChannelLedger
from protocolbanks.sdk.signing import CompactSignature
from protocolbanks.sdk.typed_data import ChannelDomain, Voucher
from protocolbanks.sdk.x402.wire import (
    CUMULATIVE_MISMATCH,
    SCHEME,
    ChannelStateExtra,
    VoucherPayload,
    WireError,
    domain_of,
)
from x402 import PaymentRequirements, RecoveredResponseResult, SpendControls, x402Client, x402ClientSync
from x402.interfaces import PaymentPayloadContext
from x402.schemas import PaymentResponseContext

log = logging.getLogger(__name__)

ClientT = TypeVar("ClientT", x402Client, x402ClientSync)


class VoucherSigner(Protocol):
    """Whoever currently signs the channel's vouchers: a SessionKey, or the payer itself (AccountSigner)."""

    @property
    def address(self) -> str: ...

    def sign_voucher(self, voucher: Voucher, domain: ChannelDomain) -> CompactSignature: ...


class AccountSigner:
    """The payer's own key as the channel signer (no session key granted)."""

    def __init__(self, account: LocalAccount) -> None:
        self._account = account

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign_voucher(self, voucher: Voucher, domain: ChannelDomain) -> CompactSignature:
        return voucher.sign(domain, bytes(self._account.key))

    def __repr__(self) -> str:
        return f"AccountSigner({self.address})"


@dataclass(frozen=True)
class ChannelBinding:
    """What the payer needs to pay one merchant through one channel."""

    channel_id: bytes
    pay_to: str
    asset: str
    domain: ChannelDomain
    terms: LaneTerms  # the current lane's terms (they change on grant / rotate / revoke)
    signer: VoucherSigner

    @property
    def key(self) -> tuple[int, str, str, str]:
        return (self.domain.chain_id, self.pay_to.lower(), self.asset.lower(),
                self.domain.verifying_contract.lower())


@dataclass(frozen=True)
class RequestContext:
    """The request being paid, as the client sent it (the merchant cannot change it)."""

    url: str
    host: str | None
    expected_units: int | None = None


current_request: ContextVar[RequestContext | None] = ContextVar("pb_current_request", default=None)


@contextmanager
def paying_for(url: str, host: str | None, expected_units: int | None = None) -> Iterator[None]:
    """Tells the scheme which request it pays (for the host allow-list and metered units)."""
    token = current_request.set(RequestContext(url, host, expected_units))
    try:
        yield
    finally:
        current_request.reset(token)


@dataclass(frozen=True)
class PaymentConfirmation:
    """A merchant's confirmation of a payment (from PAYMENT-RESPONSE)."""

    channel_id: bytes
    charged_cumulative: int
    amount: int
    units: int
    payment_id: str | None
    merchant_remaining: int | None  # the merchant's view of the channel's remaining balance (informative)


class PbChannelClientScheme:
    """x402 `SchemeNetworkClient` for pb-channel. Thread-safe; one instance may serve sync and async clients."""

    scheme = SCHEME

    def __init__(self, ledger: ChannelLedger, guard: BudgetGuard, bindings: Iterable[ChannelBinding] = (), *,
                 on_confirmed: Callable[[PaymentConfirmation], None] | None = None) -> None:
        self.ledger = ledger
        self.guard = guard
        self.on_confirmed = on_confirmed
        self._bindings: dict[tuple[int, str, str, str], ChannelBinding] = {}
        self._pending_units: dict[tuple[bytes, int], int] = {}
        self._lock = threading.Lock()
        self.scheme_hooks: dict[str, Callable[[PaymentResponseContext], RecoveredResponseResult | None]] = {
            "on_payment_response": self._on_payment_response}
        for binding in bindings:
            self.bind(binding)

    # ------------------------------------------------------------------ channels

    def bind(self, binding: ChannelBinding) -> None:
        """Adds or replaces (new terms / new signer) the channel used for a merchant."""
        with self._lock:
            self._bindings[binding.key] = binding

    def unbind(self, channel_id: bytes) -> None:
        with self._lock:
            self._bindings = {k: b for k, b in self._bindings.items() if b.channel_id != channel_id}

    def bindings(self) -> list[ChannelBinding]:
        with self._lock:
            return list(self._bindings.values())

    def binding_for(self, requirements: PaymentRequirements) -> ChannelBinding:
        amount = int(requirements.amount) if requirements.amount.isdigit() else None
        try:
            domain = domain_of(requirements.network, requirements.extra or {})
        except WireError as exc:
            raise BudgetExceeded(RefusalReason.INVALID_REQUIREMENT, str(exc), amount=amount,
                                 recipient=requirements.pay_to) from exc
        key = (domain.chain_id, requirements.pay_to.lower(), requirements.asset.lower(),
               domain.verifying_contract.lower())
        with self._lock:
            binding = self._bindings.get(key)
        if binding is None:
            raise BudgetExceeded(
                RefusalReason.NO_CHANNEL_FOR_PAYEE,
                f"no channel to {requirements.pay_to} in {requirements.asset} on {requirements.network}",
                amount=amount, recipient=requirements.pay_to)
        return binding

    # ------------------------------------------------------------------ x402 client plumbing

    def find_default_asset(self, asset: str, network: str) -> None:
        """Our tokens are never the library's "default assets" (no USD conversion, no $1 default cap)."""
        return None

    @staticmethod
    def spend_controls() -> SpendControls:
        """The library's spend controls reject every token it does not know (ours included) unless opted in.
        `allowed_assets: True` lets pb-channel requirements reach this scheme, where a missing channel and every
        amount are refused with a reason (BudgetExceeded); the library's own $1 default cap still applies to the
        assets it knows, for any other scheme registered on the same client."""
        return {"allowed_assets": True}

    def register_with(self, client: ClientT) -> ClientT:
        client.register("eip155:*", self)
        client.set_spend_controls(self.spend_controls())
        return client

    # ------------------------------------------------------------------ paying

    def create_payment_payload(self, requirements: PaymentRequirements,
                               context: PaymentPayloadContext | None = None) -> dict[str, Any]:
        binding = self.binding_for(requirements)
        amount_text = requirements.amount
        if not amount_text.isdigit():
            raise BudgetExceeded(RefusalReason.INVALID_REQUIREMENT, f"amount {amount_text!r} is not base units")
        request = current_request.get()
        rate = (requirements.extra or {}).get("rate")
        try:
            return self.sign(binding, PaymentAsk(
                amount=int(amount_text), pay_to=requirements.pay_to, host=request.host if request else None,
                rate=rate if isinstance(rate, dict) else None, units=_units_of(requirements.extra or {}, request)))
        except PaymentRefused as exc:
            exc.amount, exc.recipient = int(amount_text), requirements.pay_to
            raise

    def sign(self, binding: ChannelBinding, ask: PaymentAsk) -> dict[str, Any]:
        """Guard, sign `charged + ask.amount`, record (persisted) and return the voucher payload. The guard
        sees the payer's confirmed volume on the channel; what it counts is the rise of the signed maximum."""
        with self._lock:  # one voucher at a time: the base must not move between reading and recording
            cid = binding.channel_id
            entry = self.ledger.entry(cid)
            cumulative = entry.charged + ask.amount
            self.guard.authorize(replace(ask, volume=entry.units), exposure=cumulative - entry.signed_max)
            voucher = Voucher(cid, binding.terms.epoch, cumulative)
            payload = VoucherPayload(cid, cumulative, binding.terms,
                                     binding.signer.sign_voucher(voucher, binding.domain)).to_dict()
            self.ledger.record_signed(cid, cumulative, payload)
            self._pending_units[(cid, cumulative)] = ask.units
        log.debug("voucher signed", extra={"channel": "0x" + cid.hex(), "cumulative": cumulative,
                                           "amount": ask.amount, "pay_to": ask.pay_to})
        return payload

    # ------------------------------------------------------------------ merchant answers

    def _on_payment_response(self, ctx: PaymentResponseContext) -> RecoveredResponseResult | None:
        if ctx.requirements.scheme != SCHEME:
            return None
        try:
            voucher = VoucherPayload.from_dict(ctx.payment_payload.payload)
        except WireError:
            return None
        settle = ctx.settle_response
        if settle is not None:
            if settle.success:
                self._confirm(voucher, settle.amount, settle.extra or {})
            return None
        required = ctx.payment_required
        if required is None or required.error != CUMULATIVE_MISMATCH:
            return None
        base = _merchant_base(required.accepts, voucher.channel_id)
        if base is None:
            return None
        self.ledger.resync(voucher.channel_id, base)  # ResyncRefused when above the highest signed
        return RecoveredResponseResult()

    def _confirm(self, voucher: VoucherPayload, amount_text: str | None, extra: dict[str, Any]) -> None:
        state: ChannelStateExtra | None = None
        if isinstance(extra.get("channelState"), dict):
            try:
                state = ChannelStateExtra.from_dict(extra["channelState"])
            except WireError:
                state = None
        charged_amount = extra.get("chargedAmount", amount_text)
        payment_id = extra.get("paymentId")
        self.confirm(voucher, state,
                     amount=int(charged_amount) if isinstance(charged_amount, str) and charged_amount.isdigit() else 0,
                     payment_id=payment_id if isinstance(payment_id, str) else None)

    def confirm(self, voucher: VoucherPayload, state: ChannelStateExtra | None, *, amount: int,
                payment_id: str | None) -> PaymentConfirmation:
        """The merchant accepted `voucher`: its `channelState` (if any, and not above anything signed) becomes
        the channel's base, else the voucher's own cumulative."""
        cid = voucher.channel_id
        charged, remaining = voucher.cumulative, None
        if state is not None and state.channel_id == cid:
            remaining = state.remaining
            if state.charged_cumulative <= self.ledger.entry(cid).signed_max:
                charged = state.charged_cumulative
            else:
                log.warning("merchant reports a charge above anything signed; not believed",
                            extra={"channel": "0x" + cid.hex(), "claimed": state.charged_cumulative,
                                   "voucher": voucher.cumulative})
        with self._lock:
            units = self._pending_units.pop((cid, voucher.cumulative), 0)
            for stale in [key for key in self._pending_units if key[0] == cid and key[1] <= charged]:
                del self._pending_units[stale]  # vouchers the merchant refused or superseded
        self.ledger.confirm(cid, charged, units=units)
        confirmation = PaymentConfirmation(cid, charged, amount, units, payment_id, remaining)
        if self.on_confirmed is not None:
            self.on_confirmed(confirmation)
        return confirmation


def _units_of(extra: dict[str, Any], request: RequestContext | None) -> int:
    """Units a requirement prices (extra["units"], default 1); must equal what the client measured, if it did."""
    raw = extra.get("units", 1)
    if isinstance(raw, str) and raw.isdigit():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise BudgetExceeded(RefusalReason.INVALID_REQUIREMENT, f"units {raw!r} is not a positive int")
    if request is not None and request.expected_units is not None and raw != request.expected_units:
        raise BudgetExceeded(RefusalReason.INVALID_REQUIREMENT,
                             f"merchant prices {raw} units, the client measured {request.expected_units}")
    return raw


def _merchant_base(accepts: Iterable[Any], channel_id: bytes) -> int | None:
    """The base a corrective 402 states for our channel (`chargedCumulativeAmount`, or `acceptedCumulative`)."""
    for accept in accepts:
        state = (getattr(accept, "extra", None) or {}).get("channelState")
        if getattr(accept, "scheme", None) != SCHEME or not isinstance(state, dict):
            continue
        if str(state.get("channelId", "")).lower() != "0x" + channel_id.hex():
            continue
        raw = state.get("chargedCumulativeAmount", state.get("acceptedCumulative"))
        if isinstance(raw, str) and raw.isdigit():
            return int(raw)
    return None
