"""Serve the Django merchant without manage.py:

    PB_PAYEE=0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC python examples/merchant_django

(or `cd examples && python -m merchant_django`). Werkzeug's threaded server, for development; in production serve
`django.core.wsgi.get_wsgi_application()` with any WSGI server (DJANGO_SETTINGS_MODULE=merchant_django.settings).
"""

import logging
import os
import sys
from pathlib import Path


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # examples/: merchant_django, pb_env, ...
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "merchant_django.settings")
    from django.core.wsgi import get_wsgi_application
    from pb_env import SettingError, fail, port_setting
    from werkzeug.serving import make_server

    from merchant_django import payments

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        port = port_setting(8002)
        application = get_wsgi_application()  # loads the middleware, which starts the gateway
    except SettingError as exc:
        return fail(str(exc), 2)
    server = make_server("127.0.0.1", port, application, threaded=True)
    print(f"paid images (Django) on http://127.0.0.1:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if not payments.stop():
            print("warning: some vouchers did not reach the relayer", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
