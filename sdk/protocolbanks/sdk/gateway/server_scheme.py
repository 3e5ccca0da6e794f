"""`pb-channel` in the x402 library: the resource-server scheme (local verify, local "settle") and an in-process
facilitator scheme.

`PbChannelServerScheme` plugs into `x402ResourceServer` / `x402ResourceServerSync.register(network, scheme)`:
* `parse_price` takes an `AssetAmount`, `{"amount", "asset"}`, an int of base units or a Decimal / decimal string
  of tokens (floats refused) and answers in the merchant's token;
* `enhance_payment_requirements` adds the channels contract's EIP-712 domain (`requirement_extra`);
* `before_verify` reserves the voucher in the `GatewayChannelBook` and returns `SkipVerifyResult` — or
  `AbortResult(code)` (the code becomes the 402's `error`); the facilitator is never called in the request path;
* `before_settle` commits the reservation (the book hands the voucher to the relayer forwarder) and returns
  `SkipSettleResult` whose `extra` carries `paymentId`, `chargedAmount`, `units` and `channelState`;
* `on_verified_payment_canceled` (the handler threw or answered >= 400) releases the reservation: not charged;
* `enrich_payment_required_response` adds `channelState` (what the merchant accepted) to a corrective 402
  (`pb_cumulative_mismatch`, `pb_channel_busy`), so the payer can resync.

The library still needs a facilitator that lists (pb-channel, network) for `initialize()`:
`PbChannelFacilitatorScheme` in an in-process `x402Facilitator[Sync]` does, and verifies/settles through the same
book if it is ever called.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from protocolbanks.sdk.gateway.channel_book import (
    GatewayChannelBook,
    PaymentReceipt,
    Reservation,
    VoucherRefused,
)
from protocolbanks.sdk.gateway.prices import to_amount
from protocolbanks.sdk.x402.wire import (
    CHANNEL_BUSY,
    CUMULATIVE_MISMATCH,
    SCHEME,
    ChannelStateExtra,
    VoucherPayload,
    WireError,
    requirement_extra,
)
from x402 import (
    AbortResult,
    AssetAmount,
    PaymentPayload,
    PaymentRequirements,
    SettleResponse,
    SkipSettleResult,
    SkipVerifyResult,
    SupportedKind,
    VerifyResponse,
)
from x402.interfaces import FacilitatorContext, PaymentFlowConfig, SchemePaymentRequiredContext
from x402.payment_flow import AUTHORIZATION_PAYMENT_FLOW
from x402.schemas.hooks import SettleContext, VerifiedPaymentCanceledContext, VerifyContext

log = logging.getLogger("protocolbanks.gateway.scheme")

INVALID_AMOUNT = "pb_invalid_amount"
NO_RESERVATION = "pb_no_reservation"
CORRECTIVE_ERRORS = frozenset({CUMULATIVE_MISMATCH, CHANNEL_BUSY})


def units_of(extra: Mapping[str, Any] | None) -> int:
    """Units a requirement prices (`extra["units"]`, default 1)."""
    raw = (extra or {}).get("units", 1)
    if isinstance(raw, str) and raw.isdigit():
        raw = int(raw)
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1 else 1


def settle_response_of(receipt: PaymentReceipt, network: str) -> SettleResponse:
    """The x402 settle response (PAYMENT-RESPONSE) of a committed payment."""
    return SettleResponse(success=True, transaction="", network=network, payer=receipt.payer,
                          amount=str(receipt.amount),
                          extra={"paymentId": receipt.payment_id, "chargedAmount": str(receipt.amount),
                                 "units": receipt.units, "channelState": receipt.channel_state().to_dict()})


def receipt_from_settle(settle: SettleResponse) -> PaymentReceipt | None:
    """The receipt back from a pb-channel settle response (None if it is not one)."""
    extra = settle.extra or {}
    try:
        state = ChannelStateExtra.from_dict(extra.get("channelState"))
        amount = int(str(extra.get("chargedAmount", settle.amount)))
    except (WireError, ValueError):
        return None
    return PaymentReceipt(str(extra.get("paymentId", "")), state.channel_id, settle.payer or "", amount,
                          state.charged_cumulative, state.remaining or 0, units_of(extra))


def corrective_state(state: ChannelStateExtra) -> dict[str, Any]:
    """`channelState` of a corrective 402: the merchant's accepted cumulative under both names payers read."""
    body = state.to_dict()
    body["acceptedCumulative"] = str(state.charged_cumulative)
    return body


def _voucher_of(payload: Any) -> VoucherPayload:
    return VoucherPayload.from_dict(getattr(payload, "payload", None))


class PbChannelServerScheme:
    """SchemeNetworkServer for `pb-channel`, with the lifecycle hooks the library finds by name."""

    scheme = SCHEME
    default_asset_transfer_method = "default"  # SDK sentinel: no assetTransferMethod on the wire
    payment_flows: Mapping[str, PaymentFlowConfig] = {"default": AUTHORIZATION_PAYMENT_FLOW}

    def __init__(self, book: GatewayChannelBook, *, decimals: int = 6) -> None:
        self.book = book
        self.asset = book.token
        self.decimals = decimals
        self._reserved: dict[int, tuple[Any, Reservation]] = {}  # id(payload) -> (payload, its reservation)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ SchemeNetworkServer
    def parse_price(self, price: Any, network: str) -> AssetAmount:
        if isinstance(price, AssetAmount):
            amount, asset, extra = price.amount, price.asset, price.extra
        elif isinstance(price, dict):
            amount, asset, extra = str(price.get("amount")), str(price.get("asset", self.asset)), price.get("extra")
        else:
            amount, asset, extra = str(to_amount(price, decimals=self.decimals)), self.asset, None
        if not amount.isdigit():
            raise ValueError(f"pb-channel amounts are integers of base units, got {amount!r}")
        return AssetAmount(amount=amount, asset=asset, extra=extra)

    def enhance_payment_requirements(self, requirements: PaymentRequirements, supported_kind: SupportedKind,
                                     extensions: list[str]) -> PaymentRequirements:
        requirements.extra = {**(requirements.extra or {}), **requirement_extra(self.book.domain)}
        return requirements

    # ------------------------------------------------------------------ hooks
    def before_verify(self, ctx: VerifyContext) -> AbortResult | SkipVerifyResult:
        try:
            voucher = _voucher_of(ctx.payment_payload)
        except WireError as exc:
            return AbortResult(reason=exc.code, message=str(exc))
        try:
            reservation = self.book.reserve(voucher, int(ctx.requirements.get_amount()),
                                            units=units_of(ctx.requirements.get_extra()))
        except VoucherRefused as refused:
            return AbortResult(reason=refused.code, message=str(refused))
        except ValueError as exc:
            return AbortResult(reason=INVALID_AMOUNT, message=str(exc))
        self._hold(ctx.payment_payload, reservation)
        return SkipVerifyResult(result=VerifyResponse(is_valid=True, payer=reservation.receipt.payer))

    def before_settle(self, ctx: SettleContext) -> AbortResult | SkipSettleResult:
        reservation = self._take(ctx.payment_payload)
        if reservation is None:
            return AbortResult(reason=NO_RESERVATION, message="settle without a verified reservation")
        try:
            receipt = self.book.commit(reservation)
        except VoucherRefused as refused:
            return AbortResult(reason=refused.code, message=str(refused))
        return SkipSettleResult(result=settle_response_of(receipt, ctx.requirements.network))

    def on_verified_payment_canceled(self, ctx: VerifiedPaymentCanceledContext) -> None:
        reservation = self._take(ctx.payment_payload)
        if reservation is not None:
            self.book.release(reservation)

    def enrich_payment_required_response(self, ctx: SchemePaymentRequiredContext) -> list[PaymentRequirements] | None:
        if ctx.error not in CORRECTIVE_ERRORS or ctx.payment_payload is None:
            return None
        try:
            state = corrective_state(self.book.state(_voucher_of(ctx.payment_payload).channel_id))
        except (WireError, VoucherRefused):
            return None
        for requirement in ctx.requirements:
            if requirement.scheme == SCHEME:
                requirement.extra = {**(requirement.extra or {}), "channelState": state}
        return ctx.requirements

    # ------------------------------------------------------------------ reservations by request
    def reservation_for(self, payload: Any) -> Reservation | None:
        """The reservation `before_verify` made for this payload (until it is settled or canceled)."""
        with self._lock:
            held = self._reserved.get(id(payload))
        return held[1] if held is not None and held[0] is payload else None

    def _hold(self, payload: Any, reservation: Reservation) -> None:
        with self._lock:
            if len(self._reserved) > 256:  # drop what abandoned requests left behind
                now = self.book.monotonic()
                self._reserved = {k: v for k, v in self._reserved.items() if v[1].expires_at > now}
            self._reserved[id(payload)] = (payload, reservation)

    def _take(self, payload: Any) -> Reservation | None:
        with self._lock:
            held = self._reserved.get(id(payload))
            if held is None or held[0] is not payload:
                return None
            del self._reserved[id(payload)]
            return held[1]


class PbChannelFacilitatorScheme:
    """SchemeNetworkFacilitator for `pb-channel`, in-process: pass an `x402Facilitator[Sync]` holding it to the
    resource server as its facilitator client. Only `initialize()` needs it while the server scheme's hooks
    verify and settle locally; called directly, it verifies and settles through the same book."""

    scheme = SCHEME
    caip_family = "eip155:*"

    def __init__(self, book: GatewayChannelBook) -> None:
        self.book = book
        self._reserved: dict[tuple[bytes, int], Reservation] = {}
        self._lock = threading.Lock()

    def get_extra(self, network: str) -> dict[str, Any] | None:
        return {"verifyingContract": self.book.domain.verifying_contract}

    def get_signers(self, network: str) -> list[str]:
        return []

    def verify(self, payload: PaymentPayload, requirements: PaymentRequirements,
               context: FacilitatorContext | None = None) -> VerifyResponse:
        try:
            voucher = _voucher_of(payload)
            reservation = self.book.reserve(voucher, int(requirements.amount), units=units_of(requirements.extra))
        except (WireError, VoucherRefused) as exc:
            return VerifyResponse(is_valid=False, invalid_reason=exc.code, invalid_message=str(exc))
        except ValueError as exc:
            return VerifyResponse(is_valid=False, invalid_reason=INVALID_AMOUNT, invalid_message=str(exc))
        with self._lock:
            self._reserved[(voucher.channel_id, voucher.cumulative)] = reservation
        return VerifyResponse(is_valid=True, payer=reservation.receipt.payer)

    def settle(self, payload: PaymentPayload, requirements: PaymentRequirements,
               context: FacilitatorContext | None = None) -> SettleResponse:
        network = requirements.network
        try:
            voucher = _voucher_of(payload)
        except WireError as exc:
            return SettleResponse(success=False, error_reason=exc.code, transaction="", network=network)
        with self._lock:
            reservation = self._reserved.pop((voucher.channel_id, voucher.cumulative), None)
        if reservation is None:
            return SettleResponse(success=False, error_reason=NO_RESERVATION, transaction="", network=network)
        try:
            return settle_response_of(self.book.commit(reservation), network)
        except VoucherRefused as refused:
            return SettleResponse(success=False, error_reason=refused.code, transaction="", network=network)


__all__ = ["PbChannelFacilitatorScheme", "PbChannelServerScheme", "corrective_state", "receipt_from_settle",
           "settle_response_of", "units_of"]
