"""The merchant's two paid APIs of the demo, each with its own silent payment gateway.

* Image generation (FastAPI, the `paid` dependency): `POST /v1/images?n=K` costs 0.1 U per image.
* Car rental (FastAPI, `metered_router`): a ride is a metered session billed per started minute from a rate
  card whose "peak" multiplier the merchant changes through its rate API (`rate_router`, bearer token).

Each gateway verifies vouchers locally against a chain view a `ChainFollower` keeps fresh, lets the request
through at once and hands the committed voucher to a `RelayerForwarder` (`POST /v1/vouchers`, off the request
path); a channel it has not seen starts from what the relayer holds (`RelayerChannelLookup`).
"""

# no `from __future__ import annotations`: FastAPI reads the route functions' annotations at run time
import hashlib
import secrets
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from eth_account import Account
from fastapi import Depends, FastAPI, Request
from protocolbanks.devtools.demo_config import DemoSettings, DemoWorld
from protocolbanks.devtools.demo_services import serve_asgi
from protocolbanks.sdk.chain_view import ChainCache
from protocolbanks.sdk.gateway import (
    ChainFollower,
    GatewayChannelBook,
    MerchantGateway,
    MeteredService,
    PaymentReceipt,
    RateDesk,
    RelayerChannelLookup,
    RelayerForwarder,
)
from protocolbanks.sdk.gateway.fastapi import metered_router, paid, rate_router, use_gateway
from protocolbanks.sdk.pricing import RateCard
from protocolbanks.sdk.typed_data import ChannelDomain
from protocolbanks.sdk.x402.wire import VoucherPayload
from pydantic import BaseModel
from web3 import Web3

IMAGES = "image generation"
RIDES = "car rental"
RIDE_CARD = "rides"


@dataclass(frozen=True)
class Payment:
    """One payment a gateway accepted (a paid request or a metered tick)."""

    service: str
    channel_id: bytes
    payer: str
    amount: int
    cumulative: int


@dataclass(frozen=True)
class RefusedVoucher:
    """A voucher the gateway accepted and the relayer refused for good (e.g. its key tripped the Sentinel)."""

    channel_id: bytes
    cumulative: int
    status: int
    reason: str


class PaymentBook:
    """What the merchant's gateways accepted and what the relayer refused; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.payments: list[Payment] = []
        self.refused: list[RefusedVoucher] = []

    def accepted(self, service: str, receipt: PaymentReceipt) -> None:
        if receipt.amount > 0:
            with self._lock:
                self.payments.append(Payment(service, receipt.channel_id, receipt.payer, receipt.amount,
                                             receipt.cumulative))

    def refused_by_relayer(self, voucher: VoucherPayload, status: int, answer: dict[str, Any]) -> None:
        with self._lock:
            self.refused.append(RefusedVoucher(voucher.channel_id, voucher.cumulative, status,
                                               str(answer.get("reason", ""))))

    def of_channel(self, channel_id: bytes) -> list[Payment]:
        with self._lock:
            return [p for p in self.payments if p.channel_id == channel_id]

    def per_service(self) -> dict[str, list[Payment]]:
        grouped: dict[str, list[Payment]] = defaultdict(list)
        with self._lock:
            for payment in self.payments:
                grouped[payment.service].append(payment)
        return dict(grouped)


class GatewayStack:
    """One API's payment gateway: chain view + follower, channel book, forwarder to the relayer."""

    def __init__(self, service: str, world: DemoWorld, *, relayer_url: str, from_block: int, book: PaymentBook,
                 merchant: str) -> None:
        w3 = Web3(Web3.HTTPProvider(world.rpc_url, request_kwargs={"timeout": 10}))
        chain_id = w3.eth.chain_id
        cache = ChainCache(w3, world.channels, from_block=from_block, reorg_depth=0)
        cache.poll()
        self.follower = ChainFollower(cache, interval=0.2).start()
        self.lookup = RelayerChannelLookup(relayer_url)
        channel_book = GatewayChannelBook(ChannelDomain(chain_id, Web3.to_checksum_address(world.channels)),
                                          cache.get, payee=merchant, token=Web3.to_checksum_address(world.token),
                                          accepted_lookup=self.lookup, chain_lag=self.follower.seconds_behind)
        self.forwarder = RelayerForwarder(relayer_url, chain_id, on_rejected=book.refused_by_relayer).start()
        self.gateway = MerchantGateway(channel_book, forwarder=self.forwarder,
                                       on_payment_success=lambda receipt, _request: book.accepted(service, receipt))

    def flush(self, timeout_s: float = 15.0) -> bool:
        """Waits until the relayer has every voucher this gateway committed."""
        return self.forwarder.flush(timeout_s)

    def stop(self) -> None:
        self.gateway.stop()
        self.follower.stop()
        self.lookup.close()


class Prompt(BaseModel):
    prompt: str


def image_api(gateway: MerchantGateway, price: str) -> FastAPI:
    """`POST /v1/images?n=K {"prompt": ...}`: K images at `price` U each, paid through the `paid` dependency."""
    app = FastAPI(title="Image generation (demo)")
    use_gateway(app, gateway)

    def images_asked(request: Request) -> int:
        text = request.query_params.get("n", "1")
        return min(max(int(text), 1), 50) if text.isdigit() else 1

    pay_per_image = paid(price=price, units=images_asked, description="generated images")

    @app.post("/v1/images")
    async def generate(body: Prompt, receipt: Annotated[PaymentReceipt | None, Depends(pay_per_image)],
                       n: int = 1) -> dict[str, Any]:
        count = min(max(n, 1), 50)
        seed = hashlib.sha256(f"{body.prompt}/{receipt.payment_id if receipt else ''}".encode()).hexdigest()
        return {"prompt": body.prompt, "images": [f"https://images.demo/{seed[:12]}-{i}.png" for i in range(count)]}

    return app


def car_api(gateway: MerchantGateway, card: RateCard, desk: RateDesk, minute_seconds: int) -> FastAPI:
    """Rides billed per started minute (`/v1/rides`, start / ticks / stop) and the rate API (`/v1/rates`)."""
    app = FastAPI(title="Car rental (demo)")
    service = MeteredService(gateway, card, unit_seconds=minute_seconds, skew_ticks=2)
    app.include_router(metered_router(service, prefix="/v1/rides"))
    app.include_router(rate_router(desk, prefix="/v1/rates"))
    return app


@dataclass
class MerchantApis:
    image_url: str
    car_url: str
    rate_token: str
    card: RateCard
    stacks: list[GatewayStack]

    @property
    def rides_url(self) -> str:
        return f"{self.car_url}/v1/rides"

    def set_multiplier(self, name: str, value: str) -> dict[str, Any]:
        """The merchant's rate change through its own API (what an operator's dashboard would call)."""
        response = httpx.put(f"{self.car_url}/v1/rates/{RIDE_CARD}/multipliers/{name}", json={"value": value},
                             headers={"Authorization": f"Bearer {self.rate_token}"}, timeout=10)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def flush(self) -> bool:
        delivered = [stack.flush() for stack in self.stacks]  # every stack flushes, even after a failure
        return all(delivered)


@contextmanager
def merchant_apis(world: DemoWorld, settings: DemoSettings, *, relayer_url: str, from_block: int,
                  book: PaymentBook) -> Iterator[MerchantApis]:
    """Starts both APIs with their gateways; on exit stops the servers, then flushes and stops the gateways."""
    merchant = Account.from_key(world.merchant_key).address
    card = RateCard(settings.ride_price, unit="minute", multipliers={"peak": "1"})
    token = secrets.token_urlsafe(16)
    with ExitStack() as stack:
        images = GatewayStack(IMAGES, world, relayer_url=relayer_url, from_block=from_block, book=book,
                              merchant=merchant)
        stack.callback(images.stop)
        rides = GatewayStack(RIDES, world, relayer_url=relayer_url, from_block=from_block, book=book,
                             merchant=merchant)
        stack.callback(rides.stop)
        image_url = stack.enter_context(serve_asgi(image_api(images.gateway, settings.image_price), "images"))
        car_url = stack.enter_context(serve_asgi(
            car_api(rides.gateway, card, RateDesk({RIDE_CARD: card}, token=token), settings.minute_seconds), "cars"))
        yield MerchantApis(image_url, car_url, token, card, [images, rides])
