"""A small pb-channel merchant for the payer tests: the x402 library's own FastAPI middleware and resource server
with a hand-written scheme that follows the issue-4 wire (docs in /work/notes/issue4-plan.md), served by uvicorn
on loopback. It verifies vouchers for real (signature recovery; with `snapshot_of`, the chain's acceptance rules)
and can be told to misbehave (overcharge, lie about the channel base or the charge) so the payer's defences are
tested against a real server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from protocolbanks.devtools.thread_server import serve_asgi
from protocolbanks.sdk.acceptance import ChannelSnapshot, PeriodUsage, evaluate_voucher
from protocolbanks.sdk.pricing import RateCard
from protocolbanks.sdk.signing import SignatureError
from protocolbanks.sdk.typed_data import ChannelDomain, Voucher
from protocolbanks.sdk.x402.wire import (
    CUMULATIVE_MISMATCH,
    SCHEME,
    ChannelStateExtra,
    VoucherPayload,
    WireError,
    network_of,
    requirement_extra,
)
from x402 import (
    AbortResult,
    AssetAmount,
    SettleResponse,
    SkipSettleResult,
    SkipVerifyResult,
    VerifyResponse,
    x402Facilitator,
    x402ResourceServer,
)
from x402.http import PaymentOption, RouteConfig
from x402.http.middleware.fastapi import payment_middleware


@dataclass
class PaidRoute:
    card: RateCard
    units: int = 1
    overcharge: int = 0  # asks this much more than the published card's quote


@dataclass
class MerchantBook:
    domain: ChannelDomain
    snapshot_of: Callable[[bytes], ChannelSnapshot | None] | None = None  # None: any signer is accepted
    accepted: dict[bytes, int] = field(default_factory=dict)
    committed: list[VoucherPayload] = field(default_factory=list)
    paid_requests: int = 0  # requests that carried PAYMENT-SIGNATURE
    requests: int = 0
    lie_base: int | None = None  # corrective 402s claim this base
    claim_extra_charge: int = 0  # PAYMENT-RESPONSE claims this much more than the voucher
    period: dict[bytes, PeriodUsage] = field(default_factory=dict)
    pending: dict[bytes, int] = field(default_factory=dict)

    def check(self, voucher: VoucherPayload, price: int) -> str | None:
        accepted = self.accepted.get(voucher.channel_id, 0)
        if voucher.cumulative != accepted + price:
            return CUMULATIVE_MISMATCH
        try:
            signer = Voucher(voucher.channel_id, voucher.terms.epoch, voucher.cumulative).recover(
                self.domain, voucher.signature)
        except (SignatureError, ValueError):
            return "invalid_signature"
        if self.snapshot_of is None:
            return None
        decision, usage = evaluate_voucher(
            self.snapshot_of(voucher.channel_id), signer=signer, epoch=voucher.terms.epoch,
            cumulative=voucher.cumulative, accepted_cumulative=accepted,
            period=self.period.get(voucher.channel_id, PeriodUsage()), now=int(time.time()))
        if not decision.accepted or decision.stale:
            return decision.rejection.value if decision.rejection else "stale_voucher"
        self.period[voucher.channel_id] = usage
        return None

    def remaining(self, channel_id: bytes, cumulative: int) -> int | None:
        snapshot = self.snapshot_of(channel_id) if self.snapshot_of else None
        return None if snapshot is None else min(snapshot.deposit, snapshot.terms.ceiling) - cumulative


class NoFacilitator:
    """The scheme verifies and settles locally; the facilitator is only listed for `initialize()`."""

    scheme = SCHEME
    caip_family = "eip155:*"

    def get_extra(self, network: str) -> dict[str, Any] | None:
        return None

    def get_signers(self, network: str) -> list[str]:
        return []

    def verify(self, payload: Any, requirements: Any, context: Any = None) -> VerifyResponse:
        return VerifyResponse(is_valid=False, invalid_reason="not_used")

    def settle(self, payload: Any, requirements: Any, context: Any = None) -> SettleResponse:
        return SettleResponse(success=False, error_reason="not_used", transaction="", network=requirements.network)


class StandInScheme:
    scheme = SCHEME
    default_asset_transfer_method = "default"
    payment_flows: ClassVar[dict[str, Any]] = {"default": {"supported": ("authorization",), "default": "authorization"}}

    def __init__(self, book: MerchantBook, routes: dict[str, PaidRoute]) -> None:
        self.book = book
        self.routes = routes

    def parse_price(self, price: Any, network: str) -> AssetAmount:
        assert isinstance(price, AssetAmount)
        return price

    def enhance_payment_requirements(self, requirements: Any, supported_kind: Any, extensions: Any) -> Any:
        route = self.routes[(requirements.extra or {})["route"]]
        extra = requirement_extra(self.book.domain, route.card.published())
        if route.units != 1:
            extra["units"] = route.units
        requirements.extra = extra
        return requirements

    def before_verify(self, ctx: Any) -> AbortResult | SkipVerifyResult:
        try:
            voucher = VoucherPayload.from_dict(ctx.payment_payload.payload)
        except WireError as exc:
            return AbortResult(reason=exc.code)
        error = self.book.check(voucher, int(ctx.requirements.amount))
        if error is not None:
            return AbortResult(reason=error)
        self.book.pending[voucher.channel_id] = voucher.cumulative
        return SkipVerifyResult(result=VerifyResponse(is_valid=True, payer="0x" + "00" * 20))

    def before_settle(self, ctx: Any) -> SkipSettleResult:
        voucher = VoucherPayload.from_dict(ctx.payment_payload.payload)
        self.book.pending.pop(voucher.channel_id, None)
        self.book.accepted[voucher.channel_id] = voucher.cumulative
        self.book.committed.append(voucher)
        claimed = voucher.cumulative + self.book.claim_extra_charge
        state = ChannelStateExtra(voucher.channel_id, claimed, self.book.remaining(voucher.channel_id, claimed))
        return SkipSettleResult(result=SettleResponse(
            success=True, transaction="", network=ctx.requirements.network, amount=ctx.requirements.amount,
            extra={"paymentId": f"p{len(self.book.committed)}", "chargedAmount": ctx.requirements.amount,
                   "channelState": state.to_dict()}))

    def on_verified_payment_canceled(self, ctx: Any) -> None:
        voucher = VoucherPayload.from_dict(ctx.payment_payload.payload)
        self.book.pending.pop(voucher.channel_id, None)

    def enrich_payment_required_response(self, ctx: Any) -> list[Any] | None:
        if ctx.error != CUMULATIVE_MISMATCH or ctx.payment_payload is None:
            return None
        voucher = VoucherPayload.from_dict(ctx.payment_payload.payload)
        base = self.book.lie_base if self.book.lie_base is not None else self.book.accepted.get(voucher.channel_id, 0)
        for requirement in ctx.requirements:
            requirement.extra = {**requirement.extra,
                                 "channelState": ChannelStateExtra(voucher.channel_id, base).to_dict()}
        return list(ctx.requirements)


def build_merchant(book: MerchantBook, routes: dict[str, PaidRoute], *, pay_to: str, token: str) -> FastAPI:
    network = network_of(book.domain.chain_id)
    server = x402ResourceServer(x402Facilitator().register([network], NoFacilitator()))
    server.register(network, StandInScheme(book, routes))

    def price_of(path: str) -> Callable[[Any], AssetAmount]:
        def price(_ctx: Any) -> AssetAmount:
            route = routes[path]
            return AssetAmount(amount=str(route.card.quote(route.units) + route.overcharge), asset=token)
        return price

    config = {f"{method} {path}": RouteConfig(accepts=PaymentOption(
        scheme=SCHEME, pay_to=pay_to, price=price_of(path), network=network, max_timeout_seconds=60,
        extra={"route": path})) for path in routes for method in ("GET", "POST")}
    app = FastAPI()
    x402 = payment_middleware(config, server)

    @app.middleware("http")
    async def pay(request: Request, call_next: Any) -> Any:
        return await x402(request, call_next)

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Any:
        book.requests += 1
        book.paid_requests += "payment-signature" in request.headers
        return await call_next(request)

    @app.api_route("/free", methods=["GET"])
    async def free() -> dict[str, str]:
        return {"free": "yes"}

    for path in routes:
        async def handler(request: Request, _path: str = path) -> dict[str, Any]:
            payload = request.state.payment_payload.payload
            return {"route": _path, "cumulative": payload["cumulativeAmount"]}
        app.add_api_route(path, handler, methods=["GET", "POST"])
    return app


def serve(app: FastAPI) -> AbstractContextManager[str]:
    """Runs `app` with uvicorn (no lifespan) in a thread on loopback; yields its base URL."""
    return serve_asgi(app, lifespan="off")
