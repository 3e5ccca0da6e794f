"""Metered sessions (DePIN: a car rented by the minute): start, tick, stop; every tick carries a voucher for the
units used so far, and the merchant checks the billed units against the time it measured itself.

    GET  {prefix}                       the terms: rate card, unit length, rounding, payTo, asset, network, domain
    POST {prefix}/sessions              {"channelId", "startedAt": ISO, "units": 1, "payment": <voucher payload>}
                                        -> 201 {"sessionId", ...state}
    POST {prefix}/sessions/{id}/ticks   {"units": N (billed so far), "payment": <voucher payload>} -> state
    POST {prefix}/sessions/{id}/stop    optional final {"units", "payment"} -> state with usedUnits / owedAmount
    GET  {prefix}/sessions/{id}         state

Pricing is `protocolbanks.sdk.metering.MeteredCharge` over the merchant's rate card from the session's start
(each unit priced when it began; volume counted from the session's first unit). A tick billing N units must
carry the voucher `accepted cumulative + (amount_due(N) - amount_due(billed))`; it goes through the same
`GatewayChannelBook` as paid requests (signature, chain rules, reservation) and is committed at once, so the
relayer forwarder picks it up. The merchant's `UsageMeter` runs from the payer's stated start (refused if more
than `max_start_skew_s` away from the merchant's clock): a tick leaving the payer more than `skew_ticks` units
behind is refused and stops the session (`pb_meter_arrears`), billing more than `skew_ticks` units ahead is
refused (`pb_meter_ahead`). After `stop`, ticks up to the units used are still accepted (settling up).
"""

# no `from __future__ import annotations`: FastAPI reads the route functions' annotations at run time
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from protocolbanks.sdk.gateway.channel_book import VoucherRefused
from protocolbanks.sdk.gateway.merchant import MerchantGateway
from protocolbanks.sdk.gateway.server_scheme import corrective_state
from protocolbanks.sdk.metering import MeteredCharge, MeterRounding, MeterVerdict, UsageMeter
from protocolbanks.sdk.pricing import Clock, RateCard, iso_utc, parse_iso_utc, utc_now
from protocolbanks.sdk.x402.wire import CUMULATIVE_MISMATCH, SCHEME, VoucherPayload, WireError, requirement_extra


class MeterError(Exception):
    """A refused start/tick/stop; `status` and `body` are the HTTP answer."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"error": code, "message": message, **details}


@dataclass
class MeteredSession:
    session_id: str
    channel_id: bytes
    meter: UsageMeter
    charge: MeteredCharge
    billed_units: int = 0
    charged: int = 0  # what this session's ticks added to the channel
    lock: threading.Lock = field(default_factory=threading.Lock)

    def state(self, now: datetime) -> dict[str, Any]:
        used = self.meter.units_used(now)
        next_tick = self.meter.next_tick_at(now)
        return {"sessionId": self.session_id, "channelId": "0x" + self.channel_id.hex(),
                "startedAt": iso_utc(self.meter.started_at) if self.meter.started_at else None,
                "stoppedAt": iso_utc(self.meter.stopped_at) if self.meter.stopped_at else None,
                "usedUnits": used, "billedUnits": self.billed_units, "chargedAmount": str(self.charged),
                "owedAmount": str(max(self.charge.amount_due(used) - self.charged, 0)),
                "nextTickAt": iso_utc(next_tick) if next_tick else None}


def _units(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MeterError(422, "invalid_units", f"units must be a non-negative int, got {value!r}")
    return value


class MeteredService:
    """Sessions of one metered resource of a merchant."""

    def __init__(self, gateway: MerchantGateway, card: RateCard, *, unit_seconds: int = 60,
                 rounding: MeterRounding = MeterRounding.UP, skew_ticks: int = 1, max_start_skew_s: float = 30.0,
                 clock: Clock = utc_now) -> None:
        self.gateway = gateway
        self.card = card
        self.unit_seconds = unit_seconds
        self.rounding = rounding
        self.skew_ticks = skew_ticks
        self.max_start_skew_s = max_start_skew_s
        self.clock = clock
        self._sessions: dict[str, MeteredSession] = {}
        self._lock = threading.Lock()

    def terms(self) -> dict[str, Any]:
        return {"scheme": SCHEME, "network": self.gateway.network, "asset": self.gateway.asset,
                "payTo": self.gateway.pay_to, "unitSeconds": self.unit_seconds, "rounding": self.rounding.value,
                "skewTicks": self.skew_ticks,
                "extra": requirement_extra(self.gateway.book.domain, self.card.published())}

    def session(self, session_id: str) -> MeteredSession:
        with self._lock:
            found = self._sessions.get(session_id)
        if found is None:
            raise MeterError(404, "unknown_session", f"no session {session_id!r}")
        return found

    def start(self, body: dict[str, Any]) -> dict[str, Any]:
        now = self.clock()
        try:
            channel_id = bytes.fromhex(str(body.get("channelId", "")).removeprefix("0x"))
            started_at = parse_iso_utc(body.get("startedAt"), "startedAt")
        except ValueError as exc:
            raise MeterError(422, "invalid_start", str(exc)) from exc
        if len(channel_id) != 32:
            raise MeterError(422, "invalid_start", "channelId must be 32 bytes")
        if abs((now - started_at).total_seconds()) > self.max_start_skew_s:
            raise MeterError(422, "pb_meter_start_skew", f"startedAt is more than {self.max_start_skew_s} s away "
                             f"from the merchant's clock ({iso_utc(now)})")
        meter = UsageMeter(self.unit_seconds, self.rounding, skew_ticks=self.skew_ticks, clock=self.clock)
        meter.start(started_at)
        session = MeteredSession(uuid.uuid4().hex, channel_id, meter,
                                 MeteredCharge(self.card, started_at=started_at, unit_seconds=self.unit_seconds))
        with session.lock:
            self._bill(session, _units(body.get("units", 0)), body.get("payment"), now)
        with self._lock:
            self._sessions[session.session_id] = session
        return session.state(now)

    def tick(self, session_id: str, body: dict[str, Any]) -> dict[str, Any]:
        session = self.session(session_id)
        now = self.clock()
        with session.lock:
            self._bill(session, _units(body.get("units")), body.get("payment"), now)
            return session.state(now)

    def stop(self, session_id: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        session = self.session(session_id)
        now = self.clock()
        with session.lock:
            if body and body.get("units") is not None:
                self._bill(session, _units(body["units"]), body.get("payment"), now)
            if session.meter.running:
                session.meter.stop(now)
            return session.state(now)

    def _bill(self, session: MeteredSession, units: int, payment: Any, now: datetime) -> None:
        if units < session.billed_units:
            raise MeterError(409, "pb_units_decrease", f"{session.billed_units} units are billed already")
        verdict = session.meter.check_billed(units, now)
        if verdict is MeterVerdict.AHEAD:
            raise MeterError(422, "pb_meter_ahead", f"{units} units billed, {session.meter.units_used(now)} used",
                             usedUnits=session.meter.units_used(now))
        if verdict is MeterVerdict.ARREARS:
            if session.meter.running:
                session.meter.stop(now)
            raise MeterError(402, "pb_meter_arrears", "the payer is behind the meter: session stopped",
                             usedUnits=session.meter.units_used(now), billedUnits=session.billed_units)
        increment = session.charge.amount_due(units) - session.charge.amount_due(session.billed_units)
        if increment == 0:
            session.billed_units = units
            return
        try:
            voucher = VoucherPayload.from_dict(payment)
        except WireError as exc:
            raise MeterError(402, exc.code, f"a voucher for {increment} more is required: {exc}",
                             amount=str(increment)) from exc
        if voucher.channel_id != session.channel_id:
            raise MeterError(403, "pb_wrong_channel", "the voucher is for another channel than the session's")
        book = self.gateway.book
        try:
            reservation = book.reserve(voucher, increment, units=units - session.billed_units)
        except VoucherRefused as refused:
            details: dict[str, Any] = {"amount": str(increment)}
            if refused.code == CUMULATIVE_MISMATCH:
                details["channelState"] = corrective_state(book.state(voucher.channel_id))
            raise MeterError(402, refused.code, str(refused), **details) from refused
        receipt = book.commit(reservation)
        session.billed_units = units
        session.charged += increment
        self.gateway.notify_success(receipt, {"sessionId": session.session_id, "units": units})


def _call(action: Any) -> tuple[int, dict[str, Any]]:
    try:
        return 200, action()
    except MeterError as exc:
        return exc.status, exc.body


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except ValueError as exc:
        raise MeterError(400, "invalid_json", str(exc)) from exc
    if not isinstance(data, dict):
        raise MeterError(400, "invalid_json", "the body must be a JSON object")
    return data


def metered_router(service: MeteredService, *, prefix: str = "/meter") -> Any:
    """start / tick / stop as a FastAPI `APIRouter`."""
    from fastapi import APIRouter, Request
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    router = APIRouter(prefix=prefix, tags=["metered"])

    async def terms() -> JSONResponse:
        return JSONResponse(service.terms())

    async def start(request: Request) -> JSONResponse:
        raw = await request.body()
        status, body = await run_in_threadpool(_call, lambda: service.start(_json(raw)))
        return JSONResponse(body, status_code=201 if status == 200 else status)

    async def tick(session_id: str, request: Request) -> JSONResponse:
        raw = await request.body()
        status, body = await run_in_threadpool(_call, lambda: service.tick(session_id, _json(raw)))
        return JSONResponse(body, status_code=status)

    async def stop(session_id: str, request: Request) -> JSONResponse:
        raw = await request.body()
        status, body = await run_in_threadpool(_call, lambda: service.stop(session_id, _json(raw)))
        return JSONResponse(body, status_code=status)

    async def state(session_id: str) -> JSONResponse:
        status, body = _call(lambda: service.session(session_id).state(service.clock()))
        return JSONResponse(body, status_code=status)

    router.add_api_route("", terms, methods=["GET"])
    router.add_api_route("/sessions", start, methods=["POST"])
    router.add_api_route("/sessions/{session_id}/ticks", tick, methods=["POST"])
    router.add_api_route("/sessions/{session_id}/stop", stop, methods=["POST"])
    router.add_api_route("/sessions/{session_id}", state, methods=["GET"])
    return router
