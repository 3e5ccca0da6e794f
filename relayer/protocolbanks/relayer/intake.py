"""Voucher intake: authenticate, check against the cached chain state and the Sentinel, store durably, answer.

Concurrency: submissions for one channel are serialised by a per-channel lock held until their commit, so two
concurrent copies of one voucher yield one acceptance and one idempotent acknowledgement; submissions for
different channels share commits (group commit), which is what makes durable intake fast.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from protocolbanks.relayer.store import AcceptedVoucher, ChannelProgress, VoucherStore
from protocolbanks.relayer.store.voucher_store import CONFLICT, REFUSED
from protocolbanks.relayer.wire import VoucherSubmission
from protocolbanks.sdk.acceptance import ChannelSnapshot, PeriodUsage, evaluate_voucher
from protocolbanks.sdk.keccak import keccak256
from protocolbanks.sdk.signing import SignatureError, recover_signer
from protocolbanks.sdk.typed_data import ChannelDomain, Voucher

SnapshotSource = Callable[[bytes], ChannelSnapshot | None]
SentinelCheck = Callable[[ChannelSnapshot, str, int, int, int], str | None]  # -> reason code or None


@dataclass(frozen=True)
class IntakeResult:
    """What the intake answers; `status` is accepted, stale, duplicate or rejected."""

    status: str
    channel_id: bytes
    cumulative: int
    payment: int = 0
    remaining: int = 0
    reason: str | None = None

    @property
    def payment_id(self) -> str:
        """Stable id of the payment: a channel's cumulative amount names exactly one acceptance."""
        return keccak256(self.channel_id + self.cumulative.to_bytes(32, "big"))[:16].hex()

    @property
    def accepted(self) -> bool:
        return self.status != "rejected"


@dataclass
class _Pending:
    voucher: AcceptedVoucher
    done: asyncio.Future[str]


@dataclass
class GroupCommitWriter:
    """Collects accepted vouchers and commits them together, one transaction per round.

    On SQLite the commit runs inline on the event loop (a local file: a batch commits in well under a millisecond,
    and handing it to a thread costs more — a GIL hand-off can wait up to 5 ms — than it saves); requests that
    arrive meanwhile wait in the socket buffers and form the next batch. Other databases are a network round trip
    away, so their commits run on a thread and the loop keeps serving."""

    store: VoucherStore
    max_batch: int = 512
    inline: bool | None = None  # None: inline on SQLite, on a thread otherwise
    _queue: list[_Pending] = field(default_factory=list)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    commits: int = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def write(self, voucher: AcceptedVoucher) -> str:
        """Returns once the voucher's fate is durable: STORED, CONFLICT (decide again) or REFUSED; raises if the
        commit failed."""
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(voucher, done))
        self._wakeup.set()
        return await done

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        inline = self.store.engine.dialect.name == "sqlite" if self.inline is None else self.inline
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await asyncio.sleep(0)  # let the requests decided in this loop iteration join the batch
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch:]
                vouchers = [p.voucher for p in batch]
                try:
                    outcomes = (self.store.append(vouchers) if inline
                                else await loop.run_in_executor(None, self.store.append, vouchers))
                except Exception as exc:
                    for pending in batch:
                        if not pending.done.done():
                            pending.done.set_exception(exc)
                    continue
                self.commits += 1
                for pending, outcome in zip(batch, outcomes, strict=True):
                    if not pending.done.done():
                        pending.done.set_result(outcome)


CHAIN_UNAVAILABLE = "chain_unavailable"
CHANNEL_BUSY = "channel_busy"  # still conflicting with other relayer instances after retries: retry later
REQUEST_ID_REUSED = "request_id_reused"  # the client used this requestId for another voucher


class VoucherIntake:
    """The decision and durability path of one relayer instance."""

    CONFLICT_RETRIES = 3
    RECENT_REQUESTS = 100_000  # idempotency answers kept in memory; older ones are read back from the store

    def __init__(self, store: VoucherStore, snapshots: SnapshotSource, domain: ChannelDomain, *,
                 payee: str | None = None, sentinel: SentinelCheck | None = None,
                 clock: Callable[[], float] = time.time,
                 chain_lag: Callable[[], float | None] | None = None, max_chain_lag_s: float = 60.0) -> None:
        self.store = store
        self.chain_lag = chain_lag  # seconds since the chain view was last refreshed (None: never)
        self.max_chain_lag_s = max_chain_lag_s
        self.payee = payee.lower() if payee else None
        self.snapshots = snapshots
        self.domain = domain
        self.sentinel = sentinel
        self.clock = clock
        self.writer = GroupCommitWriter(store)
        self.progress: dict[bytes, ChannelProgress] = store.progress()
        self._locks: dict[bytes, asyncio.Lock] = {}
        self._by_request: OrderedDict[str, IntakeResult] = OrderedDict()  # recent answers; older ones: the store

    async def start(self) -> None:
        self.writer.start()

    async def stop(self) -> None:
        await self.writer.stop()

    def chain_view_fresh(self) -> bool:
        """False when the chain has not been read for longer than `max_chain_lag_s` (RPC down): then nothing is
        accepted, since a freeze, revoke or close could be hidden from the intake."""
        if self.chain_lag is None:
            return True
        lag = self.chain_lag()
        return lag is not None and lag <= self.max_chain_lag_s

    def _lock(self, channel_id: bytes) -> asyncio.Lock:
        lock = self._locks.get(channel_id)
        if lock is None:
            lock = self._locks[channel_id] = asyncio.Lock()
        return lock

    async def submit(self, sub: VoucherSubmission) -> IntakeResult:
        if sub.request_id is not None:
            previous = self._by_request.get(sub.request_id)
            if previous is None:  # older than the in-memory window: ask the database, off the event loop
                previous = await asyncio.get_running_loop().run_in_executor(None, self._stored_result,
                                                                            sub.request_id)
            if previous is not None:
                return IntakeResult("duplicate", previous.channel_id, previous.cumulative, previous.payment,
                                    previous.remaining)
        if sub.chain_id is not None and sub.chain_id != self.domain.chain_id:
            return self._reject(sub, "wrong_chain")
        if not self.chain_view_fresh():
            return self._reject(sub, CHAIN_UNAVAILABLE)  # a freeze or close may be hidden from us: retry later
        try:
            digest = Voucher(sub.channel_id, sub.terms.epoch, sub.cumulative).digest(self.domain)
            signer = "0x" + recover_signer(digest, sub.signature).hex()  # lowercase: no checksum on the hot path
        except (SignatureError, ValueError):
            return self._reject(sub, "invalid_signature")
        async with self._lock(sub.channel_id):
            result = await self._decide_and_store(sub, signer)
            for _ in range(self.CONFLICT_RETRIES):
                if result.reason != CONFLICT:
                    break
                # another relayer instance on the same database accepted a voucher of this channel meanwhile:
                # start from what the database holds and decide again
                stored = await asyncio.get_running_loop().run_in_executor(None, self.store.channel_progress,
                                                                          sub.channel_id)
                if stored is not None:
                    self.progress[sub.channel_id] = stored
                result = await self._decide_and_store(sub, signer)
            if result.reason == CONFLICT:
                result = self._reject(sub, CHANNEL_BUSY)
        if sub.request_id is not None and result.accepted:
            self._by_request[sub.request_id] = result
            if len(self._by_request) > self.RECENT_REQUESTS:
                self._by_request.popitem(last=False)
        return result

    def _stored_result(self, request_id: str) -> IntakeResult | None:
        stored = self.store.payment_for_request(request_id)
        if stored is None:
            return None
        channel_id, cumulative, amount = stored
        return IntakeResult("accepted", channel_id, cumulative, payment=amount)

    async def _decide_and_store(self, sub: VoucherSubmission, signer: str) -> IntakeResult:
        snapshot = self.snapshots(sub.channel_id)
        if snapshot is not None and self.payee is not None and snapshot.payee.lower() != self.payee:
            return self._reject(sub, "wrong_payee")  # this relayer collects for one merchant only
        known = self.progress.get(sub.channel_id)
        now_ms = int(self.clock() * 1000)
        same_epoch = known is not None and snapshot is not None and known.epoch == snapshot.terms.epoch
        accepted = known.accepted_cumulative if known else 0
        period = known.period if same_epoch and known else PeriodUsage()
        decision, usage = evaluate_voucher(snapshot, signer=signer, epoch=sub.terms.epoch,
                                           cumulative=sub.cumulative, accepted_cumulative=accepted,
                                           period=period, now=now_ms // 1000)
        if not decision.accepted:
            return self._reject(sub, decision.rejection.value if decision.rejection else "rejected")
        if decision.stale:
            return IntakeResult("stale", sub.channel_id, max(accepted, sub.cumulative), 0, decision.remaining)
        assert snapshot is not None
        if self.sentinel is not None:
            reason = self.sentinel(snapshot, signer, decision.payment, decision.remaining, now_ms)
            if reason is not None:
                return self._reject(sub, reason)
        voucher = AcceptedVoucher(
            channel_id=sub.channel_id, payer=snapshot.payer, payee=snapshot.payee, token=snapshot.token,
            signer=signer, epoch=sub.terms.epoch, cumulative=sub.cumulative, amount=decision.payment,
            terms=sub.terms.pack(), r=sub.signature.r, vs=sub.signature.vs, received_at_ms=now_ms,
            period=usage, request_id=sub.request_id, resource=sub.resource, previous_cumulative=accepted,
        )
        outcome = await self.writer.write(voucher)  # durable before anyone hears "accepted"
        if outcome == REFUSED:
            return self._reject(sub, REQUEST_ID_REUSED)
        if outcome == CONFLICT:
            return self._reject(sub, CONFLICT)
        self.progress[sub.channel_id] = ChannelProgress(
            channel_id=sub.channel_id, accepted_cumulative=sub.cumulative,
            settled_cumulative=known.settled_cumulative if known else 0, epoch=sub.terms.epoch, period=usage,
            first_unsettled_at_ms=(known.first_unsettled_at_ms if known and known.unsettled else now_ms),
            last_activity_at_ms=now_ms,
        )
        return IntakeResult("accepted", sub.channel_id, sub.cumulative, decision.payment, decision.remaining)

    @staticmethod
    def _reject(sub: VoucherSubmission, reason: str) -> IntakeResult:
        return IntakeResult("rejected", sub.channel_id, sub.cumulative, reason=reason)
