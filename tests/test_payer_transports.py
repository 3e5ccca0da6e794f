"""Sync and async auto-pay against a real x402 server on loopback: 402 -> voucher -> 200, pre-emptive vouchers
(one round trip per paid request), a changed price, and the corrective 402 (resync accepted / refused)."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from eth_account import Account
from payer_merchant import MerchantBook, PaidRoute, build_merchant, serve
from protocolbanks.sdk.lane_terms import LaneTerms
from protocolbanks.sdk.payer import (
    BudgetGuard,
    BudgetPolicy,
    ChannelBinding,
    ChannelLedger,
    PBAsyncTransport,
    PbChannelClientScheme,
    PBSyncTransport,
    RefusalReason,
    ResyncRefused,
    SessionKey,
)
from protocolbanks.sdk.pricing import RateCard
from protocolbanks.sdk.typed_data import ChannelDomain
from x402 import x402Client, x402ClientSync
from x402.http.clients.httpx import x402AsyncTransport

PAYEE = Account.create().address
TOKEN = "0x" + "ab" * 20
DOMAIN = ChannelDomain(31337, "0x" + "cd" * 20)
CHANNEL = b"\x01" * 32
PRICE = 100_000


@pytest.fixture
def merchant():
    book = MerchantBook(DOMAIN)
    routes = {"/images": PaidRoute(RateCard(PRICE, unit="image"))}
    with serve(build_merchant(book, routes, pay_to=PAYEE, token=TOKEN)) as url:
        yield book, routes, url


def scheme_with(ledger: ChannelLedger, key: SessionKey | None = None) -> PbChannelClientScheme:
    binding = ChannelBinding(CHANNEL, PAYEE, TOKEN, DOMAIN, LaneTerms.for_payer(1), key or SessionKey.generate())
    return PbChannelClientScheme(ledger, BudgetGuard(BudgetPolicy(max_per_request=10**6)), [binding])


def sync_http(scheme: PbChannelClientScheme, url: str) -> httpx.Client:
    return httpx.Client(transport=PBSyncTransport(scheme.register_with(x402ClientSync())), base_url=url)


def round_trips(book: MerchantBook, call):
    before = book.requests
    response = call()
    return response, book.requests - before


def test_sync__pays_a_402_then_pays_pre_emptively(merchant, tmp_path):
    book, _, url = merchant
    ledger = ChannelLedger(tmp_path / "ledger.json")
    with sync_http(scheme_with(ledger), url) as http:
        assert http.get("/free").json() == {"free": "yes"}
        first, trips = round_trips(book, lambda: http.get("/images"))
        assert (first.status_code, first.json()["cumulative"], trips) == (200, "100000", 2)
        assert "payment-response" in first.headers
        for expected in (200_000, 300_000):
            paid, trips = round_trips(book, lambda: http.get("/images"))
            assert (paid.status_code, paid.json()["cumulative"], trips) == (200, str(expected), 1)
    assert [v.cumulative for v in book.committed] == [100_000, 200_000, 300_000]
    ledger.flush()
    entry = ChannelLedger(tmp_path / "ledger.json").entry(CHANNEL)
    assert (entry.charged, entry.signed_max, entry.units) == (300_000, 300_000, 3)


def test_async__pays_a_402_then_pays_pre_emptively(merchant):
    book, _, url = merchant
    scheme = scheme_with(ChannelLedger())

    async def run():
        transport = PBAsyncTransport(scheme.register_with(x402Client()))
        async with httpx.AsyncClient(transport=transport, base_url=url) as http:
            results = []
            for _ in range(3):
                before = book.requests
                response = await http.get("/images")
                results.append((response.status_code, response.json()["cumulative"], book.requests - before))
            return results

    assert asyncio.run(run()) == [(200, "100000", 2), (200, "200000", 1), (200, "300000", 1)]
    assert scheme.ledger.entry(CHANNEL).charged == 300_000


def test_a_changed_price_falls_back_to_the_new_offer(merchant):
    book, routes, url = merchant
    ledger = ChannelLedger()
    with sync_http(scheme_with(ledger), url) as http:
        http.get("/images")
        routes["/images"].card.set_multiplier("surge", "2")  # published: the client verifies the new quote
        paid, trips = round_trips(book, lambda: http.get("/images"))
        assert (paid.status_code, paid.json()["cumulative"], trips) == (200, "300000", 2)
        again, trips = round_trips(book, lambda: http.get("/images"))
        assert (again.json()["cumulative"], trips) == ("500000", 1)
    assert (ledger.entry(CHANNEL).charged, ledger.entry(CHANNEL).signed_max) == (500_000, 500_000)


def lost_confirmations(book: MerchantBook, url: str, key: SessionKey) -> ChannelLedger:
    """Three paid requests, then the client's ledger as if the last two answers never arrived."""
    with sync_http(scheme_with(ChannelLedger(), key), url) as http:
        for _ in range(3):
            assert http.get("/images").status_code == 200
    ledger = ChannelLedger()
    ledger.record_signed(CHANNEL, 300_000, {"cumulativeAmount": "300000"})
    ledger.confirm(CHANNEL, 100_000)
    assert book.accepted[CHANNEL] == 300_000
    return ledger


def test_corrective_402__base_not_above_what_was_signed_is_followed(merchant):
    book, _, url = merchant
    key = SessionKey.generate()
    ledger = lost_confirmations(book, url, key)
    with sync_http(scheme_with(ledger, key), url) as http:
        paid, trips = round_trips(book, lambda: http.get("/images"))
    # unpaid 402, voucher 200000 -> corrective 402 (merchant: 300000), resync, voucher 400000 -> 200
    assert (paid.status_code, paid.json()["cumulative"], trips) == (200, "400000", 3)
    assert ledger.entry(CHANNEL).charged == 400_000


def test_corrective_402__async_client_resyncs_too(merchant):
    book, _, url = merchant
    key = SessionKey.generate()
    scheme = scheme_with(lost_confirmations(book, url, key), key)

    async def run():
        async with httpx.AsyncClient(transport=PBAsyncTransport(scheme.register_with(x402Client())),
                                     base_url=url) as http:
            return await http.get("/images")

    assert asyncio.run(run()).json()["cumulative"] == "400000"


def test_corrective_402__base_above_anything_signed_is_refused(merchant):
    book, _, url = merchant
    key = SessionKey.generate()
    ledger = lost_confirmations(book, url, key)
    book.lie_base = 10_000_000  # "you already owe me 10 U": never signed
    with sync_http(scheme_with(ledger, key), url) as http, pytest.raises(ResyncRefused) as refused:
        http.get("/images")
    assert refused.value.reason is RefusalReason.MERCHANT_BASE_ABOVE_SIGNED
    entry = ledger.entry(CHANNEL)
    assert (entry.charged, entry.signed_max) == (100_000, 300_000)  # nothing signed above the old maximum
    assert book.accepted[CHANNEL] == 300_000 and len(book.committed) == 3


def test_merchant_claiming_a_charge_above_the_voucher_is_not_believed(merchant):
    book, _, url = merchant
    book.claim_extra_charge = 5_000_000
    ledger = ChannelLedger()
    with sync_http(scheme_with(ledger), url) as http:
        assert http.get("/images").status_code == 200
    assert ledger.entry(CHANNEL).charged == 100_000


def test_concurrent_requests_to_one_merchant_are_serialised(merchant):
    book, _, url = merchant
    ledger = ChannelLedger()
    with sync_http(scheme_with(ledger), url) as http:
        assert http.get("/images").status_code == 200
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: http.get("/images").status_code, range(8)))
    assert statuses == [200] * 8
    assert [v.cumulative for v in book.committed] == [PRICE * n for n in range(1, 10)]
    assert book.requests == 10  # one unpaid 402, then exactly one round trip per paid request


def test_the_scheme_works_in_the_x402_librarys_own_transport(merchant):
    book, _, url = merchant
    key = SessionKey.generate()
    scheme = scheme_with(lost_confirmations(book, url, key), key)

    async def run():
        transport = x402AsyncTransport(scheme.register_with(x402Client()))  # no pre-emptive payment there
        async with httpx.AsyncClient(transport=transport, base_url=url) as http:
            statuses = []
            for _ in range(2):
                before = book.requests
                response = await http.get("/images")
                statuses.append((response.status_code, response.json()["cumulative"], book.requests - before))
            return statuses

    # the library's recovery path runs our corrective-402 hook: 402, 402 (mismatch), 200; then 402, 200
    assert asyncio.run(run()) == [(200, "400000", 3), (200, "500000", 2)]


def test_a_refused_offer_is_not_remembered_for_the_route(merchant):
    book, routes, url = merchant
    binding = ChannelBinding(CHANNEL, PAYEE, TOKEN, DOMAIN, LaneTerms.for_payer(1), SessionKey.generate())
    scheme = PbChannelClientScheme(ChannelLedger(), BudgetGuard(BudgetPolicy(max_per_request=150_000)), [binding])
    with httpx.Client(transport=PBSyncTransport(scheme.register_with(x402ClientSync())), base_url=url) as http:
        assert http.get("/images").status_code == 200
        routes["/images"].card.set_multiplier("surge", "2")  # 0.2 U: above this client's budget per request
        with pytest.raises(Exception, match=r"max_per_request|budget|exceeds"):
            http.get("/images")
        routes["/images"].card.set_multiplier("surge", "1")  # back to 0.1 U: the route is asked afresh
        paid, trips = round_trips(book, lambda: http.get("/images"))
        assert (paid.status_code, paid.json()["cumulative"], trips) == (200, "200000", 2)
