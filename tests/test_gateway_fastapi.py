"""FastAPI merchant on loopback (uvicorn), paid by the x402 library's own client with a pb-channel scheme, against
the in-process chain: the `paid` dependency and the library's middleware path, the same story for both; two
concurrent requests of one channel."""

import asyncio
import threading
from decimal import Decimal
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request
from gateway_harness import (
    IMAGE_PRICE,
    b64json,
    exercise_paid_routes,
    make_env,
    serve_asgi,
    signed_header,
    wants_skip,
)
from protocolbanks.sdk.gateway import PaymentReceipt, PricedRoute
from protocolbanks.sdk.gateway.fastapi import install_payment_middleware, paid, use_gateway


def image_count(request: Request) -> int:
    return int(request.query_params.get("n", "1"))


def image_price(request: Request) -> Decimal:
    return Decimal("0.1") * image_count(request)


def callbacks():
    events = []
    return events, {"on_payment_success": lambda receipt, request: events.append(("paid", receipt.amount)),
                    "on_payment_failure": lambda failure, request: events.append(("failed", failure.code))}


def dependency_app(env, release: threading.Event | None = None, entered: threading.Event | None = None) -> FastAPI:
    app = FastAPI()
    use_gateway(app, env.gateway)
    images = paid(price=image_price, units=image_count, description="generated images")

    @app.get("/free")
    async def free() -> dict:
        return {"free": True}

    @app.get("/images")
    async def generate(receipt: Annotated[PaymentReceipt | None, Depends(images)], n: int = 1) -> dict:
        return {"images": n, "charged": receipt.amount if receipt else 0}

    @app.get("/broken")
    async def broken(receipt: Annotated[PaymentReceipt | None, Depends(paid(price=IMAGE_PRICE))]) -> dict:
        raise HTTPException(status_code=500, detail="model crashed")

    @app.get("/slow")
    def slow(receipt: Annotated[PaymentReceipt | None, Depends(paid(price=IMAGE_PRICE))]) -> dict:
        entered.set()
        assert release.wait(10)
        return {"slow": True}

    return app


def middleware_app(env) -> FastAPI:
    app = FastAPI()
    install_payment_middleware(app, env.gateway, {
        "GET /images": PricedRoute(image_price, units=image_count, description="generated images"),
        "GET /broken": IMAGE_PRICE,
    })

    @app.get("/free")
    async def free() -> dict:
        return {"free": True}

    @app.get("/images")
    async def generate(request: Request, n: int = 1) -> dict:
        payment = getattr(request.state, "payment_payload", None)  # set by the x402 middleware when paid
        return {"images": n, "cumulative": payment.payload["cumulativeAmount"] if payment else None}

    @app.get("/broken")
    async def broken() -> dict:
        raise HTTPException(status_code=500, detail="model crashed")

    return app


def test_fastapi_dependency__pay_resync_not_charged_on_error_skip_frozen(chain, channels, open_channel, guardian):
    events, hooks = callbacks()
    env = make_env(chain, channels, open_channel, skip_payment=lambda request: wants_skip(request.headers), **hooks)
    with serve_asgi(dependency_app(env)) as url:
        asyncio.run(exercise_paid_routes(url, env, guardian))
    assert [amount for kind, amount in events if kind == "paid"] == [2 * IMAGE_PRICE, IMAGE_PRICE, IMAGE_PRICE]
    failures = [code for kind, code in events if kind == "failed"]
    assert failures == ["pb_cumulative_mismatch", "pb_handler_failed", "channel_frozen"]


def test_fastapi_library_middleware__same_story(chain, channels, open_channel, guardian):
    events, hooks = callbacks()
    env = make_env(chain, channels, open_channel, skip_payment=lambda request: wants_skip(request.headers), **hooks)
    with serve_asgi(middleware_app(env)) as url:
        asyncio.run(exercise_paid_routes(url, env, guardian))
    assert [amount for kind, amount in events if kind == "paid"] == [2 * IMAGE_PRICE, IMAGE_PRICE, IMAGE_PRICE]
    assert [code for kind, code in events if kind == "failed"] == ["pb_cumulative_mismatch", "pb_handler_failed",
                                                                    "channel_frozen"]


def test_fastapi__two_concurrent_paid_requests_on_one_channel__one_passes_one_busy(chain, channels, open_channel):
    env = make_env(chain, channels, open_channel)
    release, entered = threading.Event(), threading.Event()
    scheme = env.client_scheme()
    with serve_asgi(dependency_app(env, release, entered)) as url, httpx.Client(base_url=url, timeout=30) as http:
        header = signed_header(http.get("/slow").headers["payment-required"], scheme)
        first: dict = {}
        worker = threading.Thread(target=lambda: first.update(r=http.get("/slow", headers={
            "PAYMENT-SIGNATURE": header})))
        worker.start()
        assert entered.wait(10)  # the first request holds the channel inside its handler
        second = http.get("/slow", headers={"PAYMENT-SIGNATURE": header})
        assert second.status_code == 402
        busy = b64json(second.headers["payment-required"])
        assert busy["error"] == "pb_channel_busy"
        assert busy["accepts"][0]["extra"]["channelState"]["acceptedCumulative"] == "0"
        release.set()
        worker.join(10)
        assert first["r"].status_code == 200 and first["r"].headers["x-payment-amount"] == str(IMAGE_PRICE)
        assert env.accepted() == IMAGE_PRICE
        replay = http.get("/slow", headers={"PAYMENT-SIGNATURE": header})  # the same voucher again: no double pay
        assert replay.status_code == 402
        assert b64json(replay.headers["payment-required"])["error"] == "pb_cumulative_mismatch"
        assert env.accepted() == IMAGE_PRICE
