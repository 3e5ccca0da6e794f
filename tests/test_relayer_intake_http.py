"""Voucher intake over real HTTP on loopback: acceptance, idempotency, concurrency, every bad input a 4xx."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from eth_account import Account
from protocolbanks.relayer.http_api import build_app
from protocolbanks.relayer.intake import VoucherIntake
from protocolbanks.relayer.store import VoucherStore
from protocolbanks.sdk import ChannelDomain, LaneTerms, Voucher
from protocolbanks.sdk.acceptance import ChannelSnapshot

U = 10**6
DOMAIN = ChannelDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
KEY = Account.create()
TERMS = LaneTerms(ceiling=50 * U, period_cap=20 * U, period_length=3600, valid_until=2**39, epoch=1)
CHANNEL = b"\x0c" * 32
SNAPSHOT = ChannelSnapshot(CHANNEL, "0x0000000000000000000000000000000000000001",
                           "0x0000000000000000000000000000000000000002",
                           "0x0000000000000000000000000000000000000003", KEY.address, TERMS,
                           deposit=30 * U, claimed=0, max_per_payment=5 * U)


def body(cumulative: int, *, key=KEY.key, terms=TERMS, channel=CHANNEL, **extra) -> dict:
    sig = Voucher(channel, terms.epoch, cumulative).sign(DOMAIN, key)
    return {"channelId": "0x" + channel.hex(), "cumulativeAmount": str(cumulative), "terms": hex(terms.pack()),
            "r": "0x" + sig.r.hex(), "vs": "0x" + sig.vs.hex(), **extra}


@asynccontextmanager
async def intake_on_loopback(intake: VoucherIntake) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    """Serves the relayer's HTTP app for `intake` on 127.0.0.1 (random port); yields (client session, base URL)."""
    runner = web.AppRunner(build_app(intake))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            yield session, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def run_with_server(tmp_path, scenario, snapshots=None, payee=None, chain_lag=None):
    """Starts the relayer's HTTP app on 127.0.0.1 (random port), runs `scenario(session, url, intake)`."""
    async def main():
        store = VoucherStore(f"sqlite:///{tmp_path / 'relayer.db'}")
        table = snapshots if snapshots is not None else {CHANNEL: SNAPSHOT}
        intake = VoucherIntake(store, table.get, DOMAIN, payee=payee, chain_lag=chain_lag, max_chain_lag_s=60)
        try:
            async with intake_on_loopback(intake) as (session, url):
                return await scenario(session, url, intake)
        finally:
            store.close()
    return asyncio.run(main())


async def post(session, url, payload, raw: bytes | None = None):
    data = raw if raw is not None else json.dumps(payload).encode()
    async with session.post(url + "/v1/vouchers", data=data, headers={"content-type": "application/json"}) as r:
        return r.status, await r.json()


def test_accept__durable_then_answered_with_remaining(tmp_path):
    async def scenario(session, url, intake):
        status, answer = await post(session, url, body(2 * U))
        assert status == 200 and answer["status"] == "accepted"
        assert (answer["payment"], answer["remaining"]) == (str(2 * U), str(28 * U))
        assert intake.store.progress()[CHANNEL].accepted_cumulative == 2 * U  # on disk already
        status, answer = await post(session, url, body(3 * U))
        assert answer["payment"] == str(U)
    run_with_server(tmp_path, scenario)


def test_lower_or_equal_voucher__idempotent_ack(tmp_path):
    async def scenario(session, url, _):
        await post(session, url, body(3 * U))
        for amount in (3 * U, 2 * U):
            status, answer = await post(session, url, body(amount))
            assert status == 200 and answer["status"] == "stale" and answer["cumulativeAmount"] == str(3 * U)
    run_with_server(tmp_path, scenario)


def test_duplicate_request_id__returns_the_stored_result(tmp_path):
    async def scenario(session, url, _):
        first = await post(session, url, body(U, requestId="abc"))
        again = await post(session, url, body(U, requestId="abc"))
        assert first[1]["paymentId"] == again[1]["paymentId"] and again[1]["status"] == "duplicate"
    run_with_server(tmp_path, scenario)


def test_concurrent_copies_of_one_voucher__one_acceptance(tmp_path):
    async def scenario(session, url, intake):
        answers = await asyncio.gather(*(post(session, url, body(4 * U)) for _ in range(20)))
        statuses = sorted(a[1]["status"] for a in answers)
        assert statuses.count("accepted") == 1 and statuses.count("stale") == 19
        assert intake.store.progress()[CHANNEL].accepted_cumulative == 4 * U
    run_with_server(tmp_path, scenario)


@pytest.mark.parametrize("payload, status, reason", [
    (lambda: body(6 * U), 422, "exceeds_max_per_payment"),
    (lambda: body(U, key=Account.create().key), 403, "signer_not_authorised"),
    (lambda: body(U, channel=b"\x0d" * 32), 404, "unknown_channel"),
    (lambda: body(U, chainId=1), 422, "wrong_chain"),
    (lambda: {**body(U), "vs": "0x" + "00" * 32, "r": "0x" + "00" * 32}, 401, "invalid_signature"),
    (lambda: {**body(U), "cumulativeAmount": 1.5}, 422, "invalid_field"),
    (lambda: {**body(U), "cumulativeAmount": "9" * 100}, 422, "invalid_field"),
    (lambda: {**body(U), "cumulativeAmount": str(2**256)}, 422, "invalid_field"),
    (lambda: {**body(U), "channelId": "0x1234"}, 422, "invalid_field"),
    (lambda: {k: v for k, v in body(U).items() if k not in ("r", "vs")} | {"signature": "0x" + "11" * 63},
     422, "invalid_signature_length"),
    (lambda: [1, 2, 3], 400, "invalid_json"),
])
def test_bad_input__clear_4xx(tmp_path, payload, status, reason):
    async def scenario(session, url, _):
        got_status, answer = await post(session, url, payload())
        assert (got_status, answer["reason"]) == (status, reason)
    run_with_server(tmp_path, scenario)


def test_malformed_and_oversized_bodies__clear_4xx(tmp_path):
    async def scenario(session, url, _):
        assert (await post(session, url, None, raw=b"{not json"))[0] == 400
        status, answer = await post(session, url, None, raw=b"{" + b" " * 20_000 + b"}")
        assert (status, answer["reason"]) == (413, "body_too_large")
        async with session.get(url + "/healthz") as r:
            assert r.status == 200
    run_with_server(tmp_path, scenario)


def test_frozen_channel__refused(tmp_path):
    frozen = {CHANNEL: ChannelSnapshot(**{**SNAPSHOT.__dict__, "frozen": True})}

    async def scenario(session, url, _):
        assert await post(session, url, body(U)) == (409, {
            "status": "rejected", "channelId": "0x" + CHANNEL.hex(), "cumulativeAmount": str(U),
            "reason": "channel_frozen"})
    run_with_server(tmp_path, scenario, frozen)


def test_restart__progress_survives(tmp_path):
    async def first(session, url, _):
        await post(session, url, body(5 * U))
    run_with_server(tmp_path, first)

    async def second(session, url, _):
        _status, answer = await post(session, url, body(5 * U))
        assert answer["status"] == "stale"
    run_with_server(tmp_path, second)


def test_sentinel__spike_refuses_and_reports_once_then_refuses_the_key(tmp_path):
    from protocolbanks.relayer.sentinel import HardLimits, SentinelGuard, SentinelPolicy, SpikeSettings

    trips = []
    clock = {"now": 1_000.0}

    async def main():
        store = VoucherStore(f"sqlite:///{tmp_path / 'sentinel.db'}")
        guard = SentinelGuard(SentinelPolicy(limits=HardLimits(max_per_minute=100 * U),
                                             spike=SpikeSettings(window_s=5, ratio=8, floor_per_s=U // 10,
                                                                 warmup_s=60)), trips.append)
        big = {CHANNEL: ChannelSnapshot(**{**SNAPSHOT.__dict__, "deposit": 10**12, "max_per_payment": 0,
                                           "terms": LaneTerms(10**12, 0, 0, 2**39, 1)})}
        intake = VoucherIntake(store, big.get, DOMAIN, sentinel=guard, clock=lambda: clock["now"])
        await intake.start()
        from protocolbanks.relayer.wire import parse_submission
        cumulative = 0
        statuses = []
        for second in range(120):  # a calm agent: 0.1 U every second for two minutes
            clock["now"] = 1_000.0 + second
            cumulative += U // 10
            statuses.append((await intake.submit(parse_submission(json.dumps(body(cumulative)).encode()))).status)
        assert set(statuses) == {"accepted"}
        for burst in range(40):  # then a runaway script: 2 U ten times a second
            clock["now"] = 1_120.0 + burst / 10
            cumulative += 2 * U
            result = await intake.submit(parse_submission(json.dumps(body(cumulative)).encode()))
            statuses.append(result.reason or result.status)
        await intake.stop()
        store.close()
        return statuses

    statuses = asyncio.run(main())
    first_refusal = next(i for i, s in enumerate(statuses) if s != "accepted")
    assert 120 <= first_refusal < 125  # within half a second of the spike starting
    assert statuses[first_refusal] in ("sentinel_spike", "sentinel_max_per_minute")
    assert set(statuses[first_refusal + 1:]) == {"sentinel_key_tripped"}
    assert len(trips) == 1 and trips[0].channel_id == CHANNEL


def test_voucher_for_another_merchant__refused(tmp_path):
    async def scenario(session, url, _):
        status, answer = await post(session, url, body(U))
        assert (status, answer["reason"]) == (403, "wrong_payee")
    run_with_server(tmp_path, scenario, payee="0x00000000000000000000000000000000000000ff")


def test_metrics__count_vouchers_by_status_and_reason(tmp_path):
    async def scenario(session, url, _):
        await post(session, url, body(U))
        await post(session, url, body(7 * U))  # a 6 U payment: over the 5 U per-payment cap
        await post(session, url, None, raw=b"{")
        async with session.get(url + "/metrics") as r:
            text = await r.text()
        assert 'pb_vouchers_total{reason="",status="accepted"} 1.0' in text
        assert 'pb_vouchers_total{reason="exceeds_max_per_payment",status="rejected"} 1.0' in text
        assert 'pb_vouchers_total{reason="invalid_json",status="rejected"} 1.0' in text
        assert "pb_unsettled_base_units 1e+06" in text
    run_with_server(tmp_path, scenario)


def test_openapi__served_and_names_every_reason_the_intake_can_give(tmp_path):
    from protocolbanks.relayer.http_api import REJECTION_STATUS

    async def scenario(session, url, _):
        async with session.get(url + "/openapi.json") as r:
            document = await r.json()
        reasons = set(document["components"]["schemas"]["Answer"]["properties"]["reason"]["enum"])
        assert set(REJECTION_STATUS) <= reasons and "exceeds_max_per_payment" in reasons
        assert "post" in document["paths"]["/v1/vouchers"]
    run_with_server(tmp_path, scenario)


def test_chain_view_too_old__refused_as_retryable_503_and_health_degraded(tmp_path):
    lag = [5.0]

    async def scenario(session, url, intake):
        assert (await post(session, url, body(U)))[1]["status"] == "accepted"
        async with session.get(url + "/healthz") as r:
            assert (r.status, (await r.json())["chainLagSeconds"]) == (200, 5.0)
        lag[0] = 61.0  # the RPC has been down for a minute: a freeze or close could be hidden from us
        status, answer = await post(session, url, body(2 * U))
        assert (status, answer["reason"]) == (503, "chain_unavailable")
        async with session.get(url + "/healthz") as r:
            assert (r.status, (await r.json())["status"]) == (503, "degraded")
        lag[0] = 0.5  # back
        status, answer = await post(session, url, body(2 * U))
        assert (status, answer["payment"]) == (200, str(U))  # nothing was acknowledged while refused
    run_with_server(tmp_path, scenario, chain_lag=lambda: lag[0])


def test_channel_endpoint__what_the_relayer_holds_and_settle_requests(tmp_path):
    async def scenario(session, url, intake):
        cid = "0x" + CHANNEL.hex()
        async with session.get(f"{url}/v1/channels/{cid}") as r:
            fresh = await r.json()
            assert (r.status, fresh["acceptedCumulative"], fresh["deposit"]) == (200, "0", str(30 * U))
        async with session.post(f"{url}/v1/channels/{cid}/settle") as r:
            assert (r.status, (await r.json())["status"]) == (200, "nothing_to_settle")
        await post(session, url, body(3 * U))
        async with session.get(f"{url}/v1/channels/{cid}") as r:
            held = await r.json()
        assert (held["acceptedCumulative"], held["unsettled"], held["frozen"]) == (str(3 * U), str(3 * U), False)
        async with session.post(f"{url}/v1/channels/{cid}/settle") as r:
            assert (r.status, (await r.json())["status"]) == (202, "queued")
        async with session.post(f"{url}/v1/channels/{cid}/settle") as r:
            assert (r.status, (await r.json())["reason"]) == (429, "too_soon")
        async with session.get(f"{url}/v1/channels/0x{'ee' * 32}") as r:
            assert (r.status, (await r.json())["reason"]) == (404, "unknown_channel")
        async with session.get(f"{url}/v1/channels/0x1234") as r:
            assert (r.status, (await r.json())["reason"]) == (422, "invalid_field")
    run_with_server(tmp_path, scenario)


def test_two_instances_on_one_database__no_payment_counted_twice(tmp_path):
    """Two relayer instances (workers) share the database; each decides from its own memory, and the store's
    optimistic check makes the one that is behind decide again from what the database holds."""
    from protocolbanks.relayer.wire import parse_submission

    async def main():
        url = f"sqlite:///{tmp_path / 'shared.db'}"
        a = VoucherIntake(VoucherStore(url), {CHANNEL: SNAPSHOT}.get, DOMAIN)
        b = VoucherIntake(VoucherStore(url), {CHANNEL: SNAPSHOT}.get, DOMAIN)
        await a.start()
        await b.start()
        try:
            def sub(amount):
                return parse_submission(json.dumps(body(amount)).encode())
            first = await a.submit(sub(2 * U))
            second = await b.submit(sub(3 * U))  # b still believes nothing was accepted
            again = await a.submit(sub(3 * U))  # the same voucher through the other instance
            fourth = await b.submit(sub(5 * U))
        finally:
            await a.stop()
            await b.stop()
        return first, second, again, fourth

    first, second, again, fourth = asyncio.run(main())
    assert (first.status, first.payment) == ("accepted", 2 * U)
    assert (second.status, second.payment) == ("accepted", U)  # not 3 U: 2 of them were already paid through a
    assert again.status == "stale"
    assert (fourth.status, fourth.payment) == ("accepted", 2 * U)
    assert first.payment + second.payment + fourth.payment == 5 * U


def test_batch__each_voucher_answered_in_order_as_if_posted_alone(tmp_path):
    other = b"\x0d" * 32
    snapshots = {CHANNEL: SNAPSHOT, other: SNAPSHOT.__class__(**{**SNAPSHOT.__dict__, "channel_id": other})}

    async def scenario(session, url, intake):
        items = [body(2 * U), body(3 * U, channel=other), body(99 * U), {"channelId": "0x12"}, body(2 * U)]
        async with session.post(url + "/v1/vouchers/batch", json={"vouchers": items}) as r:
            assert r.status == 200
            results = (await r.json())["results"]
        assert [(a["status"], a.get("reason"), a["httpStatus"]) for a in results] == [
            ("accepted", None, 200), ("accepted", None, 200), ("rejected", "exceeds_deposit", 422),
            ("rejected", "invalid_field", 422), ("stale", None, 200)]
        assert intake.store.progress()[other].accepted_cumulative == 3 * U  # durable before the answer
        for bad in ({"vouchers": []}, {"vouchers": "x"}, [1, 2], {"vouchers": [body(U)] * 257}):
            async with session.post(url + "/v1/vouchers/batch", json=bad) as r:
                assert (r.status, (await r.json())["reason"]) == (400, "invalid_json")
        async with session.post(url + "/v1/vouchers", data=b"{" + b" " * 20_000 + b"}") as r:
            assert (r.status, (await r.json())["reason"]) == (413, "body_too_large")  # one voucher: 16 KB
    run_with_server(tmp_path, scenario, snapshots=snapshots)
