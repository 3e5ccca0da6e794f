"""Hands committed vouchers to the relayer, off the request path.

`submit(voucher)` only records the voucher (newest per channel: a cumulative voucher makes every older one of its
channel redundant, so a burst of payments on one channel costs one POST) and wakes a background thread that POSTs
`VoucherPayload.relayer_body(chain_id)` to `{relayer}/v1/vouchers` — after lingering `linger` seconds, so a burst
of payments (many channels, or many payments of one channel) goes out as one `POST /v1/vouchers/batch` of the
newest voucher per channel rather than one request per payment.

Answers: 200 (accepted / stale / duplicate) = delivered. A refusal the relayer will repeat (400, 401, 403, 409,
422, or a 429 from its Sentinel) = rejected: counted, logged and passed to `on_rejected`, not retried — a newer
voucher of the channel is still sent. Anything else (connection errors, timeouts, 5xx, 404 while the relayer's
chain view catches up with a new channel) is retried with exponential backoff capped at `max_backoff`, for as long
as it takes: a voucher is money. `flush(timeout)` sends everything pending now and waits; `stop()` flushes first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
from protocolbanks.sdk.x402.wire import VoucherPayload

log = logging.getLogger("protocolbanks.gateway.forwarder")

RETRYABLE_STATUS = frozenset({404, 408, 425, 500, 502, 503, 504})
MAX_BATCH = 256  # the relayer's limit per POST /v1/vouchers/batch

PostVoucher = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]  # body -> (HTTP status, JSON answer)
RejectedCallback = Callable[[VoucherPayload, int, dict[str, Any]], None]  # (voucher, HTTP status, JSON answer)


@dataclass(frozen=True)
class ForwarderStats:
    submitted: int = 0  # vouchers handed to submit()
    coalesced: int = 0  # superseded by a newer voucher of the same channel before they were sent
    delivered: int = 0  # answered 200 by the relayer
    rejected: int = 0  # refused for good
    retries: int = 0  # failed attempts that will be tried again


@dataclass
class _Pending:
    voucher: VoucherPayload
    attempts: int = 0
    not_before: float = 0.0


class RelayerForwarder:
    """Background sender of the newest committed voucher per channel."""

    def __init__(self, relayer_url: str, chain_id: int, *, post: PostVoucher | None = None, timeout: float = 5.0,
                 initial_backoff: float = 0.1, max_backoff: float = 10.0, linger: float = 0.02,
                 on_rejected: RejectedCallback | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.relayer_url = relayer_url.rstrip("/")
        self.chain_id = chain_id
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.on_rejected = on_rejected
        self.monotonic = monotonic
        self.linger = linger
        self._flushing = 0
        self._batch_supported = True
        self._client: httpx.Client | None = None
        if post is None:
            self._client = httpx.Client(timeout=timeout)
        self._post = post or self._http_post
        self._pending: dict[bytes, _Pending] = {}
        self._in_flight = 0
        self._stats = ForwarderStats()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ public
    def start(self) -> RelayerForwarder:
        with self._cond:
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="pb-relayer-forwarder", daemon=True)
                self._thread.start()
        return self

    def submit(self, voucher: VoucherPayload) -> None:
        """Queues a committed voucher; never blocks on the network."""
        with self._cond:
            self._stats = replace(self._stats, submitted=self._stats.submitted + 1)
            current = self._pending.get(voucher.channel_id)
            if current is not None:
                self._stats = replace(self._stats, coalesced=self._stats.coalesced + 1)
                if current.voucher.cumulative >= voucher.cumulative:
                    return
                current.voucher = voucher  # keeps the backoff of the channel's earlier attempts
            else:
                self._pending[voucher.channel_id] = _Pending(voucher)
            self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        """Sends everything pending now (backoff waived once) and waits until the relayer has it or timeout."""
        deadline = self.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            try:
                for item in self._pending.values():
                    item.not_before = 0.0
                self._cond.notify_all()
                while self._pending or self._in_flight:
                    left = deadline - self.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
                return True
            finally:
                self._flushing -= 1

    def stop(self, timeout: float = 5.0) -> bool:
        """Flushes, then ends the thread. Returns whether nothing was left undelivered."""
        delivered = self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        if not delivered:
            log.error("forwarder stopped with %s vouchers undelivered", self.pending(),
                      extra={"undelivered": self.pending()})
        if self._client is not None:
            self._client.close()  # a stopped forwarder is not started again
        return delivered

    def pending(self) -> int:
        with self._cond:
            return len(self._pending) + self._in_flight

    @property
    def stats(self) -> ForwarderStats:
        with self._cond:
            return self._stats

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        while True:
            with self._cond:
                batch = self._due()
                while not batch and not self._stopping:
                    self._cond.wait(self._wait_time())
                    batch = self._due()
                if not batch and self._stopping:
                    return
                if self.linger > 0:  # let the burst gather (coalesced per channel meanwhile)
                    until = self.monotonic() + self.linger
                    while not self._stopping and not self._flushing and (left := until - self.monotonic()) > 0:
                        self._cond.wait(left)  # new vouchers notify; only a flush or stop cuts it short
                    batch = self._due() or batch
                for item in batch:
                    self._pending.pop(item.voucher.channel_id, None)
                self._in_flight = len(batch)
            for chunk, retries in self._deliver(batch):
                with self._cond:
                    self._in_flight -= len(chunk)
                    for item, retry in zip(chunk, retries, strict=True):
                        if retry:
                            self._stats = replace(self._stats, retries=self._stats.retries + 1)
                            self._requeue(item)
                    self._cond.notify_all()

    def _deliver(self, batch: list[_Pending]) -> Iterator[tuple[list[_Pending], list[bool]]]:
        """Sends the batch (one request per 256 vouchers when the relayer takes batches); yields each chunk with
        whether each of its vouchers should be retried."""
        if self._client is not None and self._batch_supported and len(batch) > 1:
            for start in range(0, len(batch), MAX_BATCH):
                chunk = batch[start:start + MAX_BATCH]
                retries = self._send_batch([item.voucher for item in chunk])
                if retries is None:  # the relayer has no batch endpoint: one request per voucher from now on
                    self._batch_supported = False
                    retries = [self._send(item.voucher) for item in chunk]
                yield chunk, retries
            return
        for item in batch:
            yield [item], [self._send(item.voucher)]

    def _due(self) -> list[_Pending]:
        now = self.monotonic()
        return [item for item in self._pending.values() if item.not_before <= now]

    def _wait_time(self) -> float | None:
        if not self._pending:
            return None
        return max(min(item.not_before for item in self._pending.values()) - self.monotonic(), 0.001)

    def _requeue(self, item: _Pending) -> None:
        attempts = item.attempts + 1
        delay = min(self.initial_backoff * 2 ** (attempts - 1), self.max_backoff)
        newer = self._pending.get(item.voucher.channel_id)
        if newer is not None:  # a newer voucher arrived meanwhile: it replaces this one, with the backoff
            newer.attempts, newer.not_before = attempts, self.monotonic() + delay
            return
        self._pending[item.voucher.channel_id] = _Pending(item.voucher, attempts, self.monotonic() + delay)

    def _send(self, voucher: VoucherPayload) -> bool:
        """One attempt; True if it should be retried."""
        channel = "0x" + voucher.channel_id.hex()
        try:
            status, answer = self._post(voucher.relayer_body(self.chain_id))
        except Exception as exc:
            log.warning("relayer unreachable for channel %s: %s", channel, exc,
                        extra={"channel": channel, "cumulative": voucher.cumulative})
            return True
        return self._judge(voucher, status, answer)

    def _send_batch(self, vouchers: list[VoucherPayload]) -> list[bool] | None:
        """One `POST /v1/vouchers/batch`; per voucher whether to retry, or None if the relayer has no such
        endpoint (404 / 405)."""
        assert self._client is not None, "forwarder was stopped"
        try:
            response = self._client.post(f"{self.relayer_url}/v1/vouchers/batch",
                                         json={"vouchers": [v.relayer_body(self.chain_id) for v in vouchers]})
            results = response.json().get("results") if response.status_code == 200 else None
        except Exception as exc:
            log.warning("relayer unreachable for %s vouchers: %s", len(vouchers), exc)
            return [True] * len(vouchers)
        if response.status_code in (404, 405):
            return None
        if not isinstance(results, list) or len(results) != len(vouchers):
            log.warning("relayer answered a batch with %s: retrying", response.status_code)
            return [True] * len(vouchers)
        return [self._judge(v, int(r.get("httpStatus", 500)), r) if isinstance(r, dict) else True
                for v, r in zip(vouchers, results, strict=True)]

    def _judge(self, voucher: VoucherPayload, status: int, answer: dict[str, Any]) -> bool:
        """Counts and logs one voucher's answer; True if it should be retried."""
        channel = "0x" + voucher.channel_id.hex()
        if status == 200:
            with self._cond:
                self._stats = replace(self._stats, delivered=self._stats.delivered + 1)
            log.debug("voucher delivered: channel %s cumulative %s (%s)", channel, voucher.cumulative,
                      answer.get("status"), extra={"channel": channel, "cumulative": voucher.cumulative})
            return False
        reason = str(answer.get("reason", ""))
        if status in RETRYABLE_STATUS or (status == 429 and not reason.startswith("sentinel_")):
            log.warning("relayer answered %s (%s) for channel %s: retrying", status, reason, channel,
                        extra={"channel": channel, "cumulative": voucher.cumulative, "status": status})
            return True
        with self._cond:
            self._stats = replace(self._stats, rejected=self._stats.rejected + 1)
        log.error("relayer refused voucher of channel %s cumulative %s: %s %s", channel, voucher.cumulative,
                  status, reason, extra={"channel": channel, "cumulative": voucher.cumulative, "status": status,
                                         "reason": reason})
        if self.on_rejected is not None:
            try:
                self.on_rejected(voucher, status, answer)
            except Exception:
                log.exception("on_rejected callback failed")
        return False

    def _http_post(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        assert self._client is not None, "forwarder was stopped"
        response = self._client.post(f"{self.relayer_url}/v1/vouchers", json=body)
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        return response.status_code, answer if isinstance(answer, dict) else {}
