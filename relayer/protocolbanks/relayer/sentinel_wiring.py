"""Builds the Sentinel's policy and the payer notifications from the relayer's configuration."""

from __future__ import annotations

from dataclasses import replace

from protocolbanks.relayer.config import RelayerConfig
from protocolbanks.relayer.sentinel import HardLimits, SentinelPolicy, SpikeSettings
from protocolbanks.relayer.sentinel.mail_and_telegram import EmailNotifier, TelegramNotifier
from protocolbanks.relayer.sentinel.payer_contacts import PayerContact, PayerNotifier
from protocolbanks.relayer.sentinel.responder import Notifier
from protocolbanks.relayer.sentinel.webhook import WebhookNotifier

LIMIT_FIELDS = ("max_per_payment", "max_per_minute", "max_per_hour", "min_remaining_balance")


def sentinel_policy(config: RelayerConfig) -> SentinelPolicy:
    """Default limits from [sentinel]; a payer's own limits from [payers."0x…"] override them one by one."""
    s = config.sentinel
    defaults = HardLimits(s.max_per_payment, s.max_per_minute, s.max_per_hour, s.min_remaining_balance)
    per_payer = {}
    for payer, entry in config.payers.items():
        overrides = {name: getattr(entry, name) for name in LIMIT_FIELDS if getattr(entry, name) is not None}
        if overrides:
            per_payer[payer.lower()] = replace(defaults, **overrides)
    return SentinelPolicy(
        limits=defaults,
        spike=SpikeSettings(window_s=s.spike_window_s, ratio=s.spike_ratio, floor_per_s=s.spike_floor_per_s),
        per_payer=per_payer,
    )


def notifiers(config: RelayerConfig) -> list[Notifier]:
    """The operator's channels (every trip) and each payer's own contacts (its trips only)."""
    out: list[Notifier] = [WebhookNotifier(config.notify_webhook_url)] if config.notify_webhook_url else []
    mail = None
    if config.notify_email is not None:
        m = config.notify_email
        mail = EmailNotifier(m.host, m.port, m.sender, m.recipient, starttls=m.starttls, username=m.username,
                             password=m.password.get_secret_value() if m.password else None)
        out.append(mail)
    bot = None
    if config.notify_telegram is not None:
        t = config.notify_telegram
        bot = TelegramNotifier(t.bot_token.get_secret_value(), t.chat_id, api_base=t.api_base)
        out.append(bot)
    contacts = {payer: PayerContact(entry.webhook_url, entry.email, entry.telegram_chat_id)
                for payer, entry in config.payers.items()
                if entry.webhook_url or entry.email or entry.telegram_chat_id}
    if contacts:
        out.append(PayerNotifier(contacts, email=mail, telegram=bot))
    return out
