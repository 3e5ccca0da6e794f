"""PBStreamClient / AsyncPBStreamClient on a real chain: open with permit, grant a key, pay silently against the
real merchant gateway (FastAPI dependency) checking vouchers against the chain; hooks, low balance and automatic
top-up, remaining balance, settle, rotate / revoke, close and withdraw."""

import asyncio
from typing import Annotated

import pytest
from conftest import UNIT
from fastapi import Depends, FastAPI, Request
from gateway_harness import chain_checked_book, serve_asgi
from local_servers import json_http_server
from protocolbanks.sdk.gateway import MerchantGateway, PaymentReceipt
from protocolbanks.sdk.gateway.fastapi import paid, use_gateway
from protocolbanks.sdk.payer import (
    FAST_TEST_KDF,
    AsyncPBStreamClient,
    BudgetPolicy,
    NoPayerAccount,
    PaymentRequiredError,
    PBStreamClient,
    SessionKeyStore,
)
from protocolbanks.sdk.pricing import RateCard
from protocolbanks.sdk.transactions import ContractCallFailed

PRICE = 300_000


@pytest.fixture
def merchant(chain, channels, payee, token):
    """The real gateway (FastAPI `paid` dependency): 0.3 U per image from a published rate card, vouchers checked
    against the chain's current channel state. Yields (committed vouchers, paid request count, base URL)."""
    book = chain_checked_book(chain, channels, payee, token)
    committed, paid_requests = [], []
    book.on_commit = committed.append
    app = FastAPI()
    use_gateway(app, MerchantGateway(book))
    images = paid(price=RateCard(PRICE, unit="image"))

    @app.middleware("http")
    async def count(request: Request, call_next):
        if "payment-signature" in request.headers:
            paid_requests.append(request.url.path)
        return await call_next(request)

    @app.get("/images")
    async def generate(receipt: Annotated[PaymentReceipt | None, Depends(images)]) -> dict:
        return {"route": "/images", "cumulative": str(receipt.cumulative) if receipt else None}

    with serve_asgi(app) as url:
        yield committed, paid_requests, url


@pytest.fixture
def relayer():
    with json_http_server({"channelId": "0x..", "settleRequested": True}) as (url, calls):
        yield url, calls


def client_for(cls, url, chain, channels, agent, tmp_path, **options):
    defaults = {"w3": chain.provider.web3, "contract": channels.address, "payer": agent,
                "key_store": SessionKeyStore(tmp_path / "keys", kdf=FAST_TEST_KDF), "passphrase": "pw",
                "budget": BudgetPolicy(max_per_request=UNIT), "ledger": tmp_path / "ledger.json"}
    defaults.update(options)
    return cls(url, **defaults)


def test_sync_client__whole_story(chain, channels, token, payee, agent, merchant, relayer, tmp_path):
    committed, _, url = merchant
    relayer_url, settle_calls = relayer
    client = client_for(PBStreamClient, url, chain, channels, agent, tmp_path, settle_url=relayer_url)
    config = client.open_channel(payee.address, token.address, 5 * UNIT)
    assert token.allowance(agent.address, channels) == 0  # permit: no approval transaction
    key = client.grant_session_key(total_cap=50 * UNIT)  # 24 h / 50 U
    assert channels.channelState(config.as_tuple()).signer == key
    assert client.account.key_store.addresses() == [key]

    events, failures = [], []
    client.on_payment_success(events.append)
    client.on_payment_failure(failures.append)
    for _ in range(3):
        assert client.fetch_json("GET", "/images")["route"] == "/images"
    assert [(e.amount, e.charged_cumulative) for e in events] == [(PRICE, PRICE), (PRICE, 2 * PRICE),
                                                                   (PRICE, 3 * PRICE)]
    assert events[-1].remaining == 5 * UNIT - 3 * PRICE and failures == []
    assert client.remaining_balance() == 5 * UNIT - 3 * PRICE

    # the vouchers are real: the payee redeems the newest one on-chain
    newest = committed[-1]
    channels.redeem(payee, token, (newest.channel_id, newest.cumulative, newest.terms.pack(), newest.signature.r,
                                   newest.signature.vs), sender=payee)
    assert channels.channelState(config.as_tuple()).claimed == 3 * PRICE
    assert client.remaining_balance() == 5 * UNIT - 3 * PRICE

    assert client.settle() == {"channelId": "0x..", "settleRequested": True}
    assert settle_calls == [(f"/v1/channels/0x{config.channel_id.hex()}/settle", {})]

    closes_at = client.close()
    with pytest.raises(ContractCallFailed):
        client.withdraw()  # still in the challenge period
    chain.mine(timestamp=closes_at + 1)  # web3 simulates against the latest block: make time pass there
    before = token.balanceOf(agent.address)
    client.withdraw()
    assert token.balanceOf(agent.address) - before == 5 * UNIT - 3 * PRICE


def test_low_balance_hook_then_unpaid_request_raises(chain, channels, token, payee, agent, merchant, tmp_path):
    _, _, url = merchant
    client = client_for(PBStreamClient, url, chain, channels, agent, tmp_path)
    client.open_channel(payee.address, token.address, UNIT)
    client.grant_session_key(total_cap=50 * UNIT)
    low, failures = [], []
    client.on_low_balance(500_000, low.append)
    client.on_payment_failure(failures.append)
    client.get("/images")
    assert low == []
    client.get("/images")
    client.get("/images")
    assert low == [UNIT - 2 * PRICE]  # once, when it fell below the threshold
    with pytest.raises(PaymentRequiredError) as unpaid:
        client.get("/images")  # 1.2 U > the 1 U deposit: the merchant refuses the voucher
    assert (unpaid.value.amount, unpaid.value.recipient, unpaid.value.reason) == (PRICE, payee.address,
                                                                                 "exceeds_deposit")
    assert [f.reason for f in failures] == ["exceeds_deposit"]


def test_auto_top_up_keeps_paying(chain, channels, token, payee, agent, merchant, tmp_path):
    _, _, url = merchant
    client = client_for(PBStreamClient, url, chain, channels, agent, tmp_path)
    config = client.open_channel(payee.address, token.address, UNIT)
    client.grant_session_key(total_cap=50 * UNIT)
    low = []
    client.on_low_balance(500_000, low.append)
    client.enable_auto_top_up(below=500_000, amount=2 * UNIT)
    for _ in range(6):  # 1.8 U in all: more than the first deposit
        client.get("/images")
    assert channels.channelState(config.as_tuple()).deposit == 3 * UNIT
    assert client.remaining_balance() == 3 * UNIT - 6 * PRICE
    assert low == [UNIT - 2 * PRICE]


def test_budget_refusal_raises_payment_required(chain, channels, token, payee, agent, merchant, tmp_path):
    _, paid_requests, url = merchant
    client = client_for(PBStreamClient, url, chain, channels, agent, tmp_path,
                        budget=BudgetPolicy(max_per_request=PRICE - 1))
    client.open_channel(payee.address, token.address, UNIT)
    failures = []
    client.on_payment_failure(failures.append)
    with pytest.raises(PaymentRequiredError) as unpaid:
        client.get("/images")
    assert (unpaid.value.amount, unpaid.value.reason) == (PRICE, "over_max_per_request")
    assert [f.reason for f in failures] == ["over_max_per_request"] and paid_requests == []


def test_async_client__rotate_and_revoke_keep_paying(chain, channels, token, payee, agent, merchant, tmp_path):
    committed, _, url = merchant
    client = client_for(AsyncPBStreamClient, url, chain, channels, agent, tmp_path)

    async def story():
        config = await client.open_channel(payee.address, token.address, 5 * UNIT)
        first = await client.grant_session_key(total_cap=2 * UNIT, max_per_payment=UNIT)
        await client.get("/images")
        second = await client.rotate_session_key(total_cap=2 * UNIT)
        await client.get("/images")
        await client.revoke_session_key()
        body = await client.fetch_json("GET", "/images")
        remaining = await client.remaining_balance()
        await client.__aexit__()
        return config, first, second, body, remaining

    config, first, second, body, remaining = asyncio.run(story())
    assert len(committed) == 3 and body["cumulative"] == str(3 * PRICE)
    assert [v.terms.epoch for v in committed] == [1, 2, 3]  # each voucher under the lane of its signer
    assert channels.channelState(config.as_tuple()).signer == agent.address
    assert client.account.key_store.addresses() == []  # rotated-away and revoked keys are not kept
    assert first != second and remaining == 5 * UNIT - 3 * PRICE


def test_agent_with_only_a_session_key(chain, channels, token, payee, agent, merchant, tmp_path):
    _, _, url = merchant
    owner = client_for(PBStreamClient, url, chain, channels, agent, tmp_path)
    config = owner.open_channel(payee.address, token.address, 2 * UNIT)
    owner.grant_session_key(total_cap=UNIT)
    agent_only = client_for(PBStreamClient, url, chain, channels, agent, tmp_path, payer=None,
                            channel=config.channel_id, ledger=tmp_path / "agent-ledger.json")
    assert agent_only.get("/images").status_code == 200
    with pytest.raises(NoPayerAccount):
        agent_only.top_up(UNIT)
