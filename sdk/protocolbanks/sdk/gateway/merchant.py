"""A merchant's payment gateway: one channel book, the x402 servers with the pb-channel scheme, and the defaults
every paid route shares (token decimals, timeout, skip predicate, callbacks).

```python
book = GatewayChannelBook(domain, chain_cache.get, payee=MERCHANT, token=USDC,
                          accepted_lookup=RelayerChannelLookup(RELAYER))
gateway = MerchantGateway(book, forwarder=RelayerForwarder(RELAYER, domain.chain_id).start())
```
then `protocolbanks.sdk.gateway.fastapi.paid(...)`, `.flask.paid(...)` or the Django middleware use it.

When the relayer's Sentinel refuses a forwarded voucher (`sentinel_*`), the gateway holds that channel for
`sentinel_hold_s` seconds (payments refused with `pb_sentinel_hold`) instead of serving on until the guardian's
freeze reaches the chain view.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocolbanks.sdk.gateway.channel_book import GatewayChannelBook, PaymentReceipt
from protocolbanks.sdk.gateway.forwarder import RejectedCallback, RelayerForwarder
from protocolbanks.sdk.gateway.prices import PriceSpec, UnitsFunction
from protocolbanks.sdk.gateway.server_scheme import PbChannelFacilitatorScheme, PbChannelServerScheme
from protocolbanks.sdk.x402.wire import VoucherPayload, network_of
from x402 import x402Facilitator, x402FacilitatorSync, x402ResourceServer, x402ResourceServerSync

log = logging.getLogger("protocolbanks.gateway")

HANDLER_FAILED = "pb_handler_failed"  # the handler threw or answered >= 400: released, not charged
FAILED_AFTER_COMMIT = "pb_failed_after_commit"  # charged, then failed: the price became a credit


@dataclass(frozen=True)
class PricedRoute:
    """A paid route: its price, how many units a request uses, and how the 402 describes it."""

    price: PriceSpec
    units: UnitsFunction | None = None
    description: str | None = None
    mime_type: str | None = None


@dataclass(frozen=True)
class PaymentFailure:
    """A payment that did not go through (a refused voucher) or a paid request that failed."""

    code: str  # the 402's error (a pb_* code or an acceptance.Rejection value), HANDLER_FAILED or FAILED_AFTER_COMMIT
    channel_id: bytes | None = None
    amount: int = 0  # the price asked
    status: int | None = None  # the handler's status when it failed
    credit: int = 0  # the channel's credit after a failure after commit


SkipPredicate = Callable[[Any], bool]  # (framework request) -> serve without payment
SuccessCallback = Callable[[PaymentReceipt, Any], None]  # (receipt, framework request)
FailureCallback = Callable[[PaymentFailure, Any], None]  # (failure, framework request)


def as_priced_route(route: PricedRoute | PriceSpec) -> PricedRoute:
    return route if isinstance(route, PricedRoute) else PricedRoute(route)


class MerchantGateway:
    """Everything paid routes of one merchant share."""

    def __init__(self, book: GatewayChannelBook, *, decimals: int = 6, max_timeout_seconds: int = 60,
                 forwarder: RelayerForwarder | None = None, skip_payment: SkipPredicate | None = None,
                 on_payment_success: SuccessCallback | None = None,
                 on_payment_failure: FailureCallback | None = None, sentinel_hold_s: float = 60.0) -> None:
        self.book = book
        self.decimals = decimals
        self.max_timeout_seconds = max_timeout_seconds
        self.forwarder = forwarder
        self.skip_payment = skip_payment
        self.on_payment_success = on_payment_success
        self.on_payment_failure = on_payment_failure
        if forwarder is not None:
            if book.on_commit is not None:
                raise ValueError("the book already hands committed vouchers to someone: pass one forwarder")
            book.on_commit = forwarder.submit
            forwarder.on_rejected = self._hold_on_sentinel_refusal(forwarder.on_rejected, sentinel_hold_s)
        self.network = network_of(book.domain.chain_id)
        self.scheme = PbChannelServerScheme(book, decimals=decimals)
        self.facilitator_scheme = PbChannelFacilitatorScheme(book)
        facilitator = x402FacilitatorSync()
        facilitator.register([self.network], self.facilitator_scheme)
        self.server = x402ResourceServerSync(facilitator)
        self.server.register(self.network, self.scheme)
        self.server.initialize()
        self._async_server: x402ResourceServer | None = None

    def _hold_on_sentinel_refusal(self, then: RejectedCallback | None, seconds: float) -> RejectedCallback:
        """A forwarder refusal from the relayer's Sentinel holds the channel in the book (see `hold`)."""
        def on_rejected(voucher: VoucherPayload, status: int, answer: dict[str, Any]) -> None:
            reason = str(answer.get("reason", ""))
            if reason.startswith("sentinel_"):
                self.book.hold(voucher.channel_id, reason, seconds)
            if then is not None:
                then(voucher, status, answer)
        return on_rejected

    @property
    def pay_to(self) -> str:
        return self.book.payee

    @property
    def asset(self) -> str:
        return self.book.token

    def async_server(self) -> x402ResourceServer:
        """The asyncio x402 resource server (for the library's own FastAPI middleware), same scheme and book."""
        if self._async_server is None:
            facilitator = x402Facilitator()
            facilitator.register([self.network], self.facilitator_scheme)
            server = x402ResourceServer(facilitator)
            server.register(self.network, self.scheme)
            server.initialize()
            self._async_server = server
        return self._async_server

    def notify_success(self, receipt: PaymentReceipt, request: Any,
                       callback: SuccessCallback | None = None) -> None:
        for hook in (callback, self.on_payment_success):
            if hook is not None:
                try:
                    hook(receipt, request)
                except Exception:
                    log.exception("on_payment_success callback failed")

    def notify_failure(self, failure: PaymentFailure, request: Any,
                       callback: FailureCallback | None = None) -> None:
        for hook in (callback, self.on_payment_failure):
            if hook is not None:
                try:
                    hook(failure, request)
                except Exception:
                    log.exception("on_payment_failure callback failed")

    def stop(self, timeout: float = 5.0) -> bool:
        """Flushes and stops the forwarder (if any). Returns whether every committed voucher was delivered."""
        return self.forwarder.stop(timeout) if self.forwarder is not None else True
