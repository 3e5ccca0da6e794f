"""Django merchant through its WSGI handler on loopback (werkzeug, threaded), paid by the x402 library's client
with a pb-channel scheme, against the in-process chain: `PBDjangoPaymentMiddleware` driven by settings tells the
shared story; settings values given as dotted paths are resolved."""

import asyncio
from decimal import Decimal

import django
import pytest
from django.conf import settings
from django.http import JsonResponse
from django.urls import path
from gateway_harness import IMAGE_PRICE, exercise_paid_routes, make_env, serve_wsgi, wants_skip

CURRENT: dict = {}  # the gateway of the running test (settings are configured once per process)
SUCCESSES: list = []


def image_count(request) -> int:
    return int(request.GET.get("n", "1"))


def image_price(request) -> Decimal:
    return Decimal("0.1") * image_count(request)


def record_success(receipt, request) -> None:
    SUCCESSES.append((receipt.amount, request.path))


def free(request):
    return JsonResponse({"free": True})


def images(request):
    return JsonResponse({"images": image_count(request)})


def broken(request):
    raise RuntimeError("model crashed")


urlpatterns = [path("free", free), path("images", images), path("broken", broken)]


@pytest.fixture(scope="module")
def django_settings():
    if not settings.configured:
        settings.configure(
            DEBUG=False, SECRET_KEY="pb-gateway-test", ALLOWED_HOSTS=["127.0.0.1", "testserver"], ROOT_URLCONF=__name__,
            INSTALLED_APPS=[], LOGGING_CONFIG=None, USE_TZ=True,
            MIDDLEWARE=["protocolbanks.sdk.gateway.django.PBDjangoPaymentMiddleware"],
            PB_GATEWAY=lambda: CURRENT["gateway"],
            PB_PAID_ROUTES={
                "GET /images": {"price": f"{__name__}.image_price", "units": f"{__name__}.image_count",
                                "description": "generated images"},
                "GET /broken": str(Decimal(IMAGE_PRICE) / 10**6),  # "0.1": a decimal string is a price
            },
            PB_SKIP_PAYMENT=lambda request: wants_skip(request.headers),
            PB_ON_PAYMENT_SUCCESS=f"{__name__}.record_success",
        )
        django.setup()
    return settings


def wsgi_app(env):
    from django.core.handlers.wsgi import WSGIHandler

    CURRENT["gateway"] = env.gateway
    return WSGIHandler()  # loads the middleware, which reads PB_GATEWAY now


def test_django_middleware__pay_resync_not_charged_on_error_skip_frozen(django_settings, chain, channels,
                                                                         open_channel, guardian):
    SUCCESSES.clear()
    env = make_env(chain, channels, open_channel)
    with serve_wsgi(wsgi_app(env)) as url:
        asyncio.run(exercise_paid_routes(url, env, guardian))
    assert SUCCESSES == [(2 * IMAGE_PRICE, "/images"), (IMAGE_PRICE, "/images"), (IMAGE_PRICE, "/images")]


def test_django_adapter__reads_the_request(django_settings):
    from django.test import RequestFactory
    from protocolbanks.sdk.gateway.django import DjangoAdapter

    request = RequestFactory().post("/rides/7?minutes=3&tag=a&tag=b", data=b'{"seats": 2}',
                                    content_type="application/json", HTTP_PAYMENT_SIGNATURE="abc",
                                    HTTP_USER_AGENT="agent/1", HTTP_ACCEPT="application/json")
    adapter = DjangoAdapter(request)
    assert adapter.get_method() == "POST" and adapter.get_path() == "/rides/7"
    assert adapter.get_header("payment-signature") == "abc" and adapter.get_user_agent() == "agent/1"
    assert adapter.get_accept_header() == "application/json"
    assert adapter.get_query_param("minutes") == "3" and adapter.get_query_param("tag") == ["a", "b"]
    assert adapter.get_query_params() == {"minutes": "3", "tag": ["a", "b"]}
    assert adapter.get_query_param("none") is None
    assert adapter.get_body() == {"seats": 2}
    assert adapter.get_url().endswith("/rides/7?minutes=3&tag=a&tag=b")
