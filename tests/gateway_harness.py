"""Shared pieces of the gateway tests: a channel with a session key on the in-process chain, a merchant gateway
over a ChainCache of that chain, real servers on loopback (uvicorn / werkzeug threads), and a small pb-channel
client scheme for the x402 library's own client (`x402Client` + `x402AsyncTransport`): the x402-interop round
trip. The servers run through protocolbanks.devtools.thread_server.

Every framework's test app serves the same routes so `exercise_paid_routes` runs the same story against each:
  GET /free            not paid
  GET /images?n=K      paid, a price function of the request: 0.1 U x K (units = K)
  GET /broken          paid 0.1 U, the handler fails (500): not charged
  any paid route with header `X-Skip-Payment: yes` is served without payment (the skip predicate)
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
from eth_account import Account
from protocolbanks.devtools.thread_server import serve_asgi, serve_in_thread  # noqa: F401 (serve_asgi: for the tests)
from protocolbanks.sdk.chain_view import ChainCache
from protocolbanks.sdk.gateway import GatewayChannelBook, MerchantGateway, RelayerForwarder
from protocolbanks.sdk.typed_data import ChannelDomain, Voucher
from protocolbanks.sdk.x402.wire import SCHEME, VoucherPayload
from werkzeug.serving import make_server
from x402 import PaymentPayload, PaymentRequired, RecoveredResponseResult, x402Client
from x402.http.clients.httpx import x402AsyncTransport
from x402.http.utils import encode_payment_signature_header

UNIT = 10**6
IMAGE_PRICE = UNIT // 10
SKIP_HEADER = {"X-Skip-Payment": "yes"}


def wants_skip(headers: Any) -> bool:
    return headers.get("X-Skip-Payment") == "yes"


def b64json(value: str) -> Any:
    return json.loads(base64.b64decode(value))


@dataclass
class GatewayEnv:
    """A 10 U channel with an 8 U session key, the chain cache that saw it, the merchant's book and gateway."""

    chain: Any
    channel: Any  # conftest.Channel
    key: bytes
    cache: ChainCache
    book: GatewayChannelBook
    gateway: MerchantGateway

    @property
    def token(self) -> str:
        return str(self.channel.token.address)

    def accepted(self) -> int:
        return self.book.accepted(self.channel.id)

    def client_scheme(self) -> PbTestClientScheme:
        return PbTestClientScheme(self.channel.id, self.channel.terms, self.channel.domain, self.key)


def make_env(chain: Any, channels: Any, open_channel: Any, *, deposit: int = 10 * UNIT, total_cap: int = 8 * UNIT,
             forwarder: RelayerForwarder | None = None, accepted_lookup: Any = None,
             **gateway_options: Any) -> GatewayEnv:
    cache = ChainCache(chain.provider.web3, channels.address, from_block=chain.blocks.head.number)
    channel = open_channel(deposit)
    key = Account.create().key
    channel.grant(key, total_cap=total_cap, now=chain.pending_timestamp)
    cache.poll()
    offset = chain.pending_timestamp - time.time()  # the book's clock follows the chain's
    book = GatewayChannelBook(channel.domain, cache.get, payee=channel.payee.address, token=channel.token.address,
                              accepted_lookup=accepted_lookup, clock=lambda: time.time() + offset)
    gateway = MerchantGateway(book, forwarder=forwarder, **gateway_options)
    return GatewayEnv(chain, channel, key, cache, book, gateway)


class PbTestClientScheme:
    """A minimal pb-channel client for the x402 library: signs `confirmed + amount` with the session key, learns
    the charged cumulative from PAYMENT-RESPONSE and resyncs on a corrective 402 (never above what it signed)."""

    scheme = SCHEME

    def __init__(self, channel_id: bytes, terms: Any, domain: Any, key: bytes) -> None:
        self.channel_id, self.terms, self.domain, self.key = channel_id, terms, domain, key
        self.confirmed = 0
        self.signed_max = 0
        self.signed: list[int] = []
        self.scheme_hooks = SimpleNamespace(on_payment_response=self._on_payment_response)

    def payload(self, amount: int) -> dict[str, Any]:
        cumulative = self.confirmed + amount
        self.signed_max = max(self.signed_max, cumulative)
        self.signed.append(cumulative)
        signature = Voucher(self.channel_id, self.terms.epoch, cumulative).sign(self.domain, self.key)
        return VoucherPayload(self.channel_id, cumulative, self.terms, signature).to_dict()

    def create_payment_payload(self, requirements: Any, context: Any = None) -> dict[str, Any]:
        return self.payload(int(requirements.amount))

    def _on_payment_response(self, ctx: Any) -> RecoveredResponseResult | None:
        if ctx.settle_response is not None:
            if ctx.settle_response.success:
                state = ctx.settle_response.extra["channelState"]
                self.confirmed = int(state["chargedCumulativeAmount"])
            return None
        required = ctx.payment_required
        if required is None or required.error != "pb_cumulative_mismatch":
            return None
        state = required.accepts[0].extra["channelState"]
        base = int(state["acceptedCumulative"])
        if base > self.signed_max:
            return None
        self.confirmed = base
        return RecoveredResponseResult()


class RecordingTransport(httpx.AsyncBaseTransport):
    """Below x402AsyncTransport: sees every request on the wire and its answer."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.log: list[tuple[httpx.Request, httpx.Response]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.log.append((request, response))
        return response

    def statuses(self) -> list[int]:
        return [response.status_code for _, response in self.log]

    async def aclose(self) -> None:
        await self.inner.aclose()


def paying_client(base_url: str, scheme: PbTestClientScheme, token: str) -> tuple[httpx.AsyncClient,
                                                                                 RecordingTransport]:
    client = x402Client()
    client.register("eip155:*", scheme)
    client.set_spend_controls({"allowed_assets": [{"network": f"eip155:{scheme.domain.chain_id}", "asset": token,
                                                   "max_amount_per_payment": str(5 * UNIT)}]})
    wire = RecordingTransport()
    return httpx.AsyncClient(transport=x402AsyncTransport(client, wire), base_url=base_url, timeout=30), wire


def signed_header(required_header: str, scheme: PbTestClientScheme) -> str:
    """A PAYMENT-SIGNATURE answering a 402's PAYMENT-REQUIRED header (for hand-made paid requests)."""
    required = PaymentRequired.model_validate(b64json(required_header))
    accepted = required.accepts[0]
    payload = PaymentPayload(payload=scheme.payload(int(accepted.amount)), accepted=accepted,
                             resource=required.resource)
    return encode_payment_signature_header(payload)


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Serves a WSGI app with werkzeug (threaded) on a loopback port from a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    with serve_in_thread(server):
        yield f"http://127.0.0.1:{server.server_port}"


def chain_checked_book(chain: Any, channels: Any, payee: Any, token: Any) -> GatewayChannelBook:
    """A merchant's book that checks every voucher against the chain's current channel state (the cache is polled
    on each lookup, no reorg depth), its clock following the chain's."""
    cache = ChainCache(chain.provider.web3, channels.address, reorg_depth=0)

    def snapshot(channel_id: bytes) -> Any:
        cache.poll()
        return cache.get(channel_id)

    offset = chain.pending_timestamp - time.time()
    return GatewayChannelBook(ChannelDomain(chain.chain_id, channels.address), snapshot, payee=payee.address,
                              token=token.address, clock=lambda: time.time() + offset)


def freeze(env: GatewayEnv, guardian: Any) -> None:
    channels = env.channel.contract
    channels.setGuardian(guardian, sender=env.channel.payer)
    channels.freeze(env.channel.config, sender=guardian)
    env.cache.poll()


async def exercise_paid_routes(base_url: str, env: GatewayEnv, guardian: Any) -> None:
    """The story every framework integration must tell the same way."""
    scheme = env.client_scheme()
    client, wire = paying_client(base_url, scheme, env.token)
    async with client:
        free = await client.get("/free")
        assert free.status_code == 200 and "payment-response" not in free.headers

        async with httpx.AsyncClient(base_url=base_url) as plain:  # unpaid: a standard 402
            unpaid = await plain.get("/images", params={"n": 2})
        assert unpaid.status_code == 402
        required = b64json(unpaid.headers["payment-required"])
        body = unpaid.json()
        assert required["accepts"][0]["amount"] == body["amount"] == str(2 * IMAGE_PRICE)
        assert body["payTo"] == env.channel.payee.address and body["asset"] == env.token
        assert body["network"] == f"eip155:{env.channel.domain.chain_id}" and body["scheme"] == SCHEME
        assert required["accepts"][0]["extra"]["units"] == 2

        paid = await client.get("/images", params={"n": 2})  # 402 -> voucher -> 200
        assert paid.status_code == 200, paid.text
        assert wire.statuses() == [200, 402, 200]
        settle = b64json(paid.headers["payment-response"])
        assert settle["success"] and settle["extra"]["channelState"]["chargedCumulativeAmount"] == str(2 * IMAGE_PRICE)
        assert paid.headers["x-payment-amount"] == str(2 * IMAGE_PRICE)
        assert paid.headers["x-payment-id"] == settle["extra"]["paymentId"]
        assert paid.headers["x-remaining-balance"] == str(8 * UNIT - 2 * IMAGE_PRICE)
        assert "private" in paid.headers["cache-control"]
        assert env.accepted() == 2 * IMAGE_PRICE

        scheme.confirmed = 0  # the payer lost its state: corrective 402 -> resync -> paid
        wire.log.clear()
        again = await client.get("/images", params={"n": 1})
        assert again.status_code == 200 and wire.statuses() == [402, 402, 200]
        corrective = b64json(wire.log[1][1].headers["payment-required"])
        assert corrective["error"] == "pb_cumulative_mismatch"
        assert corrective["accepts"][0]["extra"]["channelState"]["acceptedCumulative"] == str(2 * IMAGE_PRICE)
        assert env.accepted() == 3 * IMAGE_PRICE == scheme.confirmed

        broken = await client.get("/broken")  # the handler fails: released, not charged
        assert broken.status_code == 500 and "x-payment-id" not in broken.headers
        assert env.accepted() == 3 * IMAGE_PRICE
        scheme.confirmed = 3 * IMAGE_PRICE  # the payer never saw a confirmation: same base next time
        wire.log.clear()
        after = await client.get("/images", params={"n": 1})
        assert after.status_code == 200 and wire.statuses() == [402, 200]
        assert env.accepted() == 4 * IMAGE_PRICE

        skipped = await client.get("/images", params={"n": 3}, headers=SKIP_HEADER)
        assert skipped.status_code == 200 and "x-payment-id" not in skipped.headers
        assert env.accepted() == 4 * IMAGE_PRICE

        freeze(env, guardian)  # the Sentinel froze the channel: refused, nothing charged
        wire.log.clear()
        frozen = await client.get("/images", params={"n": 1})
        assert frozen.status_code == 402
        assert b64json(frozen.headers["payment-required"])["error"] == "channel_frozen"
        assert env.accepted() == 4 * IMAGE_PRICE
