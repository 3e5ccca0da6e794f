"""Payer notifications by e-mail (SMTP, standard library) and by Telegram (Bot API `sendMessage`).

Both take their server from configuration, so tests point them at real local servers (aiosmtpd, a loopback
HTTP server standing in for api.telegram.org).
"""

from __future__ import annotations

import json
import smtplib
import urllib.request
from email.message import EmailMessage

from protocolbanks.relayer.sentinel.guard import SentinelTrip


def describe(trip: SentinelTrip, freeze_tx: str | None) -> str:
    lines = [
        f"ProtocolBanks Sentinel stopped a session key on channel 0x{trip.channel_id.hex()}.",
        f"Reason: {trip.reason}; payment refused: {trip.payment} base units; key {trip.signer} (grant {trip.epoch}).",
        f"Freeze transaction: {freeze_tx}" if freeze_tx else "The key is refused by this merchant's relayer.",
        "If this spending was yours, lift the freeze: protocolbanks payer lift-freeze 0x<channel id>.",
        "If it was not, confirm it: protocolbanks payer confirm-freeze 0x<channel id> (the key is revoked).",
    ]
    return "\n".join(lines)


class EmailNotifier:
    """Sends through one SMTP server: to the operator's `recipient` on every trip (when set), and to a payer's
    own address through `send` (see payer_contacts)."""

    def __init__(self, host: str, port: int, sender: str, recipient: str | None, *, starttls: bool = False,
                 username: str | None = None, password: str | None = None, timeout_s: float = 10.0) -> None:
        self.host, self.port, self.sender, self.recipient = host, port, sender, recipient
        self.starttls, self.username, self.password, self.timeout_s = starttls, username, password, timeout_s

    def notify(self, trip: SentinelTrip, freeze_tx: str | None) -> None:
        if self.recipient:
            self.send(self.recipient, trip, freeze_tx)

    def send(self, recipient: str, trip: SentinelTrip, freeze_tx: str | None) -> None:
        message = EmailMessage()
        message["From"], message["To"] = self.sender, recipient
        message["Subject"] = f"Sentinel stopped a session key ({trip.reason})"
        message.set_content(describe(trip, freeze_tx))
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


class TelegramNotifier:
    """One bot: tells the operator's `chat_id` on every trip (when set), and a payer's own chat through `send`."""

    def __init__(self, bot_token: str, chat_id: str | None, *, api_base: str = "https://api.telegram.org",
                 timeout_s: float = 10.0) -> None:
        self.url = f"{api_base.rstrip('/')}/bot{bot_token}/sendMessage"
        self.chat_id = chat_id
        self.timeout_s = timeout_s

    def notify(self, trip: SentinelTrip, freeze_tx: str | None) -> None:
        if self.chat_id:
            self.send(self.chat_id, trip, freeze_tx)

    def send(self, chat_id: str, trip: SentinelTrip, freeze_tx: str | None) -> None:
        body = json.dumps({"chat_id": chat_id, "text": describe(trip, freeze_tx)}).encode()
        request = urllib.request.Request(self.url, data=body, headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            answer = json.loads(response.read())
        if not answer.get("ok"):
            raise RuntimeError(f"Telegram refused the message: {answer.get('description')}")
