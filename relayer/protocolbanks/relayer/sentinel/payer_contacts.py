"""Tells each payer about its own Sentinel trips at the addresses it registered with the merchant (webhook URL,
e-mail address, Telegram chat), through the transports the relayer is configured with (its SMTP server, its bot).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from protocolbanks.relayer.sentinel.guard import SentinelTrip
from protocolbanks.relayer.sentinel.mail_and_telegram import EmailNotifier, TelegramNotifier
from protocolbanks.relayer.sentinel.webhook import check_webhook_url, post_trip

log = logging.getLogger("protocolbanks.relayer.sentinel")


@dataclass(frozen=True)
class PayerContact:
    webhook_url: str | None = None
    email: str | None = None
    telegram_chat_id: str | None = None

    def __post_init__(self) -> None:
        if self.webhook_url:
            check_webhook_url(self.webhook_url)


class PayerNotifier:
    """A `Notifier` that routes each trip to its payer's own contacts; payers without contacts are skipped.
    Every channel is tried even if another fails; the first failure is raised after all were tried."""

    def __init__(self, contacts: Mapping[str, PayerContact], *, email: EmailNotifier | None = None,
                 telegram: TelegramNotifier | None = None) -> None:
        self.contacts = {payer.lower(): contact for payer, contact in contacts.items()}
        self.email = email
        self.telegram = telegram
        for payer, contact in self.contacts.items():
            if contact.email and email is None:
                log.warning("payer %s gave an e-mail address but no SMTP server is configured", payer)
            if contact.telegram_chat_id and telegram is None:
                log.warning("payer %s gave a Telegram chat but no bot is configured", payer)

    def notify(self, trip: SentinelTrip, freeze_tx: str | None) -> None:
        contact = self.contacts.get(trip.payer.lower())
        if contact is None:
            return
        failures: list[Exception] = []
        if contact.webhook_url:
            _attempt(failures, lambda: post_trip(contact.webhook_url or "", trip, freeze_tx))
        if contact.email and self.email is not None:
            mail = self.email
            _attempt(failures, lambda: mail.send(contact.email or "", trip, freeze_tx))
        if contact.telegram_chat_id and self.telegram is not None:
            bot = self.telegram
            _attempt(failures, lambda: bot.send(contact.telegram_chat_id or "", trip, freeze_tx))
        if failures:
            raise failures[0]


def _attempt(failures: list[Exception], send: Callable[[], None]) -> None:
    try:
        send()
    except Exception as exc:
        failures.append(exc)
