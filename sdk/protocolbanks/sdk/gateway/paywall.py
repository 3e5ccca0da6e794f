"""The framework-free core of every paid route: request in, either a 402 to answer or a verified payment out.

```python
decision = paywall.check(adapter, path=..., method=...)   # an x402 HTTPAdapter over the framework's request
if decision is None:                      -> serve (no payment needed, or skip_payment said so)
elif isinstance(decision, PaymentDemand)  -> answer decision.status / .headers / .body (a 402: PAYMENT-REQUIRED
                                             header + JSON body with amount, asset, payTo, network, error)
else:                                     -> run the handler, then
    paywall.succeed(decision)  (handler ok: commit, add decision.headers to the response)
    paywall.fail(decision, status=..., error=...)  (handler failed: released, not charged)
    paywall.credit(decision)   (failed after succeed, e.g. a streamed body broke: the price becomes a credit)
    paywall.after_handler(decision, status, cache_control)  (succeed or fail by the status: the headers to add)
```

A decorator or dependency that names its gateway only at request time keeps one Paywall per gateway in a
`RoutePaywalls`.

It runs the x402 library's own HTTP pipeline (`x402HTTPResourceServerSync`: route matching, header decoding,
requirement matching, the pb-channel scheme's hooks, settlement headers); everything is in memory and
CPU-bound except the relayer lookup of a channel the book has not seen, which `acheck` moves to a thread.
Paid responses carry `PAYMENT-RESPONSE`, `X-Payment-Id`, `X-Payment-Amount`, `X-Remaining-Balance` and
`Cache-Control: private`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from protocolbanks.sdk.gateway.channel_book import PaymentReceipt, Reservation, VoucherRefused
from protocolbanks.sdk.gateway.merchant import (
    FAILED_AFTER_COMMIT,
    HANDLER_FAILED,
    FailureCallback,
    MerchantGateway,
    PaymentFailure,
    PricedRoute,
    SkipPredicate,
    SuccessCallback,
    as_priced_route,
)
from protocolbanks.sdk.gateway.prices import PriceSpec, Quote, RoutePrice
from protocolbanks.sdk.gateway.server_scheme import settle_response_of
from protocolbanks.sdk.x402.wire import SCHEME, VoucherPayload, WireError
from x402 import AssetAmount, PaymentPayload, PaymentRequired, PaymentRequirements, SettleResponse
from x402.http import HTTPRequestContext, PaymentOption, RouteConfig, x402HTTPResourceServerSync
from x402.http.types import HTTPAdapter, HTTPResponseInstructions
from x402.http.utils import (
    decode_payment_required_header,
    decode_payment_signature_header,
    encode_payment_response_header,
)
from x402.http.x402_http_server_base import with_private_cache_control
from x402.schemas.hooks import GrantAccessResult, PaymentCancellationDispatcher, VerifiedPaymentCancelOptions

PAYMENT_SIGNATURE = "PAYMENT-SIGNATURE"
PAYMENT_REQUIRED = "PAYMENT-REQUIRED"
PAYMENT_RESPONSE = "PAYMENT-RESPONSE"


@dataclass(frozen=True)
class PaymentDemand:
    """What to answer instead of serving: a 402 (or the library's 403/500), JSON body."""

    status: int
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def error(self) -> str | None:
        value = self.body.get("error")
        return value if isinstance(value, str) else None


@dataclass
class PaidRequest:
    """A verified payment holding its channel while the handler runs."""

    payload: PaymentPayload
    requirements: PaymentRequirements
    reservation: Reservation
    context: HTTPRequestContext
    dispatcher: PaymentCancellationDispatcher | None
    request: Any  # the framework's request
    headers: dict[str, str] = field(default_factory=dict)  # to add to the paid response
    done: bool = False

    @property
    def receipt(self) -> PaymentReceipt:
        return self.reservation.receipt


Decision = PaymentDemand | PaidRequest | None


def native_request(adapter: Any) -> Any:
    """The framework's request behind an x402 adapter (ours expose `native`, the library's keep `_request`)."""
    for name in ("native", "_request"):
        request = getattr(adapter, name, None)
        if request is not None:
            return request
    return adapter


def payment_headers(settle: SettleResponse, receipt: PaymentReceipt,
                    cache_control: str | None = None) -> dict[str, str]:
    """The headers of a paid response."""
    return {PAYMENT_RESPONSE: encode_payment_response_header(settle), "X-Payment-Id": receipt.payment_id,
            "X-Payment-Amount": str(receipt.amount), "X-Remaining-Balance": str(receipt.remaining),
            "Cache-Control": with_private_cache_control(cache_control)}


def payment_required_body(header_value: str) -> dict[str, Any]:
    """A 402's JSON body from its PAYMENT-REQUIRED header: the x402 document plus the first accepted option's
    scheme, network, amount, asset and payTo at the top level."""
    required = decode_payment_required_header(header_value)
    body: dict[str, Any] = required.model_dump(by_alias=True, exclude_none=True)
    if isinstance(required, PaymentRequired) and required.accepts:
        first = required.accepts[0]
        body.update(scheme=first.scheme, network=first.network, amount=first.amount, asset=first.asset,
                    payTo=first.pay_to)
    body.setdefault("error", "payment_required")
    return body


def credit_on_failure(body: Iterable[bytes], on_failure: Callable[[BaseException], Any]) -> Iterator[bytes]:
    """A streamed response body that reports an exception raised while it is produced (after the commit: the
    caller turns the payment into a credit)."""
    try:
        yield from body
    except BaseException as exc:
        on_failure(exc)
        raise


def demand_of(instructions: HTTPResponseInstructions | None) -> PaymentDemand:
    if instructions is None:
        return PaymentDemand(402, {}, {"error": "payment_required"})
    headers = {k: v for k, v in instructions.headers.items() if k.lower() != "content-type"}
    required = next((v for k, v in headers.items() if k.upper() == PAYMENT_REQUIRED), None)
    if required is not None:
        return PaymentDemand(instructions.status, headers, payment_required_body(required))
    body = instructions.body if isinstance(instructions.body, dict) else {"error": "payment_failed"}
    return PaymentDemand(instructions.status, headers, body)


def peek_payment(context: HTTPRequestContext) -> PaymentPayload | None:
    if not context.payment_header:
        return None
    try:
        payload = decode_payment_signature_header(context.payment_header)
    except Exception:
        return None
    return payload if isinstance(payload, PaymentPayload) else None


def peek_channel(payload: PaymentPayload | None) -> bytes | None:
    if payload is None or payload.accepted.scheme != SCHEME:
        return None
    try:
        return VoucherPayload.from_dict(payload.payload).channel_id
    except WireError:
        return None


class Paywall:
    """Paid routes (`"METHOD /path"` patterns, `"*"` for a decorator's single route) over one gateway."""

    def __init__(self, gateway: MerchantGateway, routes: Mapping[str, PricedRoute | PriceSpec], *,
                 skip_payment: SkipPredicate | None = None, on_payment_success: SuccessCallback | None = None,
                 on_payment_failure: FailureCallback | None = None) -> None:
        self.gateway = gateway
        self.skip_payment = skip_payment or gateway.skip_payment
        self.on_payment_success = on_payment_success
        self.on_payment_failure = on_payment_failure
        self.route_configs = {pattern: self._route_config(as_priced_route(route)) for pattern, route in routes.items()}
        self.http = x402HTTPResourceServerSync(gateway.server, self.route_configs)
        self.http.on_protected_request(self._skip_hook)
        self.http.initialize()  # raises RouteConfigurationError on a bad route (never os._exit)

    # ------------------------------------------------------------------ routes
    def _route_config(self, route: PricedRoute) -> RouteConfig:
        pricing = RoutePrice(route.price, decimals=self.gateway.decimals, units=route.units)

        def price(context: HTTPRequestContext) -> AssetAmount:
            quote = self.quote(pricing, context)
            return AssetAmount(amount=str(quote.amount), asset=self.gateway.asset, extra=quote.extra())

        option = PaymentOption(scheme=SCHEME, pay_to=self.gateway.pay_to, price=price, network=self.gateway.network,
                               max_timeout_seconds=self.gateway.max_timeout_seconds)
        return RouteConfig(accepts=option, description=route.description, mime_type=route.mime_type or "")

    def quote(self, pricing: RoutePrice, context: HTTPRequestContext) -> Quote:
        """The route's price for this request; for a rate card, the amount a paid retry echoes if it was quoted
        within the timeout (x402 needs the retry's amount to equal the 402's)."""
        request = native_request(context.adapter)
        if pricing.card is None:
            return pricing.quote(request)
        payload = peek_payment(context)
        channel = peek_channel(payload)
        volume = self.gateway.book.units_of(channel) if channel is not None else 0
        now = pricing.card.now()
        quote = pricing.quote(request, volume=volume, at=now)
        if payload is None:
            return quote
        echoed = payload.accepted
        rate = (echoed.extra or {}).get("rate")
        if echoed.amount == str(quote.amount) and rate == quote.rate:
            return quote
        if not echoed.amount.isdigit():
            return quote
        recent = pricing.recent(request, int(echoed.amount), rate, volume=volume, now=now,
                                window_seconds=self.gateway.max_timeout_seconds)
        return recent or quote

    def _skip_hook(self, context: HTTPRequestContext, _route: RouteConfig) -> GrantAccessResult | None:
        if self.skip_payment is not None and self.skip_payment(native_request(context.adapter)):
            return GrantAccessResult()
        return None

    # ------------------------------------------------------------------ the request
    def context(self, adapter: HTTPAdapter, *, path: str, method: str,
                decoded_path: str | None = None) -> HTTPRequestContext:
        header = adapter.get_header(PAYMENT_SIGNATURE) or adapter.get_header("X-PAYMENT")
        return HTTPRequestContext(adapter=adapter, path=path, method=method, payment_header=header,
                                  decoded_path=decoded_path)

    async def acheck(self, adapter: HTTPAdapter, *, path: str, method: str,
                     decoded_path: str | None = None) -> Decision:
        """`check` for asyncio: a channel the book has not seen is looked up in a worker thread first."""
        context = self.context(adapter, path=path, method=method, decoded_path=decoded_path)
        lookup = self.gateway.book.accepted_lookup is not None and context.payment_header is not None
        channel = peek_channel(peek_payment(context)) if lookup else None
        if channel is not None:
            try:
                await self.gateway.book.aensure_loaded(channel)
            except VoucherRefused as refused:  # the relayer cannot say where the channel stands: try again later
                return PaymentDemand(503, {"Retry-After": "1"}, {"error": refused.code, "message": str(refused)})
        return self._check(context)

    def check(self, adapter: HTTPAdapter, *, path: str, method: str, decoded_path: str | None = None) -> Decision:
        return self._check(self.context(adapter, path=path, method=method, decoded_path=decoded_path))

    def _check(self, context: HTTPRequestContext) -> Decision:
        result = self.http.process_http_request(context)
        if result.type == "no-payment-required":
            return None
        request = native_request(context.adapter)
        if result.type == "payment-error" or result.payment_payload is None or result.payment_requirements is None:
            demand = demand_of(result.response)
            if context.payment_header:
                payload = peek_payment(context)
                self.gateway.notify_failure(
                    PaymentFailure(demand.error or "payment_failed", peek_channel(payload),
                                   int(payload.accepted.amount) if payload and payload.accepted.amount.isdigit()
                                   else 0), request, self.on_payment_failure)
            return demand
        payload, requirements = result.payment_payload, result.payment_requirements
        reservation = self.gateway.scheme.reservation_for(payload)
        if reservation is None:  # not a pb-channel reservation: refuse rather than serve unpaid
            if result.cancellation_dispatcher is not None:
                result.cancellation_dispatcher.cancel_sync(VerifiedPaymentCancelOptions(reason="handler_failed"))
            return PaymentDemand(402, {}, {"error": "pb_no_reservation"})
        settle = settle_response_of(reservation.receipt, requirements.network)
        return PaidRequest(payload, requirements, reservation, context, result.cancellation_dispatcher, request,
                           payment_headers(settle, reservation.receipt))

    # ------------------------------------------------------------------ the outcome
    def succeed(self, paid: PaidRequest) -> PaymentReceipt | PaymentDemand:
        """The handler succeeded: commit (the voucher goes to the relayer forwarder)."""
        if paid.done:
            return paid.receipt
        paid.done = True
        result = self.http.process_settlement(paid.payload, paid.requirements, context=paid.context)
        if not result.success:
            demand = demand_of(result.response)
            self.gateway.notify_failure(PaymentFailure(demand.error or "settle_failed", paid.receipt.channel_id,
                                                       paid.reservation.price), paid.request, self.on_payment_failure)
            return demand
        self.gateway.notify_success(paid.receipt, paid.request, self.on_payment_success)
        return paid.receipt

    def fail(self, paid: PaidRequest, *, status: int | None = None, error: BaseException | None = None) -> None:
        """The handler threw or answered >= 400: the reservation is released, nothing is charged."""
        if paid.done:
            return
        paid.done = True
        options = VerifiedPaymentCancelOptions(reason="handler_threw" if error is not None else "handler_failed",
                                               error=error, response_status=status)
        if paid.dispatcher is not None:
            paid.dispatcher.cancel_sync(options)
        self.gateway.book.release(paid.reservation)  # no-op if the cancel hook released it already
        self.gateway.notify_failure(PaymentFailure(HANDLER_FAILED, paid.receipt.channel_id, paid.reservation.price,
                                                   status), paid.request, self.on_payment_failure)

    def finish(self, paid: PaidRequest, status: int, error: BaseException | None = None) -> PaymentReceipt | None:
        """`succeed` when status < 400 and no error, else `fail`; the receipt if charged."""
        if error is None and status < 400:
            outcome = self.succeed(paid)
            return outcome if isinstance(outcome, PaymentReceipt) else None
        self.fail(paid, status=status, error=error)
        return None

    def after_handler(self, paid: PaidRequest, status: int,
                      cache_control: str | None = None) -> dict[str, str] | PaymentDemand | None:
        """The handler answered `status`, its response's own Cache-Control being `cache_control`. At 400 or above
        the payment is released (nothing charged) and None returned: the response goes out as it is. Below, it is
        committed and the headers to add to the response are returned (Cache-Control made private, keeping the
        response's directives), or, if the commit failed, the PaymentDemand to answer instead."""
        if status >= 400:
            self.fail(paid, status=status)
            return None
        outcome = self.succeed(paid)
        if isinstance(outcome, PaymentDemand):
            return outcome
        return {name: with_private_cache_control(cache_control) if name == "Cache-Control" else value
                for name, value in paid.headers.items()}

    def streamed_body(self, paid: PaidRequest, body: Iterable[bytes]) -> Iterator[bytes]:
        """The streamed body of a committed response: if producing it raises, the price becomes a credit."""
        return credit_on_failure(body, lambda exc: self.credit(paid, exc))

    def credit(self, paid: PaidRequest, error: BaseException | None = None) -> int:
        """The request failed after `succeed` (e.g. its streamed body broke): its price becomes a credit that the
        payer's replay of the same voucher uses (see channel_book). Returns the channel's credit."""
        credit = self.gateway.book.credit(paid.reservation)
        self.gateway.notify_failure(PaymentFailure(FAILED_AFTER_COMMIT, paid.receipt.channel_id,
                                                   paid.reservation.price, credit=credit), paid.request,
                                    self.on_payment_failure)
        return credit


@dataclass(eq=False)
class RoutePaywalls:
    """One paid route's Paywall per gateway, made on first use: for a decorator or dependency whose gateway is
    known only at request time (its own, or the app's default)."""

    route: PricedRoute
    _: KW_ONLY
    skip_payment: SkipPredicate | None = None
    on_payment_success: SuccessCallback | None = None
    on_payment_failure: FailureCallback | None = None
    _paywalls: dict[int, Paywall] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def of(self, gateway: MerchantGateway) -> Paywall:
        paywall = self._paywalls.get(id(gateway))
        if paywall is None:
            with self._lock:
                paywall = self._paywalls.get(id(gateway))
                if paywall is None:
                    paywall = self._paywalls[id(gateway)] = Paywall(
                        gateway, {"*": self.route}, skip_payment=self.skip_payment,
                        on_payment_success=self.on_payment_success, on_payment_failure=self.on_payment_failure)
        return paywall
