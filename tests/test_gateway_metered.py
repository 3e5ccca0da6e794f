"""Metered sessions on loopback (FastAPI router): a rider starts a car rental, ticks vouchers for the minutes used
so far, stops; the merchant checks billed minutes against its own meter (arrears stop the session, billing ahead
is refused) and every tick goes through the channel book (a wrong amount gets the channel state back)."""

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from gateway_harness import make_env, serve_asgi
from protocolbanks.sdk.gateway import MeteredService
from protocolbanks.sdk.gateway.fastapi import metered_router
from protocolbanks.sdk.metering import MeteredCharge
from protocolbanks.sdk.pricing import RateCard, iso_utc
from protocolbanks.sdk.typed_data import Voucher
from protocolbanks.sdk.x402.wire import VoucherPayload

MINUTE_PRICE = 20_000


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def voucher(env, cumulative: int) -> dict:
    signature = Voucher(env.channel.id, env.channel.terms.epoch, cumulative).sign(env.channel.domain, env.key)
    return VoucherPayload(env.channel.id, cumulative, env.channel.terms, signature).to_dict()


def rental(chain, channels, open_channel):
    clock = FakeClock()
    card = RateCard(MINUTE_PRICE, unit="minute", multipliers={"peak": "1.5"}, clock=clock)
    env = make_env(chain, channels, open_channel)
    service = MeteredService(env.gateway, card, unit_seconds=60, clock=clock)
    app = FastAPI()
    app.include_router(metered_router(service, prefix="/rental"))
    return clock, env, app


def test_metered__start_tick_stop__billed_against_the_merchants_meter(chain, channels, open_channel):
    clock, env, app = rental(chain, channels, open_channel)
    with serve_asgi(app) as url, httpx.Client(base_url=url) as http:
        terms = http.get("/rental").json()
        assert terms["unitSeconds"] == 60 and terms["payTo"] == env.channel.payee.address
        card = RateCard.from_published(terms["extra"]["rate"])  # the rider prices minutes from the published card
        started = clock.now
        due = MeteredCharge(card, started_at=started, unit_seconds=60).amount_due
        assert due(1) == 30_000  # 0.02 U x peak 1.5

        start = http.post("/rental/sessions", json={"channelId": "0x" + env.channel.id.hex(),
                                                    "startedAt": iso_utc(started), "units": 1,
                                                    "payment": voucher(env, due(1))})
        assert start.status_code == 201, start.text
        session = start.json()["sessionId"]
        assert start.json()["billedUnits"] == 1 and env.accepted() == due(1)

        clock.now = started + timedelta(minutes=2, seconds=30)  # third minute began
        tick = http.post(f"/rental/sessions/{session}/ticks", json={"units": 3, "payment": voucher(env, due(3))})
        assert tick.status_code == 200 and tick.json()["billedUnits"] == 3 == tick.json()["usedUnits"]
        assert env.accepted() == due(3) == 90_000

        wrong = http.post(f"/rental/sessions/{session}/ticks", json={"units": 4, "payment": voucher(env, due(3))})
        assert wrong.status_code == 402 and wrong.json()["error"] == "pb_cumulative_mismatch"
        assert wrong.json()["channelState"]["acceptedCumulative"] == str(due(3))
        ahead = http.post(f"/rental/sessions/{session}/ticks", json={"units": 6, "payment": voucher(env, due(6))})
        assert ahead.status_code == 422 and ahead.json()["error"] == "pb_meter_ahead"
        assert env.accepted() == due(3)

        clock.now = started + timedelta(minutes=3, seconds=40)
        stop = http.post(f"/rental/sessions/{session}/stop", json={"units": 4, "payment": voucher(env, due(4))})
        assert stop.status_code == 200
        state = stop.json()
        assert (state["usedUnits"], state["billedUnits"], state["chargedAmount"], state["owedAmount"]) == (
            4, 4, str(due(4)), "0")
        assert state["stoppedAt"] == iso_utc(clock.now) and env.accepted() == due(4)
        clock.now += timedelta(minutes=10)  # time after the stop is not billed
        assert http.get(f"/rental/sessions/{session}").json()["usedUnits"] == 4


def test_metered__rider_in_arrears__session_stopped(chain, channels, open_channel):
    clock, env, app = rental(chain, channels, open_channel)
    with serve_asgi(app) as url, httpx.Client(base_url=url) as http:
        due = MeteredCharge(RateCard.from_published(http.get("/rental").json()["extra"]["rate"]),
                            started_at=clock.now, unit_seconds=60).amount_due
        session = http.post("/rental/sessions", json={"channelId": "0x" + env.channel.id.hex(),
                                                      "startedAt": iso_utc(clock.now), "units": 1,
                                                      "payment": voucher(env, due(1))}).json()["sessionId"]
        clock.now += timedelta(minutes=6, seconds=1)  # seven minutes begun, one billed
        late = http.post(f"/rental/sessions/{session}/ticks", json={"units": 2, "payment": voucher(env, due(2))})
        assert late.status_code == 402 and late.json()["error"] == "pb_meter_arrears"
        state = http.get(f"/rental/sessions/{session}").json()
        assert state["stoppedAt"] is not None and state["usedUnits"] == 7 and env.accepted() == due(1)
        assert state["owedAmount"] == str(due(7) - due(1))
        settle_up = http.post(f"/rental/sessions/{session}/ticks", json={"units": 7, "payment": voucher(env, due(7))})
        assert settle_up.status_code == 200 and settle_up.json()["owedAmount"] == "0"  # paying up after the stop

        skewed = http.post("/rental/sessions", json={"channelId": "0x" + env.channel.id.hex(),
                                                     "startedAt": iso_utc(clock.now - timedelta(minutes=5)),
                                                     "units": 1, "payment": voucher(env, due(8))})
        assert skewed.status_code == 422 and skewed.json()["error"] == "pb_meter_start_skew"
