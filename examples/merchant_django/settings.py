"""Settings of the minimal Django merchant. The payment part is the middleware and the PB_* names."""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")  # set a real one in production
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "merchant_django.urls"
INSTALLED_APPS: list[str] = []
USE_TZ = True

MIDDLEWARE = ["protocolbanks.sdk.gateway.django.PBDjangoPaymentMiddleware"]

PB_GATEWAY = "merchant_django.payments.gateway"  # a MerchantGateway, a function returning one, or a dotted path
PB_PAID_ROUTES = {  # x402 route patterns "METHOD /path" ("*" wildcards) -> price
    "GET /captions": "0.01",  # a fixed price: a decimal string of tokens (0.01 U), a Decimal or int base units
    "GET /images": {  # a price function of the request, and how many units (images) the request uses
        "price": "merchant_django.payments.images_price",
        "units": "merchant_django.payments.image_count",
        "description": "generated images",
    },
}
PB_SKIP_PAYMENT = "merchant_django.payments.is_test_request"  # (request) -> bool: serve without payment
PB_ON_PAYMENT_SUCCESS = "merchant_setup.log_payment"  # (receipt, request): prints the payment
