"""Tells the payer about a Sentinel trip by POSTing JSON to a URL it registered (its app, a bot, a pager)."""

from __future__ import annotations

import json
import urllib.request

from protocolbanks.relayer.sentinel.guard import SentinelTrip


class WebhookNotifier:
    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("webhook URL must be http(s)")
        self.url = url
        self.timeout_s = timeout_s

    def notify(self, trip: SentinelTrip, freeze_tx: str | None) -> None:
        body = json.dumps({
            "event": "sentinel.tripped", "channelId": "0x" + trip.channel_id.hex(), "payer": trip.payer,
            "signer": trip.signer, "epoch": trip.epoch, "reason": trip.reason, "payment": str(trip.payment),
            "atMs": trip.at_ms, "detail": {k: str(v) for k, v in trip.detail.items()}, "freezeTx": freeze_tx,
            "action": "confirm or lift the freeze from your wallet (unfreeze) or revoke the key",
        }).encode()
        request = urllib.request.Request(self.url, data=body, headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            if response.status >= 300:
                raise RuntimeError(f"webhook answered {response.status}")
