"""What each paid route asked for last time, so the next request can carry its voucher at once.

Keyed by (host[:port], METHOD, path) of the request as the client sends it. Only 402s that offer `pb-channel`
are kept, without the corrective `channelState` a merchant may have added (that belongs to one answer, not to
the route), and at most `max_routes` of them (least recently used dropped first).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import httpx
from protocolbanks.sdk.x402.wire import SCHEME
from x402 import PaymentRequired, PaymentRequirements

RouteKey = tuple[str, str, str]


def route_key(request: httpx.Request) -> RouteKey:
    return (request.url.netloc.decode("ascii").lower(), request.method.upper(), request.url.path)


def pb_offer(required: PaymentRequired) -> PaymentRequirements | None:
    """The first pb-channel requirement of a 402, if it has one."""
    for accept in required.accepts:
        if accept.scheme == SCHEME:
            return accept
    return None


def for_the_route(required: PaymentRequired) -> PaymentRequired:
    """A copy fit for reuse: no error, no per-answer `channelState` in the requirements' extra."""
    accepts = [accept.model_copy(update={"extra": {k: v for k, v in (accept.extra or {}).items()
                                                   if k != "channelState"}})
               for accept in required.accepts]
    return required.model_copy(update={"accepts": accepts, "error": None})


def same_offer(first: PaymentRequired, second: PaymentRequired) -> bool:
    """Whether two 402s ask for the same pb-channel payment (amount, payee, token, domain, rate...)."""
    a, b = pb_offer(for_the_route(first)), pb_offer(for_the_route(second))
    return a is not None and b is not None and a.model_dump() == b.model_dump()


def channel_lock_key(required: PaymentRequired) -> str:
    """Payments to one merchant (one channel) are serialised: a cumulative voucher needs the previous base."""
    offer = pb_offer(required)
    if offer is None:
        return ""
    return f"{offer.network}|{offer.pay_to.lower()}|{offer.asset.lower()}"


class RequirementCache:
    """Thread-safe LRU of the last pb-channel 402 per route."""

    def __init__(self, max_routes: int = 1024) -> None:
        self.max_routes = max_routes
        self._routes: OrderedDict[RouteKey, PaymentRequired] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: RouteKey) -> PaymentRequired | None:
        with self._lock:
            found = self._routes.get(key)
            if found is not None:
                self._routes.move_to_end(key)
            return found

    def put(self, key: RouteKey, required: PaymentRequired) -> PaymentRequired | None:
        """Keeps the 402 for the route (if it offers pb-channel); returns the cleaned copy that was kept."""
        if pb_offer(required) is None:
            return None
        kept = for_the_route(required)
        with self._lock:
            self._routes[key] = kept
            self._routes.move_to_end(key)
            while len(self._routes) > self.max_routes:
                self._routes.popitem(last=False)
        return kept

    def drop(self, key: RouteKey) -> None:
        with self._lock:
            self._routes.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._routes)
