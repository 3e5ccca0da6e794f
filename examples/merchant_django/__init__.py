"""A minimal Django merchant: `PBDjangoPaymentMiddleware` charges the routes listed in settings.PB_PAID_ROUTES.

    settings.py   the middleware, the gateway, the paid routes and their prices, the skip predicate, a callback
    payments.py   what the settings point at (the gateway is started once, from the environment)
    views.py      plain Django views: they run only when the request is paid
    urls.py       the URL patterns
    __main__.py   a runner without manage.py: `python examples/merchant_django`

Environment: PB_PAYEE (required), PB_PORT (default 8002), PB_TEST_BYPASS_TOKEN, and merchant_setup.py's.
"""
