"""Car rental priced by rate cards: a peak window, a merchant-set multiplier, the rate API, metered rides.

    rides card     0.02 U per minute, x1.5 from 17:00 to 20:00 UTC ("peak"), times "surge" (1 until you change it)
    unlocks card   0.05 U per unlock
    POST /cars/{car}/unlock        paid per request from the unlocks card (the 402 publishes the card: the payer
                                   checks the amount against it before it signs)
    /meter ...                     metered rides billed per minute of use (rider_metered.py is the payer side)
    GET /rates, /rates/{card}, /rates/{card}/history                 public: what payers verify against
    PUT /rates/{card}/multipliers/{name}  {"value": "1.5"}           needs `Authorization: Bearer $PB_RATE_API_TOKEN`

Every change is recorded with its UTC time; the next 402 (and the next metered session) uses the new rate, and a
paid retry of a quote given just before the change is still honoured.

    PB_PAYEE=0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC PB_RATE_API_TOKEN=s3cret python examples/merchant_rates.py
    PB_RATE_API_TOKEN=s3cret python examples/merchant_rates.py set rides surge 1.5     # from another terminal
    python examples/merchant_rates.py show rides

PB_PORT (default 8003), PB_UNIT_SECONDS (the metered unit, default 60), PB_MERCHANT_URL (for set/show, default
http://127.0.0.1:8003), and merchant_setup.py's settings.
"""

# no `from __future__ import annotations`: FastAPI reads the annotations of the routes at run time
import argparse
import json
import logging
import sys
from datetime import time
from decimal import Decimal
from typing import Annotated, Any

import httpx
import uvicorn
from fastapi import Depends, FastAPI
from merchant_setup import gateway_from_env
from pb_env import SettingError, fail, port_setting, setting, units_of
from protocolbanks.sdk.gateway import MerchantGateway, MeteredService, PaymentReceipt, RateDesk
from protocolbanks.sdk.gateway.fastapi import metered_router, paid, rate_router, use_gateway
from protocolbanks.sdk.pricing import RateCard, TimeWindow


def rate_cards() -> dict[str, RateCard]:
    peak = TimeWindow(time(17, 0), time(20, 0), Decimal("1.5"), "peak")  # UTC; a window may wrap midnight
    return {"rides": RateCard(units_of("0.02"), unit="minute", windows=[peak], multipliers={"surge": "1"}),
            "unlocks": RateCard(units_of("0.05"), unit="unlock")}


def build_app(gateway: MerchantGateway, cards: dict[str, RateCard], *, unit_seconds: int = 60,
              rate_token: str | None = None) -> FastAPI:
    app = FastAPI(title="Car rental")
    use_gateway(app, gateway)
    app.include_router(rate_router(RateDesk(cards, token=rate_token)))  # token None: PB_RATE_API_TOKEN
    app.include_router(metered_router(MeteredService(gateway, cards["rides"], unit_seconds=unit_seconds)))
    unlock_fee = paid(price=cards["unlocks"], description="unlock a car")

    @app.post("/cars/{car}/unlock")
    async def unlock(car: str, receipt: Annotated[PaymentReceipt | None, Depends(unlock_fee)]) -> dict[str, Any]:
        return {"car": car, "unlocked": True, "paymentId": receipt.payment_id if receipt else None}

    return app


def serve() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        port = port_setting(8003)
        unit_seconds = int(setting("PB_UNIT_SECONDS", "60", what="seconds per metered unit"))
        settings, running = gateway_from_env()
    except (SettingError, ValueError) as exc:
        return fail(str(exc), 2)
    print(f"car rental on http://127.0.0.1:{port} for {settings.payee} ({unit_seconds} s per metered unit)",
          flush=True)
    try:
        uvicorn.run(build_app(running.gateway, rate_cards(), unit_seconds=unit_seconds), host="127.0.0.1",
                    port=port, log_level="warning")
    finally:
        running.stop()
    return 0


def change_multiplier(base_url: str, card: str, name: str, value: str, token: str) -> dict[str, Any]:
    """The merchant's rate API: PUT a multiplier (a decimal string, never a float). Raises on a refusal."""
    response = httpx.put(f"{base_url}/rates/{card}/multipliers/{name}", json={"value": value},
                         headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 200:
        raise ValueError(f"rate API answered {response.status_code}: {response.text}")
    answer: dict[str, Any] = response.json()
    return answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Car rental priced by rate cards.")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "set", "show"])
    parser.add_argument("args", nargs="*", help="set: CARD NAME VALUE; show: [CARD]")
    options = parser.parse_args(argv)
    if options.command == "serve":
        return serve()
    base_url = setting("PB_MERCHANT_URL", "http://127.0.0.1:8003", what="the car rental's URL")
    try:
        if options.command == "set":
            if len(options.args) != 3:
                return fail("usage: merchant_rates.py set CARD NAME VALUE   (e.g. set rides surge 1.5)", 2)
            token = setting("PB_RATE_API_TOKEN", what="the bearer token the rate API was started with")
            card, name, value = options.args
            change = change_multiplier(base_url, card, name, value, token=token)["change"]
            print(f"{card} {name}: {change['old']} -> {change['new']} from {change['at']} (v{change['version']})")
        else:
            path = f"/rates/{options.args[0]}/history" if options.args else "/rates"
            print(json.dumps(httpx.get(base_url + path).raise_for_status().json(), indent=2))
    except (SettingError, ValueError, httpx.HTTPError) as exc:
        return fail(str(exc), 2 if isinstance(exc, SettingError) else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
