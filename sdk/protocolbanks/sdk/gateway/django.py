"""Django: a middleware driven by settings (the x402 library has none; `DjangoAdapter` is its HTTPAdapter).

```python
# settings.py
MIDDLEWARE = [..., "protocolbanks.sdk.gateway.django.PBDjangoPaymentMiddleware"]
PB_GATEWAY = "shop.payments.gateway"        # a MerchantGateway, a function returning one, or a dotted path to either
PB_PAID_ROUTES = {                          # x402 route patterns: "METHOD /path", "*" wildcards
    "GET /images": "0.1",                   # a price (int base units, Decimal or decimal string of tokens)
    "POST /rides/*": {"price": "shop.pricing.ride_card", "units": "shop.pricing.ride_minutes",
                      "description": "car rental"},   # a dict (values may be dotted paths) or a PricedRoute
}
PB_SKIP_PAYMENT = "shop.payments.is_test_request"    # optional: (request) -> bool
PB_ON_PAYMENT_SUCCESS / PB_ON_PAYMENT_FAILURE        # optional callbacks (receipt|failure, request)
```

A paid request is verified and its channel reserved before the view runs; the payment is committed when the
response is below 400 (Django turns a view's exception into a 500 response: not charged). A streaming response
is committed before its body is produced; a body that breaks afterwards leaves a credit (see `channel_book`).
Sync middleware (Django adapts it under ASGI).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.module_loading import import_string
from protocolbanks.sdk.gateway.merchant import MerchantGateway, PricedRoute
from protocolbanks.sdk.gateway.paywall import PaymentDemand, Paywall


class DjangoAdapter:
    """x402 `HTTPAdapter` over a Django `HttpRequest`."""

    def __init__(self, request: HttpRequest) -> None:
        self.native = request

    def get_header(self, name: str) -> str | None:
        value = self.native.headers.get(name)
        return None if value is None else str(value)

    def get_method(self) -> str:
        return self.native.method or "GET"

    def get_path(self) -> str:
        return str(self.native.path)

    def get_url(self) -> str:
        return str(self.native.build_absolute_uri())

    def get_accept_header(self) -> str:
        return str(self.native.headers.get("Accept", ""))

    def get_user_agent(self) -> str:
        return str(self.native.headers.get("User-Agent", ""))

    def get_query_params(self) -> dict[str, str | list[str]]:
        return {key: values[0] if len(values) == 1 else values for key, values in self.native.GET.lists()}

    def get_query_param(self, name: str) -> str | list[str] | None:
        values = [str(value) for value in self.native.GET.getlist(name)]
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    def get_body(self) -> Any:
        if "json" not in (self.native.content_type or ""):
            return None
        try:
            return json.loads(self.native.body or b"null")
        except ValueError:
            return None


def _resolve(value: Any) -> Any:
    return import_string(value) if isinstance(value, str) else value


def _price_value(value: Any) -> Any:
    """A decimal string is a price; any other string is a dotted path to a function or rate card."""
    if isinstance(value, str):
        try:
            Decimal(value)
            return value
        except InvalidOperation:
            return import_string(value)
    return value


def paid_route(spec: Any) -> PricedRoute:
    """One `PB_PAID_ROUTES` value as a PricedRoute."""
    if isinstance(spec, PricedRoute):
        return spec
    if isinstance(spec, Mapping):
        units = spec.get("units")
        return PricedRoute(_price_value(spec["price"]), _resolve(units) if units is not None else None,
                           spec.get("description"), spec.get("mime_type"))
    return PricedRoute(_price_value(spec))


def gateway_from_settings() -> MerchantGateway:
    found = _resolve(getattr(settings, "PB_GATEWAY", None))
    if callable(found) and not isinstance(found, MerchantGateway):
        found = found()
    if not isinstance(found, MerchantGateway):
        raise RuntimeError("settings.PB_GATEWAY must be a MerchantGateway, a function returning one, or a dotted "
                           "path to either")
    return found


def _optional(name: str) -> Any:
    value = getattr(settings, name, None)
    return None if value is None else _resolve(value)


class PBDjangoPaymentMiddleware:
    """Charges the routes of `settings.PB_PAID_ROUTES` through `settings.PB_GATEWAY`."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        routes = {pattern: paid_route(spec) for pattern, spec in getattr(settings, "PB_PAID_ROUTES", {}).items()}
        self.paywall = Paywall(gateway_from_settings(), routes, skip_payment=_optional("PB_SKIP_PAYMENT"),
                               on_payment_success=_optional("PB_ON_PAYMENT_SUCCESS"),
                               on_payment_failure=_optional("PB_ON_PAYMENT_FAILURE"))

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        decision = self.paywall.check(DjangoAdapter(request), path=request.path, method=request.method or "GET")
        if decision is None:
            return self.get_response(request)
        if isinstance(decision, PaymentDemand):
            return _demand_response(decision)
        try:
            response = self.get_response(request)
        except BaseException as exc:
            self.paywall.fail(decision, error=exc)
            raise
        outcome = self.paywall.after_handler(decision, response.status_code, response.headers.get("Cache-Control"))
        if isinstance(outcome, PaymentDemand):
            return _demand_response(outcome)
        if outcome is not None:  # committed (None: the view answered >= 400, released, not charged)
            for name, value in outcome.items():
                response.headers[name] = value
            if isinstance(response, StreamingHttpResponse):
                content = cast(Iterable[bytes], response.streaming_content)
                response.streaming_content = self.paywall.streamed_body(decision, content)
        return response


def _demand_response(demand: PaymentDemand) -> HttpResponse:
    response = HttpResponse(json.dumps(demand.body), status=demand.status, content_type="application/json")
    for name, value in demand.headers.items():
        response.headers[name] = value
    return response


__all__ = ["DjangoAdapter", "PBDjangoPaymentMiddleware", "gateway_from_settings", "paid_route"]
