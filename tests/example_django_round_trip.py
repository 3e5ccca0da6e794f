"""Run by tests/test_examples.py in a process of its own (Django's settings are configured once per process): the
Django merchant example, served by werkzeug on loopback with its own settings, paid by the SDK's payer scheme and
transport. The channel is a stand-in snapshot (no chain: the in-process chain cannot be reached from another
process), so signatures, the acceptance rules and the cumulative arithmetic all run for real. Prints one JSON line.
"""

import json
import os
import sys
import threading
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def main() -> None:
    sys.path.insert(0, str(EXAMPLES))
    os.environ["DJANGO_SETTINGS_MODULE"] = "merchant_django.settings"
    os.environ["PB_TEST_BYPASS_TOKEN"] = "test-only"
    import django
    import httpx
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings
    from eth_account import Account
    from protocolbanks.sdk.acceptance import ChannelSnapshot
    from protocolbanks.sdk.gateway import GatewayChannelBook, MerchantGateway
    from protocolbanks.sdk.lane_terms import LaneTerms
    from protocolbanks.sdk.payer import (
        BudgetGuard,
        BudgetPolicy,
        ChannelBinding,
        ChannelLedger,
        PbChannelClientScheme,
        PBSyncTransport,
        SessionKey,
    )
    from protocolbanks.sdk.typed_data import ChannelDomain
    from werkzeug.serving import make_server
    from x402 import x402ClientSync

    django.setup()
    payer, payee, token = (Account.create().address for _ in range(3))
    key, channel_id, terms = SessionKey.generate(), b"\x07" * 32, LaneTerms.for_payer()
    domain = ChannelDomain(31337, "0x" + "cd" * 20)
    snapshot = ChannelSnapshot(channel_id, payer, payee, token, key.address, terms, deposit=10**7, claimed=0)
    book = GatewayChannelBook(domain, lambda cid: snapshot if cid == channel_id else None, payee=payee, token=token)
    gateway = MerchantGateway(book)
    scheme = PbChannelClientScheme(ChannelLedger(), BudgetGuard(BudgetPolicy(max_per_request=10**6)),
                                   [ChannelBinding(channel_id, payee, token, domain, terms, key)])
    with override_settings(PB_GATEWAY=lambda: gateway):
        server = make_server("127.0.0.1", 0, WSGIHandler(), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}"
        transport = PBSyncTransport(scheme.register_with(x402ClientSync()))
        with httpx.Client(base_url=url) as plain, httpx.Client(base_url=url, transport=transport) as paying:
            unpaid = plain.get("/images", params={"n": 3})
            paid = paying.get("/images", params={"n": 3})
            result = {
                "health": plain.get("/health").status_code,
                "unpaid": [unpaid.status_code, unpaid.json()["amount"], unpaid.json()["payTo"] == payee],
                "bypass": plain.get("/images", headers={"X-Test-Bypass": "test-only"}).status_code,
                "paid": [paid.status_code, len(paid.json()["images"]), paid.headers.get("X-Payment-Amount"),
                         paid.headers.get("X-Remaining-Balance")],
                "forbidden": paying.get("/images", params={"prompt": "forbidden"}).status_code,
                "caption": paying.get("/captions").headers.get("X-Payment-Amount"),
                "accepted": book.accepted(channel_id),
            }
        server.shutdown()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
