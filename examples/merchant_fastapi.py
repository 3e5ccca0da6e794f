"""A paid image API with FastAPI: the `paid` dependency charges each request, silently, without a chain call.

    GET /health                     free
    GET /captions                   0.01 U, a fixed price
    GET /images?n=3&prompt=a+cat    0.1 U per image: a price function of the request (units = images)

An unpaid request gets a 402 saying what to pay (PAYMENT-REQUIRED header and a JSON body); a paid one is served
at once with PAYMENT-RESPONSE, X-Payment-Id, X-Payment-Amount and X-Remaining-Balance; a handler that raises is
not charged. Committed vouchers go to the relayer in the background (merchant_setup.py).

Run it (anvil, `ape run deploy` and `protocolbanks relayer run` first: see examples/README.md):

    PB_PAYEE=0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC python examples/merchant_fastapi.py

PB_PORT (default 8000); PB_TEST_BYPASS_TOKEN: requests with the header `X-Test-Bypass: <token>` are served
without payment (the skip predicate, for your own tests; leave it unset in production).
"""

# no `from __future__ import annotations`: FastAPI reads the annotations of the routes at run time
import logging
import os
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from merchant_setup import IMAGE_PRICE, MAX_IMAGES, gateway_from_env, images_asked
from pb_env import SettingError, fail, port_setting, u
from protocolbanks.sdk.gateway import MerchantGateway, PaymentReceipt
from protocolbanks.sdk.gateway.fastapi import paid, use_gateway


def image_count(request: Request) -> int:
    """Images the request asks for (?n=): the units the 402 states and the payer checks."""
    return images_asked(request.query_params.get("n"))


def images_price(request: Request) -> Decimal:  # 0.1 U per image (merchant_setup.py's price list)
    return IMAGE_PRICE * image_count(request)


def log_payment(receipt: PaymentReceipt, request: Any) -> None:  # the payment callback
    print(f"paid {u(receipt.amount)} U by {receipt.payer} (payment {receipt.payment_id}); "
          f"the channel can still pay {u(receipt.remaining)} U", flush=True)


def bypass(token: str | None) -> Callable[[Request], bool] | None:
    if not token:
        return None
    return lambda request: request.headers.get("X-Test-Bypass") == token


def build_app(gateway: MerchantGateway, *, bypass_token: str | None = None) -> FastAPI:
    app = FastAPI(title="Paid images")
    use_gateway(app, gateway)  # the default gateway of paid(...) here, and the 402 rendering
    skip = bypass(bypass_token)
    caption_fee = paid(price="0.01", description="one caption", skip_payment=skip, on_payment_success=log_payment)
    image_fee = paid(price=images_price, units=image_count, description="generated images", skip_payment=skip,
                     on_payment_success=log_payment)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/captions")
    async def caption(receipt: Annotated[PaymentReceipt | None, Depends(caption_fee)]) -> dict[str, Any]:
        return {"caption": "a cat asleep on a keyboard", "paymentId": receipt.payment_id if receipt else None}

    @app.get("/images")
    async def images(receipt: Annotated[PaymentReceipt | None, Depends(image_fee)],
                     n: Annotated[int, Query(ge=1, le=MAX_IMAGES)] = 1, prompt: str = "a cat") -> dict[str, Any]:
        if "forbidden" in prompt:
            raise HTTPException(422, "prompt refused")  # raised after payment: released, the payer is not charged
        return {"images": [f"<image {i + 1} of {prompt}>" for i in range(n)],
                "paymentId": receipt.payment_id if receipt else None}

    return app


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        port = port_setting(8000)
        settings, running = gateway_from_env()
    except SettingError as exc:
        return fail(str(exc), 2)
    print(f"paid images on http://127.0.0.1:{port} for {settings.payee}, relayer {settings.relayer_url or 'off'}",
          flush=True)
    with running:  # on the way out: stops following the chain, hands the last vouchers to the relayer
        uvicorn.run(build_app(running.gateway, bypass_token=os.environ.get("PB_TEST_BYPASS_TOKEN")),
                    host="127.0.0.1", port=port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
