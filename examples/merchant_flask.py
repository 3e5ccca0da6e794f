"""The paid image API with Flask: the `@paid` decorator charges each request, silently, without a chain call.

    GET /health                     free
    GET /captions                   0.01 U, a fixed price
    GET /images?n=3&prompt=a+cat    0.1 U per image: a price function of the request (units = images)

The voucher is verified and the channel reserved before the view runs; the payment is committed when the view
returned a response below 400, else released (not charged). Paid responses carry X-Payment-Id,
X-Payment-Amount and X-Remaining-Balance.

Run it (anvil, `ape run deploy` and `protocolbanks relayer run` first: see examples/README.md):

    PB_PAYEE=0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC PB_PORT=8001 python examples/merchant_flask.py

Flask's built-in server is for development; in production serve `build_app(...)` with any WSGI server.
"""

from __future__ import annotations

import logging
import sys
from decimal import Decimal

from flask import Flask, Request, abort, jsonify, request
from flask.typing import ResponseReturnValue
from merchant_setup import IMAGE_PRICE, gateway_from_env, images_asked, log_payment
from pb_env import SettingError, fail, port_setting
from protocolbanks.sdk.gateway import MerchantGateway
from protocolbanks.sdk.gateway.flask import init_app, paid


def image_count(req: Request) -> int:
    """Images the request asks for (?n=): the units the 402 states and the payer checks."""
    return images_asked(req.args.get("n"))


def images_price(req: Request) -> Decimal:  # 0.1 U per image (merchant_setup.py's price list)
    return IMAGE_PRICE * image_count(req)


def build_app(gateway: MerchantGateway) -> Flask:
    app = Flask(__name__)
    init_app(app, gateway)  # the default gateway of @paid(...) in this app

    @app.get("/health")
    def health() -> ResponseReturnValue:
        return jsonify(status="ok")

    @app.get("/captions")
    @paid(price="0.01", description="one caption", on_payment_success=log_payment)
    def caption() -> ResponseReturnValue:
        return jsonify(caption="a cat asleep on a keyboard")

    @app.get("/images")
    @paid(price=images_price, units=image_count, description="generated images", on_payment_success=log_payment)
    def images() -> ResponseReturnValue:
        prompt = request.args.get("prompt", "a cat")
        if "forbidden" in prompt:
            abort(422, "prompt refused")  # a status >= 400: released, the payer is not charged
        return jsonify(images=[f"<image {i + 1} of {prompt}>" for i in range(image_count(request))])

    return app


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        port = port_setting(8001)
        settings, running = gateway_from_env()
    except SettingError as exc:
        return fail(str(exc), 2)
    print(f"paid images (Flask) on http://127.0.0.1:{port} for {settings.payee}", flush=True)
    with running:  # on the way out: stops following the chain, hands the last vouchers to the relayer
        build_app(running.gateway).run(host="127.0.0.1", port=port, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
