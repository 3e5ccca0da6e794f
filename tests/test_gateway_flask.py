"""Flask merchant on loopback (werkzeug, threaded), paid by the x402 library's client with a pb-channel scheme,
against the in-process chain: the `@paid` decorator tells the shared story; a streamed body that breaks after the
commit leaves a credit that the payer's replay of the same voucher uses."""

import asyncio
from decimal import Decimal

import httpx
import pytest
from flask import Flask, Response, jsonify, request
from gateway_harness import IMAGE_PRICE, b64json, exercise_paid_routes, make_env, serve_wsgi, signed_header, wants_skip
from protocolbanks.sdk.gateway.flask import init_app, paid


def image_count(req) -> int:
    return int(req.args.get("n", "1"))


def flask_app(env) -> Flask:
    app = Flask("pb-gateway-test")
    init_app(app, env.gateway)

    @app.get("/free")
    def free():
        return jsonify(free=True)

    @app.get("/images")
    @paid(price=lambda req: Decimal("0.1") * image_count(req), units=image_count, description="generated images")
    def images():
        return jsonify(images=image_count(request))

    @app.get("/broken")
    @paid(price=IMAGE_PRICE)
    def broken():
        raise RuntimeError("model crashed")

    @app.get("/overloaded")
    @paid(price=IMAGE_PRICE)
    def overloaded():
        return jsonify(error="try later"), 503

    @app.get("/stream")
    @paid(price=IMAGE_PRICE)
    def stream():
        breaks = request.args.get("ok") != "1"

        def body():
            yield b"first chunk;"
            if breaks:
                raise OSError("the renderer died mid-stream")
            yield b"done"

        return Response(body(), mimetype="text/plain")

    return app


def test_flask_decorator__pay_resync_not_charged_on_error_skip_frozen(chain, channels, open_channel, guardian):
    events = []
    env = make_env(chain, channels, open_channel, skip_payment=lambda req: wants_skip(req.headers),
                   on_payment_success=lambda receipt, req: events.append((receipt.amount, req.path)))
    with serve_wsgi(flask_app(env)) as url:
        asyncio.run(exercise_paid_routes(url, env, guardian))
    assert events == [(2 * IMAGE_PRICE, "/images"), (IMAGE_PRICE, "/images"), (IMAGE_PRICE, "/images")]


def test_flask_decorator__error_status_not_charged__broken_stream_leaves_a_credit(chain, channels, open_channel):
    failures = []
    env = make_env(chain, channels, open_channel,
                   on_payment_failure=lambda failure, req: failures.append((failure.code, failure.credit)))
    scheme = env.client_scheme()
    with serve_wsgi(flask_app(env)) as url, httpx.Client(base_url=url, timeout=30) as http:
        header = signed_header(http.get("/stream").headers["payment-required"], scheme)
        busy = http.get("/overloaded", headers={"PAYMENT-SIGNATURE": header})  # a 503 answer is not charged
        assert busy.status_code == 503 and "x-payment-id" not in busy.headers and env.accepted() == 0
        with pytest.raises(httpx.HTTPError):  # the body breaks after the payment was committed
            http.get("/stream", headers={"PAYMENT-SIGNATURE": header})
        assert env.accepted() == IMAGE_PRICE
        assert env.book.credit_of(env.channel.id) == IMAGE_PRICE
        assert failures == [("pb_handler_failed", 0), ("pb_failed_after_commit", IMAGE_PRICE)]

        replay = http.get("/stream", params={"ok": "1"}, headers={"PAYMENT-SIGNATURE": header})
        assert replay.status_code == 200 and replay.text == "first chunk;done"
        assert replay.headers["x-payment-amount"] == "0"  # served against the credit
        assert env.accepted() == IMAGE_PRICE and env.book.credit_of(env.channel.id) == 0

        again = http.get("/stream", params={"ok": "1"}, headers={"PAYMENT-SIGNATURE": header})
        assert again.status_code == 402  # the credit is used up: the same voucher does not pay twice
        assert b64json(again.headers["payment-required"])["error"] == "pb_cumulative_mismatch"
