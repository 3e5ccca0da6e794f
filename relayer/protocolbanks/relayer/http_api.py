"""The relayer's HTTP interface (aiohttp): voucher intake and health. Every error is a JSON 4xx/5xx with a stable
reason code, never a traceback."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from protocolbanks.relayer.intake import IntakeResult, VoucherIntake
from protocolbanks.relayer.metrics import RelayerMetrics
from protocolbanks.relayer.openapi import openapi_document
from protocolbanks.relayer.settle_requests import SettleRequests
from protocolbanks.relayer.wire import SubmissionError, VoucherSubmission, parse_batch, parse_submission

log = logging.getLogger("protocolbanks.relayer.http")

MAX_BODY = 16 * 1024  # one voucher
MAX_BATCH_BODY = 512 * 1024  # POST /v1/vouchers/batch
REJECTION_STATUS = {
    "unknown_channel": 404,
    "invalid_signature": 401,
    "signer_not_authorised": 403,
    "wrong_payee": 403,
    "wrong_chain": 422,
    "channel_frozen": 409,
    "channel_closing": 409,
    "channel_closed": 409,
    "key_expired": 409,
    "chain_unavailable": 503,
    "channel_busy": 503,
    "request_id_reused": 409,
}
INTAKE = web.AppKey("intake", VoucherIntake)
METRICS = web.AppKey("metrics", RelayerMetrics)
SETTLE_REQUESTS = web.AppKey("settle_requests", SettleRequests)


def _body(result: IntakeResult) -> dict[str, object]:
    body: dict[str, object] = {
        "status": result.status,
        "channelId": "0x" + result.channel_id.hex(),
        "cumulativeAmount": str(result.cumulative),
    }
    if result.accepted:
        body.update(payment=str(result.payment), remaining=str(result.remaining), paymentId=result.payment_id)
    else:
        body["reason"] = result.reason
    return body


def _status(result: IntakeResult) -> int:
    if result.accepted:
        return 200
    reason = result.reason or ""
    if reason.startswith("sentinel_"):
        return 429
    return REJECTION_STATUS.get(reason, 422)


Answer = tuple[dict[str, object], int]


async def _answer(app: web.Application, submission: VoucherSubmission | SubmissionError) -> Answer:
    """One voucher's answer body and HTTP status (counted in the metrics)."""
    metrics = app[METRICS]
    if isinstance(submission, SubmissionError):
        metrics.vouchers.labels("rejected", submission.code).inc()
        return {"status": "rejected", "reason": submission.code, "message": str(submission)}, submission.status
    try:
        result = await app[INTAKE].submit(submission)
    except Exception:  # the store failed: nothing was acknowledged, the client may retry
        log.exception("voucher intake failed")
        metrics.vouchers.labels("unavailable", "store_unavailable").inc()
        return {"status": "unavailable", "reason": "store_unavailable"}, 503
    metrics.vouchers.labels(result.status, result.reason or "").inc()
    return _body(result), _status(result)


async def post_voucher(request: web.Request) -> web.Response:
    body = await request.read()
    if len(body) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(body))
    try:
        submission: VoucherSubmission | SubmissionError = parse_submission(body)
    except SubmissionError as exc:
        submission = exc
    answer, status = await _answer(request.app, submission)
    return web.json_response(answer, status=status)


async def post_voucher_batch(request: web.Request) -> web.Response:
    """Many vouchers in one request (a merchant gateway forwarding what it accepted): each is decided and made
    durable as if posted alone; the answers come back in order, each with the HTTP status it would have had."""
    try:
        submissions = parse_batch(await request.read())
    except SubmissionError as exc:
        request.app[METRICS].vouchers.labels("rejected", exc.code).inc()
        return web.json_response({"status": "rejected", "reason": exc.code, "message": str(exc)}, status=exc.status)
    answers = await asyncio.gather(*(_answer(request.app, s) for s in submissions))
    return web.json_response({"results": [dict(answer, httpStatus=status) for answer, status in answers]})


def _channel_id(request: web.Request) -> bytes:
    raw = request.match_info["channel_id"]
    try:
        channel_id = bytes.fromhex(raw.removeprefix("0x"))
    except ValueError:
        channel_id = b""
    if len(channel_id) != 32:
        raise web.HTTPUnprocessableEntity(reason="channel id must be 32 bytes of hex")
    return channel_id


async def get_channel(request: web.Request) -> web.Response:
    """What this relayer holds for a channel: the gateway starts a channel it does not know from here."""
    intake = request.app[INTAKE]
    channel_id = _channel_id(request)
    # from the database, not this worker's memory: another worker (or instance) may have accepted more
    progress = await asyncio.get_running_loop().run_in_executor(None, intake.store.channel_progress, channel_id)
    snapshot = intake.snapshots(channel_id)
    if progress is None and snapshot is None:
        return web.json_response({"status": "rejected", "reason": "unknown_channel"}, status=404)
    accepted = progress.accepted_cumulative if progress else 0
    body: dict[str, object] = {
        "channelId": "0x" + channel_id.hex(), "acceptedCumulative": str(accepted),
        "settledCumulative": str(progress.settled_cumulative if progress else 0),
        "unsettled": str(progress.unsettled if progress else 0),
    }
    if snapshot is not None:
        body.update(deposit=str(snapshot.deposit), redeemedOnChain=str(snapshot.claimed), frozen=snapshot.frozen,
                    closing=snapshot.closing, closed=snapshot.closed)
    return web.json_response(body)


async def settle_channel(request: web.Request) -> web.Response:
    """Asks for the channel to be settled on the next round, whatever the thresholds (at most once a minute)."""
    intake = request.app[INTAKE]
    channel_id = _channel_id(request)
    progress = await asyncio.get_running_loop().run_in_executor(None, intake.store.channel_progress, channel_id)
    if progress is None or progress.unsettled <= 0:
        return web.json_response({"status": "nothing_to_settle", "channelId": "0x" + channel_id.hex()})
    if not request.app[SETTLE_REQUESTS].ask(channel_id):
        return web.json_response({"status": "rejected", "reason": "too_soon"}, status=429)
    queued = await asyncio.get_running_loop().run_in_executor(None, intake.store.request_settlement, channel_id)
    if not queued:
        return web.json_response({"status": "nothing_to_settle", "channelId": "0x" + channel_id.hex()})
    return web.json_response({"status": "queued", "channelId": "0x" + channel_id.hex(),
                              "unsettled": str(progress.unsettled)}, status=202)


async def prometheus(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(), content_type="text/plain", charset="utf-8")


async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def healthz(request: web.Request) -> web.Response:
    """200 while the intake can accept; 503 with the reason while the chain view is too old to trust."""
    intake = request.app[INTAKE]
    lag = intake.chain_lag() if intake.chain_lag is not None else None
    body: dict[str, object] = {"status": "ok"}
    if lag is not None:
        body["chainLagSeconds"] = round(lag, 3)
    if not intake.chain_view_fresh():
        body.update(status="degraded", reason="chain_unavailable")
        return web.json_response(body, status=503)
    return web.json_response(body)


@web.middleware
async def json_errors(request: web.Request, handler):  # type: ignore[no-untyped-def]
    try:
        return await handler(request)
    except web.HTTPException as exc:
        reason = {413: "body_too_large", 404: "not_found", 405: "method_not_allowed",
                  422: "invalid_field"}.get(exc.status, "http_error")
        return web.json_response({"status": "rejected", "reason": reason, "message": exc.reason}, status=exc.status)


def build_app(intake: VoucherIntake, metrics: RelayerMetrics | None = None,
              settle_requests: SettleRequests | None = None) -> web.Application:
    app = web.Application(client_max_size=MAX_BATCH_BODY, middlewares=[json_errors])
    app[INTAKE] = intake
    app[SETTLE_REQUESTS] = settle_requests or SettleRequests()
    app[METRICS] = metrics or RelayerMetrics(
        unsettled=lambda: sum(p.unsettled for p in intake.progress.values()))
    app.router.add_post("/v1/vouchers", post_voucher)
    app.router.add_post("/v1/vouchers/batch", post_voucher_batch)
    app.router.add_get("/v1/channels/{channel_id}", get_channel)
    app.router.add_post("/v1/channels/{channel_id}/settle", settle_channel)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus)
    app.router.add_get("/openapi.json", openapi)

    async def lifecycle(app: web.Application):  # type: ignore[no-untyped-def]
        await app[INTAKE].start()
        yield
        await app[INTAKE].stop()

    app.cleanup_ctx.append(lifecycle)
    return app
