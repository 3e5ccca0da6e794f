"""The payer's clients against the real merchant gateway (protocolbanks.sdk.gateway) on loopback and the
in-process chain: FastAPI `paid` dependency (async client) and Flask `@paid` decorator (sync client), a rate card
route whose published rate the payer verifies, pre-emptive vouchers, vouchers redeemable on-chain."""

import asyncio
from typing import Annotated

import httpx
import pytest
from conftest import UNIT
from fastapi import Depends, FastAPI, Request
from flask import Flask, jsonify
from flask import request as flask_request
from gateway_harness import chain_checked_book, serve_asgi, serve_wsgi
from protocolbanks.sdk.gateway import MerchantGateway, PaymentReceipt
from protocolbanks.sdk.gateway import fastapi as pb_fastapi
from protocolbanks.sdk.gateway import flask as pb_flask
from protocolbanks.sdk.payer import FAST_TEST_KDF, AsyncPBStreamClient, BudgetPolicy, PBStreamClient, SessionKeyStore
from protocolbanks.sdk.pricing import RateCard

IMAGE = 100_000


@pytest.fixture
def gateway(chain, channels, payee, token):
    return MerchantGateway(chain_checked_book(chain, channels, payee, token))


class Wire(httpx.BaseTransport):
    def __init__(self) -> None:
        self.inner, self.statuses = httpx.HTTPTransport(), []

    def handle_request(self, request):
        response = self.inner.handle_request(request)
        self.statuses.append(response.status_code)
        return response


class AsyncWire(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner, self.statuses = httpx.AsyncHTTPTransport(), []

    async def handle_async_request(self, request):
        response = await self.inner.handle_async_request(request)
        self.statuses.append(response.status_code)
        return response


def options(chain, channels, agent, tmp_path):
    return {"w3": chain.provider.web3, "contract": channels.address, "payer": agent,
            "key_store": SessionKeyStore(tmp_path / "keys", kdf=FAST_TEST_KDF), "passphrase": "pw",
            "budget": BudgetPolicy(max_per_request=UNIT, max_per_minute=5 * UNIT)}


def test_async_client_pays_the_fastapi_dependency(chain, channels, token, payee, agent, gateway, tmp_path):
    card = RateCard(IMAGE, unit="image")
    app = FastAPI()
    pb_fastapi.use_gateway(app, gateway)

    def count(request: Request) -> int:
        return int(request.query_params.get("n", "1"))

    images = pb_fastapi.paid(price=card, units=count)

    @app.get("/images")
    async def generate(receipt: Annotated[PaymentReceipt | None, Depends(images)], n: int = 1) -> dict:
        return {"images": n, "charged": receipt.amount if receipt else 0}

    wire = AsyncWire()
    with serve_asgi(app) as url:
        client = AsyncPBStreamClient(url, inner_transport=wire, **options(chain, channels, agent, tmp_path))

        async def story():
            await client.open_channel(payee.address, token.address, 5 * UNIT)
            await client.grant_session_key(total_cap=2 * UNIT)
            answers = [await client.fetch_json("GET", "/images?n=2")]
            answers.append(await client.fetch_json("GET", "/images?n=2"))
            answers.append(await client.fetch_json("GET", "/images?n=3"))  # another amount: a fresh 402
            remaining = await client.remaining_balance()
            await client.__aexit__()
            return answers, remaining

        answers, remaining = asyncio.run(story())
    assert [a["charged"] for a in answers] == [2 * IMAGE, 2 * IMAGE, 3 * IMAGE]
    assert wire.statuses == [402, 200, 200, 402, 200]  # the second request paid on its first try
    assert gateway.book.accepted(client.channel_id) == 7 * IMAGE
    assert remaining == 2 * UNIT - 7 * IMAGE  # the session key's 2 U cap binds before the 5 U deposit


def test_sync_client_pays_the_flask_decorator_and_vouchers_redeem(chain, channels, token, payee, agent, gateway,
                                                                   tmp_path):
    committed = []
    gateway.book.on_commit = committed.append
    app = Flask("rides")
    pb_flask.init_app(app, gateway)

    @app.post("/rides/minute")
    @pb_flask.paid(price=RateCard(20_000, unit="minute"), units=lambda r: int(r.args.get("minutes", "1")))
    def ride():
        return jsonify(minutes=int(flask_request.args.get("minutes", "1")))

    wire = Wire()
    with serve_wsgi(app) as url:
        client = PBStreamClient(url, inner_transport=wire, **options(chain, channels, agent, tmp_path))
        config = client.open_channel(payee.address, token.address, 2 * UNIT)
        client.grant_session_key(total_cap=UNIT)
        for _ in range(3):
            assert client.fetch_json("POST", "/rides/minute?minutes=5") == {"minutes": 5}
    assert wire.statuses == [402, 200, 200, 200]
    newest = committed[-1]
    assert newest.cumulative == 3 * 5 * 20_000
    channels.redeem(payee, token, (newest.channel_id, newest.cumulative, newest.terms.pack(), newest.signature.r,
                                   newest.signature.vs), sender=payee)
    assert channels.channelState(config.as_tuple()).claimed == 300_000
