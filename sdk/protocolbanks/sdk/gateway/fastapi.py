"""FastAPI: a paid route is a dependency; or the x402 library's own middleware for a table of routes.

```python
app = FastAPI()
use_gateway(app, gateway)                       # app.state + the 402 exception handler

@app.get("/images")
async def images(n: int = 1, receipt: PaymentReceipt | None = Depends(paid(price="0.1", units=lambda r: ...))):
    ...                                         # runs only when paid; raise HTTPException to not be charged

install_payment_middleware(app, gateway, {"POST /rides/*": PricedRoute(card, units=minutes)})
```

Dependency form: the voucher is verified and the channel reserved before the handler runs; the commit happens
when the handler returned (FastAPI's function-scoped dependency exit, before the response is sent, so the payer
never sees a response before its payment is committed). A handler that raises (HTTPException included) or sets
the injected `Response.status_code` >= 400 is not charged. A Response object the handler returns itself is not
visible to a dependency: fail by raising. The middleware form sees the real status (it buffers the body, as the
library does: no streaming on paid routes there).
"""

# no `from __future__ import annotations`: FastAPI reads the dependencies' annotations at run time, and they
# name local functions
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from protocolbanks.sdk.gateway.channel_book import PaymentReceipt
from protocolbanks.sdk.gateway.merchant import (
    HANDLER_FAILED,
    FailureCallback,
    MerchantGateway,
    PaymentFailure,
    PricedRoute,
    SkipPredicate,
    SuccessCallback,
)
from protocolbanks.sdk.gateway.metered import metered_router
from protocolbanks.sdk.gateway.paywall import (
    PAYMENT_REQUIRED,
    PAYMENT_RESPONSE,
    PaymentDemand,
    Paywall,
    RoutePaywalls,
    payment_required_body,
    peek_channel,
    peek_payment,
)
from protocolbanks.sdk.gateway.prices import PriceSpec, UnitsFunction
from protocolbanks.sdk.gateway.rate_api import rate_router
from protocolbanks.sdk.gateway.server_scheme import receipt_from_settle
from x402.http import HTTPRequestContext, x402HTTPResourceServer
from x402.http.middleware.fastapi import FastAPIAdapter, payment_middleware
from x402.http.utils import decode_payment_response_header

log = logging.getLogger("protocolbanks.gateway.fastapi")

Endpoint = Callable[[Request], Awaitable[Response]]


class PaymentRequiredError(HTTPException):
    """Raised by the `paid` dependency when the request is not (properly) paid; rendered as the 402."""

    def __init__(self, demand: PaymentDemand) -> None:
        super().__init__(status_code=demand.status, detail=demand.body, headers=demand.headers)
        self.demand = demand


async def payment_required_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PaymentRequiredError)
    return JSONResponse(exc.demand.body, status_code=exc.demand.status, headers=exc.demand.headers)


def use_gateway(app: FastAPI, gateway: MerchantGateway) -> None:
    """Makes `gateway` the default of `paid(...)` in this app and renders 402s with the x402 JSON body."""
    app.state.pb_gateway = gateway
    app.add_exception_handler(PaymentRequiredError, payment_required_handler)


class NativeFastAPIAdapter(FastAPIAdapter):
    """The library's adapter, exposing the Starlette request to price functions and skip predicates."""

    @property
    def native(self) -> Request:
        return self._request


def _gateway_of(request: Request, gateway: MerchantGateway | None) -> MerchantGateway:
    found = gateway or getattr(request.app.state, "pb_gateway", None)
    if not isinstance(found, MerchantGateway):
        raise RuntimeError("no payment gateway: use paid(..., gateway=...) or use_gateway(app, gateway)")
    return found


def paid(price: PriceSpec, *, units: UnitsFunction | None = None, description: str | None = None,
         mime_type: str | None = None, gateway: MerchantGateway | None = None,
         skip_payment: SkipPredicate | None = None, on_payment_success: SuccessCallback | None = None,
         on_payment_failure: FailureCallback | None = None) -> Callable[..., Awaitable[PaymentReceipt | None]]:
    """A dependency that makes the route paid: `receipt = Depends(paid(price="0.1"))` (None when the request was
    let through without payment by `skip_payment`)."""
    paywalls = RoutePaywalls(PricedRoute(price, units, description, mime_type), skip_payment=skip_payment,
                             on_payment_success=on_payment_success, on_payment_failure=on_payment_failure)

    async def gate(request: Request, response: Response) -> AsyncIterator[PaymentReceipt | None]:
        paywall = paywalls.of(_gateway_of(request, gateway))
        decision = await paywall.acheck(NativeFastAPIAdapter(request), path=request.url.path,
                                        method=request.method)
        if decision is None:
            yield None
            return
        if isinstance(decision, PaymentDemand):
            raise PaymentRequiredError(decision)
        for name, value in decision.headers.items():
            response.headers[name] = value
        try:
            yield decision.receipt
        except BaseException as exc:
            paywall.fail(decision, status=getattr(exc, "status_code", None), error=exc)
            raise
        if response.status_code is not None and response.status_code >= 400:
            paywall.fail(decision, status=response.status_code)
            return
        outcome = paywall.succeed(decision)
        if isinstance(outcome, PaymentDemand):  # the response is built already; cannot happen while reserved
            log.error("commit failed after the handler ran: %s", outcome.error,
                      extra={"channel": "0x" + decision.receipt.channel_id.hex()})

    async def dependency(
            receipt: Annotated[PaymentReceipt | None, Depends(gate, scope="function")]) -> PaymentReceipt | None:
        return receipt

    return dependency


def install_payment_middleware(app: FastAPI, gateway: MerchantGateway,
                               routes: Mapping[str, PricedRoute | PriceSpec], *,
                               skip_payment: SkipPredicate | None = None,
                               on_payment_success: SuccessCallback | None = None,
                               on_payment_failure: FailureCallback | None = None) -> Paywall:
    """The x402 library's FastAPI middleware (`x402.http.middleware.fastapi.payment_middleware`) with the
    pb-channel scheme for `routes` (`{"GET /images": "0.1", "POST /rides/*": PricedRoute(card, units=...)}`),
    wrapped to add the X-Payment-* headers, the 402's JSON body, the skip predicate and the callbacks."""
    paywall = Paywall(gateway, routes, skip_payment=skip_payment, on_payment_success=on_payment_success,
                      on_payment_failure=on_payment_failure)
    server = gateway.async_server()
    x402HTTPResourceServer(server, paywall.route_configs).initialize()  # a bad route raises here, not os._exit
    library_middleware = payment_middleware(paywall.route_configs, server, sync_facilitator_on_start=False)

    async def pb_payment(request: Request, call_next: Endpoint) -> Response:
        adapter = NativeFastAPIAdapter(request)
        context = HTTPRequestContext(adapter=adapter, path=request.url.path, method=request.method,
                                     payment_header=adapter.get_header("payment-signature"))
        if not paywall.http.requires_payment(context):
            return await call_next(request)
        if paywall.skip_payment is not None and paywall.skip_payment(request):
            return await call_next(request)
        if gateway.book.accepted_lookup is not None and context.payment_header is not None:
            channel = peek_channel(peek_payment(context))
            if channel is not None:
                try:
                    await gateway.book.aensure_loaded(channel)
                except Exception as exc:
                    return JSONResponse({"error": getattr(exc, "code", "pb_state_unavailable")}, status_code=503,
                                        headers={"Retry-After": "1"})
        response = await library_middleware(request, call_next)
        return _with_payment_details(response, request, paywall, context)

    app.middleware("http")(pb_payment)
    return paywall


def _with_payment_details(response: Response, request: Request, paywall: Paywall,
                          context: HTTPRequestContext) -> Response:
    settle_header = response.headers.get(PAYMENT_RESPONSE)
    if settle_header is not None and response.status_code < 400:
        receipt = receipt_from_settle(decode_payment_response_header(settle_header))
        if receipt is not None:
            response.headers["X-Payment-Id"] = receipt.payment_id
            response.headers["X-Payment-Amount"] = str(receipt.amount)
            response.headers["X-Remaining-Balance"] = str(receipt.remaining)
            paywall.gateway.notify_success(receipt, request, paywall.on_payment_success)
        return response
    if response.status_code < 400:
        return response
    payload = peek_payment(context)  # only on the failure path: who tried to pay what
    channel = peek_channel(payload)
    amount = int(payload.accepted.amount) if payload and payload.accepted.amount.isdigit() else 0
    required = response.headers.get(PAYMENT_REQUIRED)
    if response.status_code == 402 and required is not None:
        body = payment_required_body(required)
        if channel is not None:
            paywall.gateway.notify_failure(PaymentFailure(str(body["error"]), channel, amount), request,
                                           paywall.on_payment_failure)
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
        return JSONResponse(body, status_code=402, headers=headers)
    if channel is not None:
        paywall.gateway.notify_failure(PaymentFailure(HANDLER_FAILED, channel, amount, response.status_code),
                                       request, paywall.on_payment_failure)
    return response


__all__ = ["NativeFastAPIAdapter", "PaymentRequiredError", "install_payment_middleware", "metered_router", "paid",
           "payment_required_handler", "rate_router", "use_gateway"]
