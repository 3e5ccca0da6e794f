"""Flask: a paid view is a decorator.

```python
app = Flask(__name__)
init_app(app, gateway)

@app.get("/images")
@paid(price="0.1", units=lambda request: int(request.args.get("n", 1)))
def images():
    ...                      # runs only when paid; an exception or a status >= 400 is not charged
```

The voucher is verified and the channel reserved before the view runs and committed once it returned a
response below 400 (before the response leaves). A streamed response is committed before its body is produced;
if the body then breaks, the price becomes a credit on the channel (see `channel_book`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from typing import Any, cast

from flask import Flask, Request, Response, current_app, request
from protocolbanks.sdk.gateway.merchant import (
    FailureCallback,
    MerchantGateway,
    PricedRoute,
    SkipPredicate,
    SuccessCallback,
)
from protocolbanks.sdk.gateway.paywall import PaidRequest, PaymentDemand, Paywall, RoutePaywalls
from protocolbanks.sdk.gateway.prices import PriceSpec, UnitsFunction
from protocolbanks.sdk.gateway.rate_api import rate_blueprint
from x402.http.middleware.flask import FlaskAdapter

EXTENSION_KEY = "protocolbanks.gateway"

View = Callable[..., Any]


def init_app(app: Flask, gateway: MerchantGateway) -> None:
    """Makes `gateway` the default of `@paid(...)` in this app."""
    app.extensions[EXTENSION_KEY] = gateway


class NativeFlaskAdapter(FlaskAdapter):
    """The library's adapter, exposing the Flask request to price functions and skip predicates."""

    @property
    def native(self) -> Request:
        return self._request


def demand_response(demand: PaymentDemand) -> Response:
    return Response(json.dumps(demand.body), status=demand.status, headers=demand.headers,
                    mimetype="application/json")


def paid(price: PriceSpec, *, units: UnitsFunction | None = None, description: str | None = None,
         mime_type: str | None = None, gateway: MerchantGateway | None = None,
         skip_payment: SkipPredicate | None = None, on_payment_success: SuccessCallback | None = None,
         on_payment_failure: FailureCallback | None = None) -> Callable[[View], View]:
    """Decorator making a Flask view paid. Price functions and `units` receive the Flask request."""
    paywalls = RoutePaywalls(PricedRoute(price, units, description, mime_type), skip_payment=skip_payment,
                             on_payment_success=on_payment_success, on_payment_failure=on_payment_failure)

    def paywall_for() -> Paywall:
        found = gateway or current_app.extensions.get(EXTENSION_KEY)
        if not isinstance(found, MerchantGateway):
            raise RuntimeError("no payment gateway: use @paid(..., gateway=...) or init_app(app, gateway)")
        return paywalls.of(found)

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def paid_view(*args: Any, **kwargs: Any) -> Any:
            paywall = paywall_for()
            native = request._get_current_object()  # type: ignore[attr-defined]
            decision = paywall.check(NativeFlaskAdapter(native), path=native.path, method=native.method)
            if decision is None:
                return view(*args, **kwargs)
            if isinstance(decision, PaymentDemand):
                return demand_response(decision)
            return _serve_paid(paywall, decision, view, args, kwargs)

        return paid_view

    return decorate


def _serve_paid(paywall: Paywall, paid_request: PaidRequest, view: View, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Response:
    try:
        response = current_app.make_response(view(*args, **kwargs))
    except BaseException as exc:
        paywall.fail(paid_request, status=getattr(exc, "code", None), error=exc)
        raise
    outcome = paywall.after_handler(paid_request, response.status_code, response.headers.get("Cache-Control"))
    if isinstance(outcome, PaymentDemand):
        return demand_response(outcome)
    if outcome is not None:  # committed (None: the view answered >= 400, released, not charged)
        response.headers.update(outcome)
        if response.is_streamed:
            response.response = paywall.streamed_body(paid_request, cast(Iterable[bytes], response.response))
    return response


__all__ = ["EXTENSION_KEY", "NativeFlaskAdapter", "demand_response", "init_app", "paid",
           "rate_blueprint"]
