"""Tells the payer about a Sentinel trip by POSTing JSON to a URL it registered (its app, a bot, a pager)."""

from __future__ import annotations

import json
import urllib.request

from protocolbanks.relayer.sentinel.guard import SentinelTrip


class WebhookNotifier:
    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        check_webhook_url(url)
        self.url = url
        self.timeout_s = timeout_s

    def notify(self, trip: SentinelTrip, freeze_tx: str | None) -> None:
        post_trip(self.url, trip, freeze_tx, timeout_s=self.timeout_s)


def check_webhook_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError("webhook URL must be http(s)")
    return url


def post_trip(url: str, trip: SentinelTrip, freeze_tx: str | None, *, timeout_s: float = 5.0) -> None:
    body = json.dumps({
        "event": "sentinel.tripped", "channelId": "0x" + trip.channel_id.hex(), "payer": trip.payer,
        "signer": trip.signer, "epoch": trip.epoch, "reason": trip.reason, "payment": str(trip.payment),
        "atMs": trip.at_ms, "detail": {k: str(v) for k, v in trip.detail.items()}, "freezeTx": freeze_tx,
        "action": "lift the freeze (`protocolbanks payer lift-freeze`) if the spending was yours, or confirm it "
                  "(`protocolbanks payer confirm-freeze`: the key is revoked)",
    }).encode()
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        if response.status >= 300:
            raise RuntimeError(f"webhook answered {response.status}")
