"""A rider rents a car by the minute: the payer side of merchant_rates.py.

1. The car's terms (GET /meter): the published rate card, the unit length, who to pay, in which token.
2. A channel and a session key to the car company (payer_setup.py), and a budget guard that insists on a
   published rate and checks every quoted amount against it.
3. Unlock: one paid request priced from the "unlocks" card.
4. The ride: a MeteredSession billed per started minute. `start` pays the first minute; a timer signs the next
   cumulative voucher at each minute boundary (no on-chain step in between); `stop` pays what is still due.
   Amounts come from the published card and the rider's own clock: the merchant cannot inflate them.

    PB_MERCHANT_URL=http://127.0.0.1:8003 PB_PAYER_PRIVATE_KEY=0x59c6...690d PB_KEY_PASSPHRASE=change-me \
        python examples/rider_metered.py --seconds 150

Ctrl-C ends the ride early (what was used is still paid).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
from payer_setup import PayerSettings, patiently, payer_client
from pb_env import UNIT, SettingError, fail, setting, u, units_of
from protocolbanks.sdk.payer import (
    BudgetPolicy,
    HttpMeteredMerchant,
    MeteredSession,
    PaymentRefused,
    PaymentRequiredError,
    PBStreamClient,
    TickRecord,
)
from protocolbanks.sdk.pricing import RateCard
from protocolbanks.sdk.transactions import ContractCallFailed


def budget_for(terms: dict[str, Any]) -> BudgetPolicy:
    """Per-request amounts must be the published rate's quote; at most 0.5 U a payment, 5 U an hour."""
    return BudgetPolicy(max_per_request=units_of("0.5"), max_per_hour=5 * UNIT, require_published_rate=True,
                        allowed_payees=frozenset({terms["payTo"]}))


def ride(client: PBStreamClient, meter_url: str, *, seconds: float,
         out: Callable[[str], None] = print) -> MeteredSession:
    """A metered session of about `seconds` of use; returns it stopped (billed_units, billed_amount, ticks)."""

    def ticked(tick: TickRecord) -> None:
        out(f"  minute {tick.billed_units}: paid {u(tick.amount)} U (voucher for {u(tick.cumulative)} U in all)")

    session = MeteredSession(client.scheme, HttpMeteredMerchant(meter_url), on_tick=ticked,
                             on_error=lambda exc: out(f"  ticking stopped: {exc}"))
    session.start()  # pays the first unit; a timer thread ticks at every unit boundary
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        out("  ride ended early")
    session.stop()  # pays what is still due and stops the merchant's meter
    return session


def main() -> int:
    parser = argparse.ArgumentParser(description="Rent a car, billed per minute.")
    parser.add_argument("--seconds", type=float, default=150.0, help="how long the ride lasts")
    parser.add_argument("--car", default="car-7")
    options = parser.parse_args()
    try:
        url = setting("PB_MERCHANT_URL", "http://127.0.0.1:8003", what="the car rental's base URL")
        settings = PayerSettings.from_env()
        terms = httpx.get(f"{url}/meter").raise_for_status().json()
        card = RateCard.from_published(terms["extra"]["rate"])
        print(f"{u(card.quote(1))} U per {card.unit} now ({terms['unitSeconds']} s units), to {terms['payTo']}")
        with payer_client(url, settings, pay_to=terms["payTo"], asset=terms["asset"], deposit=5 * UNIT,
                          key_cap=20 * UNIT, max_per_payment=UNIT, budget=budget_for(terms)) as client:
            print(f"unlocked: {patiently(lambda: client.fetch_json('POST', f'/cars/{options.car}/unlock'))}")
            session = ride(client, f"{url}/meter", seconds=options.seconds)
            print(f"ride over: {session.billed_units} unit(s) billed, {u(session.billed_amount)} U in "
                  f"{len(session.ticks)} vouchers; the channel can still pay {u(client.remaining_balance())} U")
    except SettingError as exc:
        return fail(str(exc), 2)
    except (ValueError, KeyError, PaymentRequiredError, PaymentRefused, ContractCallFailed, httpx.HTTPError) as exc:
        return fail(f"{type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
