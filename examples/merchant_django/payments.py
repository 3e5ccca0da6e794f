"""What settings.py points at: the gateway (started once, from the environment), prices, skip predicate."""

from __future__ import annotations

import os
from decimal import Decimal

from django.http import HttpRequest
from merchant_setup import IMAGE_PRICE, RunningGateway, gateway_from_env, images_asked
from protocolbanks.sdk.gateway import MerchantGateway

_running: list[RunningGateway] = []


def gateway() -> MerchantGateway:
    """Called when Django loads the middleware: raises SettingError when the environment is incomplete."""
    if not _running:
        _, running = gateway_from_env()
        _running.append(running)
    return _running[0].gateway


def stop() -> bool:
    """Stops the chain follower and hands the last vouchers to the relayer (False if some were not delivered)."""
    return all(running.stop() for running in _running)


def image_count(request: HttpRequest) -> int:
    return images_asked(request.GET.get("n"))


def images_price(request: HttpRequest) -> Decimal:
    return IMAGE_PRICE * image_count(request)


def is_test_request(request: HttpRequest) -> bool:
    token = os.environ.get("PB_TEST_BYPASS_TOKEN")
    return bool(token) and request.headers.get("X-Test-Bypass") == token
