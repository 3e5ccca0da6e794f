"""What the demo shows at the end: the facts gathered from the gateways, the relayer's database and the chain,
and the summary a person reads at a glance. Also a watcher that prints each settlement as the relayer confirms
it (the same rows `protocolbanks relayer settlements` lists).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from protocolbanks.devtools.demo_config import Say, short, usd
from protocolbanks.devtools.demo_merchant import PaymentBook
from protocolbanks.relayer import inspection
from protocolbanks.relayer.store import VoucherStore

EXACT_PAYMENT_GAS = 64_850  # x402's "exact" scheme: one transferWithAuthorization per payment (bench/run gateway)


@dataclass(frozen=True)
class ServiceLine:
    service: str
    payments: int
    amount: int
    by_payer: tuple[tuple[str, int, int], ...] = ()  # (payer's name, payments, amount)


@dataclass(frozen=True)
class SettlementLine:
    tx_hash: str
    block: int
    channels: int
    amount: int
    gas_used: int


@dataclass(frozen=True)
class FreezeLine:
    payer_name: str
    channel_id: str
    session_key: str
    reason: str
    detail: dict[str, Any]
    freeze_tx: str | None
    notified: bool  # the webhook listener received the Sentinel's notification


@dataclass(frozen=True)
class PayerLine:
    name: str
    address: str
    deposit: int
    accepted: int  # what the merchant's gateways accepted from it
    settled: int  # redeemed on-chain
    left: int  # still in its channel (deposit - redeemed)
    refusals: tuple[str, ...] = ()


@dataclass(frozen=True)
class DemoReport:
    services: list[ServiceLine]
    settlements: list[SettlementLine]
    freezes: list[FreezeLine]
    payers: list[PayerLine]
    merchant_received: int
    payments_settled: int
    not_settled: int  # accepted by a gateway, refused by the relayer (after a Sentinel trip)
    not_settled_payments: int
    minute_seconds: int
    spike_trips_above: int
    spike_window_s: int
    notes: list[str] = field(default_factory=list)

    @property
    def payments(self) -> int:
        return sum(line.payments for line in self.services)

    @property
    def accepted(self) -> int:
        return sum(line.amount for line in self.services)

    @property
    def settled(self) -> int:
        return sum(line.amount for line in self.settlements)

    @property
    def settlement_gas(self) -> int:
        return sum(line.gas_used for line in self.settlements)

    @property
    def gas_per_payment(self) -> int:
        return self.settlement_gas // self.payments_settled if self.payments_settled else 0


def confirmed_settlements(store: VoucherStore) -> list[SettlementLine]:
    rows = inspection.settlements(store, limit=10_000)
    return [SettlementLine(str(row["txHash"]), int(row["block"] or 0), len(row["items"]), int(row["total"]),
                           int(row["gasUsed"] or 0))
            for row in reversed(rows) if row["status"] == "confirmed"]


def sentinel_trips(store: VoucherStore) -> list[dict[str, Any]]:
    return list(reversed(inspection.sentinel_events(store, limit=1_000)))


class SettlementWatcher:
    """Prints every settlement the relayer confirms, while the story runs."""

    def __init__(self, store: VoucherStore, say: Say, *, interval_s: float = 0.3) -> None:
        self.store = store
        self.say = say
        self.interval_s = interval_s
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pb-demo-settlements", daemon=True)

    def __enter__(self) -> SettlementWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.poll()  # whatever was confirmed in the last moments

    def poll(self) -> None:
        for line in confirmed_settlements(self.store):
            if line.tx_hash in self._seen:
                continue
            self._seen.add(line.tx_hash)
            plural = "channel" if line.channels == 1 else "channels"
            self.say(f"   [relayer] settled {line.channels} {plural} in one transaction: {usd(line.amount)}, "
                     f"gas {line.gas_used:,}, tx {line.tx_hash}")

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.poll()
            except Exception as exc:  # the database is busy or gone: the summary reads it again at the end
                self.say(f"   [relayer] (could not read its settlements: {exc})")


def render(report: DemoReport) -> list[str]:
    """The summary, as lines."""
    out = ["", "=" * 100, "SUMMARY", "=" * 100, "",
           "Payments accepted by the APIs (each one a signed voucher, no transaction, no prompt)"]
    for service in report.services:
        payers = ", ".join(f"{name} {count} / {usd(amount)}" for name, count, amount in service.by_payer)
        out.append(f"   {service.service:<18} {service.payments:>4} payments  {usd(service.amount):>10}   ({payers})")
    out.append(f"   {'total':<18} {report.payments:>4} payments  {usd(report.accepted):>10}")
    if report.not_settled:
        payments = "1 payment" if report.not_settled_payments == 1 else f"{report.not_settled_payments} payments"
        out.append(f"   of which {payments} ({usd(report.not_settled)}) came after the runaway's key tripped the "
                   f"Sentinel and before the relayer's refusal reached the gateway: never settled")
    out += ["", ("Settlements by the merchant's relayer (one redeemBatch transaction each; "
                 "tx hash, block, channels, amount, gas)")]
    for n, line in enumerate(report.settlements, 1):
        out.append(f"   {n}. {line.tx_hash}  block {line.block:<5} {line.channels} ch  {usd(line.amount):>9}  "
                   f"gas {line.gas_used:,}")
    out.append(f"   {len(report.settlements)} transactions settled {report.payments_settled} payments "
               f"({usd(report.settled)}) for {report.settlement_gas:,} gas = {report.gas_per_payment:,} gas per "
               "payment")
    out.append(f"   (paying on-chain per request, x402's exact scheme, costs about {EXACT_PAYMENT_GAS:,} gas each)")
    out += ["", (f"Sentinel (spike detection on each session key; trips above {usd(report.spike_trips_above)} "
                 f"within {report.spike_window_s} s)")]
    if not report.freezes:
        out.append("   no key tripped")
    for freeze in report.freezes:
        rate = freeze.detail.get("short_rate_per_s")
        seen = f" (it was spending {usd(int(rate))}/s)" if isinstance(rate, int) else ""
        out.append(f"   froze the {freeze.payer_name}'s channel {short(freeze.channel_id, 18)} "
                   f"(key {short(freeze.session_key)}): {freeze.reason}{seen}")
        out.append(f"   freeze transaction {freeze.freeze_tx or '(none: no guardian key)'}; webhook notification "
                   f"{'received' if freeze.notified else 'NOT received'}; its further requests were refused")
    out += ["", "Balances (token base units shown as U)",
            (f"   merchant received {usd(report.merchant_received)} on-chain "
             f"({'=' if report.merchant_received == report.settled else '!='} the settlements' total)")]
    for payer in report.payers:
        out.append(f"   {payer.name:<8} {short(payer.address)} deposited {usd(payer.deposit):>9}, "
                   f"paid on-chain {usd(payer.settled):>9}, left in its channel {usd(payer.left):>9}")
    out += ["", f"(a demo minute of the car rental lasted {report.minute_seconds} s)", *report.notes]
    return out


def parse_detail(raw: object) -> dict[str, Any]:
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    return raw if isinstance(raw, dict) else {}


def service_lines(book: PaymentBook, names: dict[str, str], order: list[str]) -> list[ServiceLine]:
    """Payments per service (in `order`), each split by payer (`names`: lower-case address -> name)."""
    lines = []
    for service, payments in sorted(book.per_service().items(), key=lambda item: order.index(item[0])):
        by_payer: dict[str, list[int]] = {}
        for payment in payments:
            totals = by_payer.setdefault(names.get(payment.payer.lower(), payment.payer), [0, 0])
            totals[0] += 1
            totals[1] += payment.amount
        lines.append(ServiceLine(service, len(payments), sum(p.amount for p in payments),
                                 tuple((name, count, amount) for name, (count, amount) in by_payer.items())))
    return lines
