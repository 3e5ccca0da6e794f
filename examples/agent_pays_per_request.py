"""An AI agent that pays an API per request, silently: the payer side of merchant_fastapi/_flask/_django.

1. One unpaid request: the 402 says what to pay (amount, payTo, asset, network, contract).
2. A 5 U channel opened with a permit (no approval transaction) and a 24 h / 50 U session key generated locally
   and stored encrypted (payer_setup.py; both are reused on the next run).
3. A budget guard in the client: at most 0.5 U per request, 3 U per minute, to this merchant only.
4. Paid requests, silently (402 -> voucher -> 200 once, then one round trip each: the voucher rides along),
   with hooks on success, failure and low balance, and an automatic top-up below 1 U.
5. The guard refusing a request priced above its cap (nothing is signed); remaining balance; settle (the relayer
   settles this channel in its next round); `--close` asks to close the channel.

    PB_MERCHANT_URL=http://127.0.0.1:8000 PB_PAYER_PRIVATE_KEY=0x59c6...690d PB_KEY_PASSPHRASE=change-me \
        python examples/agent_pays_per_request.py --images 5
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial

import httpx
from payer_setup import PayerSettings, patiently, payer_client
from pb_env import UNIT, SettingError, fail, setting, u, units_of
from protocolbanks.sdk.payer import BudgetPolicy, PaymentEvent, PaymentFailure, PaymentRequiredError, PBStreamClient
from protocolbanks.sdk.transactions import ContractCallFailed
from x402 import PaymentRequired, PaymentRequirements
from x402.http.utils import decode_payment_required_header


def what_it_asks(url: str) -> PaymentRequirements:
    """The first option of an unpaid request's 402 (a standard x402 PAYMENT-REQUIRED header)."""
    response = httpx.get(url)
    if response.status_code != 402 or "PAYMENT-REQUIRED" not in response.headers:
        raise ValueError(f"{url} answered {response.status_code}, not a 402: is it a paid route?")
    required = decode_payment_required_header(response.headers["PAYMENT-REQUIRED"])
    if not isinstance(required, PaymentRequired):
        raise ValueError(f"{url} speaks x402 v1, not v2")
    return required.accepts[0]


def budget_for(offer: PaymentRequirements, merchant_url: str) -> BudgetPolicy:
    """What this agent may sign, whatever a merchant asks: checked in the client before every voucher."""
    return BudgetPolicy(max_per_request=units_of("0.5"), max_per_minute=3 * UNIT,
                        allowed_payees=frozenset({offer.pay_to}),
                        allowed_hosts=frozenset({httpx.URL(merchant_url).host}))


def run(client: PBStreamClient, *, images: int, out: Callable[[str], None] = print) -> list[PaymentEvent]:
    """Pays for `images` images one request at a time, then shows the guard refusing an expensive request."""
    paid: list[PaymentEvent] = []

    def succeeded(event: PaymentEvent) -> None:
        paid.append(event)
        out(f"  paid {u(event.amount)} U (payment {event.payment_id}); the channel can pay {u(event.remaining)} U")

    def failed(failure: PaymentFailure) -> None:
        out(f"  not paid: {failure.reason}")

    client.on_payment_success(succeeded)
    client.on_payment_failure(failed)
    client.on_low_balance(units_of("4.5"), lambda left: out(f"  low balance: {u(left)} U left"))  # high: a demo
    client.enable_auto_top_up(below=UNIT, amount=5 * UNIT)  # from the payer's wallet, on-chain
    for n in range(images):
        body = patiently(partial(client.fetch_json, "GET", "/images", params={"n": 1, "prompt": f"cat {n + 1}"}))
        out(f"image {n + 1}: {body['images'][0]}")
    try:
        client.get("/images", params={"n": 8})  # 0.8 U: above this agent's 0.5 U per request
    except PaymentRequiredError as refused:
        out(f"8 images refused by the client's own budget guard: {refused.reason}")
    return paid


def wait_for_relayer(relayer_url: str, channel_id: bytes, cumulative: int, timeout: float = 10.0) -> None:
    """The merchant forwards vouchers in the background: wait until the relayer holds ours."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(f"{relayer_url}/v1/channels/0x{channel_id.hex()}")
        if answer.status_code == 200 and int(answer.json()["acceptedCumulative"]) >= cumulative:
            return
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description="An AI agent paying per request.")
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--close", action="store_true", help="ask to close the channel at the end")
    options = parser.parse_args()
    try:
        url = setting("PB_MERCHANT_URL", "http://127.0.0.1:8000", what="the merchant's base URL")
        settings = PayerSettings.from_env()
        offer = what_it_asks(f"{url}/images")
        print(f"the merchant asks {u(int(offer.amount))} U per image, to {offer.pay_to} on {offer.network}")
        with payer_client(url, settings, pay_to=offer.pay_to, asset=offer.asset, deposit=5 * UNIT,
                          key_cap=50 * UNIT, max_per_payment=UNIT, budget=budget_for(offer, url)) as client:
            print(f"channel 0x{client.channel_id.hex()}, session key {client.account.refresh().signer}")
            paid = run(client, images=options.images)
            print(f"{len(paid)} payments; remaining balance {u(client.remaining_balance())} U")
            try:
                charged = client.ledger.entry(client.channel_id).charged  # what the merchant confirmed
                wait_for_relayer(settings.relayer_url, client.channel_id, charged)
                print(f"settle: {client.settle()}")
            except httpx.HTTPStatusError as exc:  # e.g. 429: at most one settle request a minute
                print(f"not settled: the relayer answered {exc.response.status_code} {exc.response.text}")
            except httpx.HTTPError as exc:
                print(f"not settled: the relayer at {settings.relayer_url} is unreachable ({exc})")
            if options.close:
                print(f"close requested: withdraw the rest after unix time {client.close()}")
    except SettingError as exc:
        return fail(str(exc), 2)
    except (ValueError, PaymentRequiredError, ContractCallFailed, httpx.HTTPError) as exc:
        return fail(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
