"""Metered sessions for DePIN (a rented car, a charging point): billed per minute (or any unit) of actual use.

`start()` reads the merchant's terms (rate card, unit length, rounding, payee, token, contract) and opens a session
paying the first unit(s) at once; from then on each **tick** (a timer thread, or `tick(now)` called by the app or a
test) signs the next cumulative voucher for the units used since the last tick and sends it to the merchant. No
on-chain step happens in between; the relayer settles the newest voucher later. `stop()` bills what is still due
and stops the merchant's meter.

Amounts come from the merchant's *published* card, each unit priced at the instant it began, volume counted from
the session's first unit (`protocolbanks.sdk.metering.MeteredCharge`), computed on the payer's side from the
payer's own start time: the merchant cannot inflate them. Before each tick the session reads the merchant's terms
again and applies multiplier changes published since (a newer card `version`) from their `effectiveAt` on, so a
rate change mid-session (peak x1.5) prices the units that begin after it, as the merchant does; units already
billed keep their price. The budget guard still applies its per-request cap,
spend windows and merchant allow-list to every tick, and the ledger's rules to every base.

Wire (the gateway's `protocolbanks.sdk.gateway.metered`, JSON, amounts as decimal strings):
    GET  {base}                      -> {"network", "asset", "payTo", "unitSeconds", "rounding", "extra"}
    POST {base}/sessions             {"channelId", "startedAt", "units", "payment"} -> 201 {"sessionId", ...}
    POST {base}/sessions/{id}/ticks  {"units": billed so far, "payment": <voucher payload>} -> 200 state
    POST {base}/sessions/{id}/stop   {"units", "payment"} (or {}) -> 200 state
A refusal is `{"error": code, ...}`; `pb_cumulative_mismatch` carries `channelState` (resync, one retry).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx
from protocolbanks.sdk.metering import MeteredCharge, MeterRounding, UsageMeter
from protocolbanks.sdk.payer.budget import PaymentAsk
from protocolbanks.sdk.payer.client_scheme import ChannelBinding, PbChannelClientScheme
from protocolbanks.sdk.payer.errors import PaymentRequiredError, RefusalReason
from protocolbanks.sdk.pricing import PublishedRate, RateCard
from protocolbanks.sdk.pricing.utc import Clock, as_utc, iso_utc, utc_now
from protocolbanks.sdk.x402.wire import CUMULATIVE_MISMATCH, SCHEME, ChannelStateExtra, VoucherPayload, WireError
from x402 import PaymentRequirements

log = logging.getLogger(__name__)

Answer = tuple[int, dict[str, Any]]  # HTTP status, JSON body


class MeteredMerchant(Protocol):
    """How a MeteredSession talks to the merchant (HttpMeteredMerchant: the gateway's HTTP routes)."""

    host: str | None

    def terms(self) -> dict[str, Any]: ...

    def start(self, body: dict[str, Any]) -> Answer: ...

    def tick(self, session_id: str, body: dict[str, Any]) -> Answer: ...

    def stop(self, session_id: str, body: dict[str, Any]) -> Answer: ...


class HttpMeteredMerchant:
    """The merchant's metered resource at `base_url` (e.g. `https://cars.example/meter`)."""

    def __init__(self, base_url: str, *, client: httpx.Client | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = client or httpx.Client(timeout=timeout)
        self.host: str | None = httpx.URL(self.base_url).netloc.decode("ascii").lower()

    def terms(self) -> dict[str, Any]:
        response = self.http.get(self.base_url)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def start(self, body: dict[str, Any]) -> Answer:
        return self._post(f"{self.base_url}/sessions", body)

    def tick(self, session_id: str, body: dict[str, Any]) -> Answer:
        return self._post(f"{self.base_url}/sessions/{session_id}/ticks", body)

    def stop(self, session_id: str, body: dict[str, Any]) -> Answer:
        return self._post(f"{self.base_url}/sessions/{session_id}/stop", body)

    def _post(self, url: str, body: dict[str, Any]) -> Answer:
        response = self.http.post(url, json=body)
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        return response.status_code, answer if isinstance(answer, dict) else {}


@dataclass(frozen=True)
class TickRecord:
    tick: int  # 1 = the start
    units: int  # billed by this tick
    billed_units: int  # billed by the session so far
    amount: int  # this tick's amount (base units)
    cumulative: int  # the voucher's cumulative amount on the channel
    at: datetime


class MeteredSession:
    """One metered session on the payer's channel with `merchant`."""

    def __init__(self, scheme: PbChannelClientScheme, merchant: MeteredMerchant, *, clock: Clock = utc_now,
                 on_tick: Callable[[TickRecord], None] | None = None,
                 on_error: Callable[[Exception], None] | None = None) -> None:
        self.scheme = scheme
        self.merchant = merchant
        self.clock = clock
        self.on_tick = on_tick
        self.on_error = on_error
        self.session_id: str | None = None
        self.meter: UsageMeter | None = None
        self.charge: MeteredCharge | None = None
        self.ticks: list[TickRecord] = []
        self.error: Exception | None = None
        self._requirement: PaymentRequirements | None = None
        self._rate_version = -1  # version of the merchant's published card the session prices with
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def billed_units(self) -> int:
        return self.meter.billed_units if self.meter else 0

    @property
    def billed_amount(self) -> int:
        return self.charge.amount_due(self.billed_units) if self.charge else 0

    def start(self, *, now: datetime | None = None, auto: bool = True) -> str:
        """Opens the session at `now` (default: the clock), paying what is due at once; with `auto` a timer
        thread ticks at every unit boundary. Returns the merchant's session id."""
        moment = as_utc(now) if now is not None else self.clock()
        terms = self.merchant.terms()
        requirement = PaymentRequirements(
            scheme=SCHEME, network=str(terms.get("network")), asset=str(terms.get("asset")), amount="0",
            pay_to=str(terms.get("payTo")), max_timeout_seconds=60, extra=dict(terms.get("extra") or {}))
        binding = self.scheme.binding_for(requirement)
        rate = requirement.extra.get("rate")
        if not isinstance(rate, dict):
            raise PaymentRequiredError(amount=None, recipient=requirement.pay_to,
                                       reason=RefusalReason.RATE_NOT_PUBLISHED.value, url="metered session start")
        unit_seconds = int(terms.get("unitSeconds", 60))
        self.meter = UsageMeter(unit_seconds, MeterRounding(terms.get("rounding", "up")), clock=self.clock)
        self.meter.start(moment)
        self.charge = MeteredCharge(RateCard.from_published(rate), started_at=moment, unit_seconds=unit_seconds)
        self._rate_version = self.charge.card.version
        self._requirement = requirement
        with self._lock:
            due = self.meter.due_ticks(moment)
            body = {"channelId": "0x" + binding.channel_id.hex(), "startedAt": iso_utc(moment), "units": due}
            record = self._bill(binding, moment, due, body, self.merchant.start)
        if record is not None and self.on_tick is not None:
            self.on_tick(record)
        if auto:
            self._thread = threading.Thread(target=self._run, name=f"pb-metered-{self.session_id}", daemon=True)
            self._thread.start()
        assert self.session_id is not None
        return self.session_id

    def tick(self, now: datetime | None = None) -> TickRecord | None:
        """Bills the units used by `now` and not billed yet (None when there are none)."""
        with self._lock:
            binding, moment, due = self._due(now)
            if due == 0:
                return None
            self._learn_rate_changes()
            session = self._session()
            record = self._bill(binding, moment, due, {},
                                lambda payload: self.merchant.tick(session, payload))
        if record is not None and self.on_tick is not None:
            self.on_tick(record)
        return record

    def stop(self, now: datetime | None = None) -> int:
        """Stops the meter, pays what is still due, stops the merchant's meter; returns the billed units."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        moment = as_utc(now) if now is not None else self.clock()
        with self._lock:
            session = self._session()
            assert self.meter is not None
            if self.meter.running:
                self.meter.stop(moment)
            binding, moment, due = self._due(moment)
            if due:
                self._learn_rate_changes()
                self._bill(binding, moment, due, {}, lambda payload: self.merchant.stop(session, payload))
            else:
                self._check(self.merchant.stop(session, {}), None)
            return self.meter.billed_units

    # ------------------------------------------------------------------ internals

    def _learn_rate_changes(self) -> None:
        """Applies the multipliers of a newer published card to the session's card from the time they took effect
        (a unit is priced when it begins, so only units beginning after a change are affected). A card that
        cannot be read leaves the prices as they were (the merchant then refuses the tick if it disagrees)."""
        assert self.charge is not None
        try:
            extra = self.merchant.terms().get("extra") or {}
            published = PublishedRate.from_dict(extra.get("rate") if isinstance(extra, dict) else None)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("merchant's rate card unreadable; pricing with the last one", extra={"error": str(exc)})
            return
        if published.version <= self._rate_version:
            return
        card = self.charge.card
        now_set = {**published.multipliers, **{window.name: window.multiplier for window in published.windows}}
        try:
            for name, value in now_set.items():
                if card.multipliers_at(published.effective_at).get(name) != value:
                    card.set_multiplier(name, value, at=published.effective_at)
        except ValueError as exc:  # dated before what the session already knows: not a newer card after all
            log.warning("merchant's rate change not applied", extra={"error": str(exc)})
            return
        self._rate_version = published.version
        log.info("merchant's rate card changed", extra={"session": self.session_id, "version": published.version})

    def _due(self, now: datetime | None) -> tuple[ChannelBinding, datetime, int]:
        if self.meter is None or self._requirement is None:
            raise RuntimeError("the session has not started")
        moment = as_utc(now) if now is not None else self.clock()
        return self.scheme.binding_for(self._requirement), moment, self.meter.due_ticks(moment)

    def _session(self) -> str:
        if self.session_id is None:
            raise RuntimeError("the session has not started")
        return self.session_id

    def _bill(self, binding: ChannelBinding, moment: datetime, due: int, body: dict[str, Any],
              send: Callable[[dict[str, Any]], Answer]) -> TickRecord | None:
        """Signs the voucher for `due` more units and sends it with `body`; one resync on a corrective answer."""
        assert self.meter is not None and self.charge is not None
        billed = self.meter.billed_units
        amount = self.charge.amount_due(billed + due) - self.charge.amount_due(billed)
        ask = PaymentAsk(amount=amount, pay_to=binding.pay_to, host=self.merchant.host, units=due,
                         client_priced=True)
        for attempt in range(2):
            payload = self.scheme.sign(binding, ask) if amount else None
            status, answer = send({**body, "units": billed + due, **({"payment": payload} if payload else {})})
            state = _state_of(answer)
            if status == 402 and answer.get("error") == CUMULATIVE_MISMATCH and state is not None and attempt == 0:
                self.scheme.ledger.resync(binding.channel_id, state.charged_cumulative)  # ResyncRefused if above
                continue
            self._check((status, answer), amount)
            if payload is not None:
                self.scheme.confirm(VoucherPayload.from_dict(payload), None, amount=amount, payment_id=None)
            if due == 0:
                return None
            self.meter.mark_billed(due, at=moment)
            record = TickRecord(len(self.ticks) + 1, due, billed + due, amount,
                                int(payload["cumulativeAmount"]) if payload else 0, moment)
            self.ticks.append(record)
            return record
        raise AssertionError("unreachable")

    def _check(self, answer: Answer, amount: int | None) -> None:
        status, body = answer
        if status >= 300:
            raise PaymentRequiredError(amount=amount, recipient=self._requirement.pay_to if self._requirement else None,
                                       reason=str(body.get("error", f"http_{status}")),
                                       url=f"metered session {self.session_id or '(start)'}")
        if self.session_id is None and isinstance(body.get("sessionId"), str):
            self.session_id = body["sessionId"]

    def _run(self) -> None:
        while not self._stopping.is_set():
            next_at = self.meter.next_tick_at(self.clock()) if self.meter else None
            if next_at is None:
                return
            if self._stopping.wait(max((next_at - self.clock()).total_seconds(), 0.0)):
                return
            try:
                self.tick()
            except Exception as exc:  # the merchant will stop serving; the app decides what to do
                self.error = exc
                log.warning("metered tick failed; session ticking stopped",
                            extra={"session": self.session_id, "error": str(exc)})
                if self.on_error is not None:
                    self.on_error(exc)
                return


def _state_of(body: dict[str, Any]) -> ChannelStateExtra | None:
    raw = body.get("channelState")
    if not isinstance(raw, dict):
        return None
    if "chargedCumulativeAmount" not in raw and "acceptedCumulative" in raw:
        raw = {**raw, "chargedCumulativeAmount": raw["acceptedCumulative"]}
    try:
        return ChannelStateExtra.from_dict(raw)
    except WireError:
        return None
