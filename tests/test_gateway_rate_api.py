"""The merchant's pricing API on loopback: public rates and history, multiplier changes only with the bearer
token, every change recorded with its time; a change reaches the 402s at once while a paid retry of a quote made
just before it is still honoured (x402 needs the retry's amount to equal the 402's), but not a stale one."""

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from flask import Flask
from gateway_harness import b64json, make_env, serve_asgi, serve_wsgi, signed_header
from protocolbanks.sdk.gateway import PricedRoute, RateDesk
from protocolbanks.sdk.gateway.fastapi import install_payment_middleware, rate_router
from protocolbanks.sdk.gateway.flask import rate_blueprint
from protocolbanks.sdk.pricing import RateCard, verify_quote

TOKEN = "merchant-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MINUTE_PRICE = 100_000


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_rate_api__auth_changes_history(monkeypatch):
    monkeypatch.delenv("PB_RATE_API_TOKEN", raising=False)
    clock = FakeClock()
    card = RateCard(MINUTE_PRICE, unit="minute", multipliers={"surge": 1}, clock=clock)
    app = FastAPI()
    app.include_router(rate_router(RateDesk({"rides": card}, token=TOKEN)))
    with serve_asgi(app) as url, httpx.Client(base_url=url) as http:
        cards = http.get("/rates").json()["cards"]
        assert cards["rides"]["unitPrice"] == str(MINUTE_PRICE) and cards["rides"]["version"] == 0

        change = {"value": "1.5"}
        missing = http.put("/rates/rides/multipliers/surge", json=change)
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        wrong = http.put("/rates/rides/multipliers/surge", json=change, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and card.version == 0

        clock.now += timedelta(minutes=5)
        done = http.put("/rates/rides/multipliers/surge", json=change, headers=AUTH)
        assert done.status_code == 200
        assert done.json()["change"] == {"at": "2026-11-22T12:05:00Z", "name": "surge", "old": "1", "new": "1.5",
                                         "version": 1}
        published = http.get("/rates/rides").json()
        assert published["multipliers"] == {"surge": "1.5"} and published["version"] == 1
        assert verify_quote(published, 2, 300_000, at=clock.now)

        clock.now += timedelta(minutes=5)
        added = http.post("/rates/rides/multipliers", json={"name": "promo", "value": "0.5"}, headers=AUTH)
        assert added.status_code == 201 and added.json()["rate"]["multipliers"] == {"promo": "0.5", "surge": "1.5"}
        floaty = http.put("/rates/rides/multipliers/surge", content=b'{"value": 1.25}', headers=AUTH)
        assert floaty.status_code == 422 and "string" in floaty.json()["message"]
        negative = http.put("/rates/rides/multipliers/surge", json={"value": "-1"}, headers=AUTH)
        assert negative.status_code == 422 and card.version == 2
        assert http.get("/rates/nope").status_code == 404

        history = http.get("/rates/rides/history").json()["changes"]
        assert [(c["at"], c["name"], c["old"], c["new"]) for c in history] == [
            ("2026-11-22T12:05:00Z", "surge", "1", "1.5"), ("2026-11-22T12:10:00Z", "promo", None, "0.5")]


def test_rate_api__flask_blueprint(monkeypatch):
    monkeypatch.setenv("PB_RATE_API_TOKEN", TOKEN)  # the token from configuration
    card = RateCard(MINUTE_PRICE, unit="image")
    app = Flask("rates")
    app.register_blueprint(rate_blueprint(RateDesk(card), prefix="/pricing"))
    with serve_wsgi(app) as url, httpx.Client(base_url=url) as http:
        assert http.get("/pricing/default").json()["unit"] == "image"
        assert http.put("/pricing/default/multipliers/peak", json={"value": "2"}).status_code == 401
        assert http.put("/pricing/default/multipliers/peak", json={"value": "2"}, headers=AUTH).status_code == 200
        assert [c["new"] for c in http.get("/pricing/default/history").json()["changes"]] == ["2"]
        assert card.quote(1) == 2 * MINUTE_PRICE


def test_rate_change__reaches_402s__recent_quote_still_paid__stale_one_not(chain, channels, open_channel):
    clock = FakeClock()
    card = RateCard(MINUTE_PRICE, unit="minute", multipliers={"surge": 1}, clock=clock)
    env = make_env(chain, channels, open_channel)
    app = FastAPI()
    app.include_router(rate_router(RateDesk({"rides": card}, token=TOKEN)))
    install_payment_middleware(app, env.gateway, {
        "POST /rides": PricedRoute(card, units=lambda request: int(request.query_params["minutes"]))})

    @app.post("/rides")
    async def ride(minutes: int) -> dict:
        return {"minutes": minutes}

    scheme = env.client_scheme()
    with serve_asgi(app) as url, httpx.Client(base_url=url) as http:
        quoted = http.post("/rides", params={"minutes": 3})
        assert quoted.status_code == 402
        requirement = b64json(quoted.headers["payment-required"])["accepts"][0]
        assert requirement["amount"] == str(3 * MINUTE_PRICE) and requirement["extra"]["units"] == 3
        assert verify_quote(requirement["extra"]["rate"], 3, 3 * MINUTE_PRICE, at=clock.now)

        clock.now += timedelta(seconds=20)
        assert http.put("/rates/rides/multipliers/surge", json={"value": "1.5"}, headers=AUTH).status_code == 200
        new_quote = b64json(http.post("/rides", params={"minutes": 3}).headers["payment-required"])
        assert new_quote["accepts"][0]["amount"] == str(450_000)

        retry = http.post("/rides", params={"minutes": 3}, headers={  # answers the 402 from before the change
            "PAYMENT-SIGNATURE": signed_header(quoted.headers["payment-required"], scheme)})
        assert retry.status_code == 200 and retry.headers["x-payment-amount"] == str(3 * MINUTE_PRICE)
        scheme.confirmed = env.accepted()

        clock.now += timedelta(seconds=120)  # beyond maxTimeoutSeconds (60): that old quote is no longer honoured
        stale = http.post("/rides", params={"minutes": 3}, headers={
            "PAYMENT-SIGNATURE": signed_header(quoted.headers["payment-required"], scheme)})
        assert stale.status_code == 402
        assert b64json(stale.headers["payment-required"])["accepts"][0]["amount"] == str(450_000)
        assert env.accepted() == 3 * MINUTE_PRICE
