"""httpx transports that pay pb-channel 402s silently, sync and async, with **pre-emptive payment**.

The x402 library pays after a 402: two round trips per paid request. These transports remember the last 402 of
each route (RequirementCache) and attach a voucher to the first try, so a paid request costs one round trip.
When the merchant still answers 402 they fall back to the normal flow:

- corrective 402 (`pb_cumulative_mismatch`): the scheme hook adopts the merchant's base (only if <= the highest
  cumulative ever signed) and the request is paid once more;
- another offer (price, rate or payee changed since the cached 402): paid once with the new offer;
- anything else (e.g. `exceeds_deposit`, `channel_frozen`): the 402 is returned to the caller.

Payments to one merchant are serialised (a cumulative voucher needs the previous base). Refusals of the payer
(budget guard, resync) raise `PaymentRefused`; other failures while paying raise the library's `PaymentError`.
A request may carry `extensions={"pb_units": n}`: the units the client measured (metered billing); a merchant
pricing another number of units is refused.
"""

from __future__ import annotations

import asyncio
import threading

import httpx
from protocolbanks.sdk.payer.client_scheme import paying_for
from protocolbanks.sdk.payer.requirement_cache import (
    RequirementCache,
    RouteKey,
    channel_lock_key,
    for_the_route,
    pb_offer,
    route_key,
    same_offer,
)
from x402 import PaymentPayload, PaymentRequired, x402Client, x402ClientSync
from x402.http.clients.httpx import PaymentError, x402AsyncTransport
from x402.http.constants import PAYMENT_REQUIRED_HEADER, PAYMENT_RESPONSE_HEADER
from x402.http.utils import decode_payment_required_header
from x402.http.x402_http_client import x402HTTPClient, x402HTTPClientSync
from x402.http.x402_http_client_base import ProcessPaymentResult

UNITS_EXTENSION = "pb_units"


def required_of(response: httpx.Response) -> PaymentRequired | None:
    """The x402 v2 402 of a response, if it offers pb-channel."""
    header = response.headers.get(PAYMENT_REQUIRED_HEADER)
    if not header:
        return None
    try:
        required = decode_payment_required_header(header)
    except ValueError:
        return None
    if not isinstance(required, PaymentRequired) or pb_offer(required) is None:
        return None
    return required


def _expected_units(request: httpx.Request) -> int | None:
    units = request.extensions.get(UNITS_EXTENSION)
    return units if isinstance(units, int) and not isinstance(units, bool) else None


def _netloc(request: httpx.Request) -> str:
    """host[:port] as the client addresses it (the budget guard's allow-list matches with or without port)."""
    return request.url.netloc.decode("ascii").lower()


def _with_payment(request: httpx.Request, headers: dict[str, str]) -> httpx.Request:
    merged = dict(request.headers)
    merged.update(headers)
    return httpx.Request(request.method, request.url, headers=merged, content=request.content,
                         extensions=dict(request.extensions))


def _served_unpaid(response: httpx.Response) -> bool:
    """A success without PAYMENT-RESPONSE: the route no longer charges (do not pre-pay it again)."""
    return response.status_code < 400 and PAYMENT_RESPONSE_HEADER not in response.headers


class PBSyncTransport(httpx.BaseTransport):
    """`httpx.Client(transport=PBSyncTransport(x402ClientSync with PbChannelClientScheme registered))`."""

    def __init__(self, client: x402ClientSync, transport: httpx.BaseTransport | None = None, *,
                 preemptive: bool = True, cache: RequirementCache | None = None) -> None:
        self._client = client
        self._http = x402HTTPClientSync(client)
        self._inner = transport or httpx.HTTPTransport()
        self.preemptive = preemptive
        self.cache = cache if cache is not None else RequirementCache()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        key = route_key(request)
        with paying_for(str(request.url), _netloc(request), _expected_units(request)):
            cached = self.cache.get(key) if self.preemptive else None
            if cached is not None:
                try:
                    return self._pay(request, key, cached, attempts=2)
                except PaymentError:
                    self.cache.drop(key)  # the remembered offer was refused: ask the merchant afresh
            response = self._inner.handle_request(request)
            required = required_of(response) if response.status_code == 402 else None
            if required is None:
                return response
            _discard(response)
            return self._pay(request, key, self.cache.put(key, required) or required, attempts=1)

    def _pay(self, request: httpx.Request, key: RouteKey, required: PaymentRequired, *,
             attempts: int) -> httpx.Response:
        with self._lock_for(required):
            while True:
                attempts -= 1
                response, result = self._attempt(request, required)
                if response.status_code != 402:
                    if _served_unpaid(response):
                        self.cache.drop(key)
                    return response
                fresh = required_of(response)
                if result.recovered:  # corrective 402 adopted: once more, no further recovery
                    _discard(response)
                    response, _ = self._attempt(request, for_the_route(fresh) if fresh else required)
                    return response
                if fresh is None or same_offer(required, fresh) or attempts <= 0:
                    return response
                _discard(response)
                required = self.cache.put(key, fresh) or fresh

    def _attempt(self, request: httpx.Request,
                 required: PaymentRequired) -> tuple[httpx.Response, ProcessPaymentResult]:
        try:
            payload = self._client.create_payment_payload(required)
        except PaymentError:
            raise
        except Exception as exc:
            raise PaymentError(f"Failed to create a pb-channel payment: {exc}") from exc
        response = self._inner.handle_request(
            _with_payment(request, self._http.encode_payment_signature_header(payload)))
        assert isinstance(payload, PaymentPayload)
        return response, self._http.process_payment_result(payload, response.headers.get, response.status_code)

    def _lock_for(self, required: PaymentRequired) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(channel_lock_key(required), threading.Lock())

    def close(self) -> None:
        self._inner.close()


class PBAsyncTransport(x402AsyncTransport):
    """The library's async transport with pre-emptive payment and per-merchant serialisation:
    `httpx.AsyncClient(transport=PBAsyncTransport(x402Client with PbChannelClientScheme registered))`."""

    def __init__(self, client: x402Client, transport: httpx.AsyncBaseTransport | None = None, *,
                 preemptive: bool = True, cache: RequirementCache | None = None) -> None:
        super().__init__(client, transport)
        self._pb_client = client
        self._pb_http = x402HTTPClient(client)
        self._inner = self._transport
        self.preemptive = preemptive
        self.cache = cache if cache is not None else RequirementCache()
        self._locks: dict[str, asyncio.Lock] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        key = route_key(request)
        with paying_for(str(request.url), _netloc(request), _expected_units(request)):
            cached = self.cache.get(key) if self.preemptive else None
            if cached is not None:
                try:
                    return await self._pay(request, key, cached, attempts=2)
                except PaymentError:
                    self.cache.drop(key)  # the remembered offer was refused: ask the merchant afresh
            response = await self._inner.handle_async_request(request)
            required = required_of(response) if response.status_code == 402 else None
            if required is None:
                return response
            await _adiscard(response)
            return await self._pay(request, key, self.cache.put(key, required) or required, attempts=1)

    async def _pay(self, request: httpx.Request, key: RouteKey, required: PaymentRequired, *,
                   attempts: int) -> httpx.Response:
        async with self._locks.setdefault(channel_lock_key(required), asyncio.Lock()):
            while True:
                attempts -= 1
                response, result = await self._attempt(request, required)
                if response.status_code != 402:
                    if _served_unpaid(response):
                        self.cache.drop(key)
                    return response
                fresh = required_of(response)
                if result.recovered:
                    await _adiscard(response)
                    response, _ = await self._attempt(request, for_the_route(fresh) if fresh else required)
                    return response
                if fresh is None or same_offer(required, fresh) or attempts <= 0:
                    return response
                await _adiscard(response)
                required = self.cache.put(key, fresh) or fresh

    async def _attempt(self, request: httpx.Request,
                       required: PaymentRequired) -> tuple[httpx.Response, ProcessPaymentResult]:
        try:
            payload = await self._pb_client.create_payment_payload(required)
        except PaymentError:
            raise
        except Exception as exc:
            raise PaymentError(f"Failed to create a pb-channel payment: {exc}") from exc
        response = await self._inner.handle_async_request(
            _with_payment(request, self._pb_http.encode_payment_signature_header(payload)))
        assert isinstance(payload, PaymentPayload)
        result = await self._pb_http.process_payment_result(payload, response.headers.get, response.status_code)
        return response, result


def _discard(response: httpx.Response) -> None:
    response.read()
    response.close()


async def _adiscard(response: httpx.Response) -> None:
    await response.aread()
    await response.aclose()
