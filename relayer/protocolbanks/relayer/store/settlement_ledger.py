"""The settler's durable state: settlements, every transaction signed for them, per-row outcomes and holds.

A settlement moves queued -> sent -> confirmed | failed | dropped | skipped:
- queued: its channels are reserved, nothing signed yet (a failed attempt waits here until `retry_at_ms`);
- sent: a transaction with a fixed nonce is signed and recorded (before it is broadcast) — and possibly
  fee-bumped replacements of it, all with that nonce; whichever one is mined confirms it;
- confirmed: mined and buried under the configured confirmations; each row's outcome is recorded;
- failed: the mined transaction reverted, or the batch as a whole cannot be sent;
- dropped: its nonce was used by another transaction, none of ours was mined: the vouchers go out again;
- skipped: the simulation showed no row would move money (already redeemed, or refused): nothing was sent.
Shares the VoucherStore's database; the settlement tables' schema is in `schema` (v2 migration).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from protocolbanks.relayer.store import schema
from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

if TYPE_CHECKING:
    from protocolbanks.relayer.store.voucher_store import VoucherStore

SETTLED_OUTCOMES = ("redeemed", "nothing_due")  # the channel is settled up to the row's cumulative


@dataclass(frozen=True)
class SettlementItem:
    """One channel in a settlement: the voucher that will be redeemed."""

    channel_id: bytes
    token: str
    cumulative: int
    terms: int
    r: bytes
    vs: bytes


@dataclass(frozen=True)
class SettlementTransaction:
    """One signed transaction of a settlement (the first, or a same-nonce replacement)."""

    tx_hash: bytes
    nonce: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    raw: bytes | None
    status: str  # signed (not yet broadcast), broadcast, rejected, mined, replaced
    signed_at_ms: int
    broadcast_at_ms: int | None


@dataclass(frozen=True)
class InFlightSettlement:
    """A sent settlement waiting for one of its transactions to be mined and confirmed."""

    settlement_id: int
    nonce: int
    created_at_ms: int
    transactions: tuple[SettlementTransaction, ...]  # oldest first

    @property
    def newest(self) -> SettlementTransaction:
        return self.transactions[-1]


@dataclass(frozen=True)
class QueuedSettlement:
    settlement_id: int
    token: str
    channel_ids: tuple[bytes, ...]
    attempts: int


@dataclass(frozen=True)
class ChannelHold:
    """A channel whose voucher `cumulative` failed: not sent again before `retry_at_ms` (None: never, unless a
    newer voucher arrives)."""

    channel_id: bytes
    cumulative: int
    error_class: str
    error: str
    failures: int
    retry_at_ms: int | None
    settlement_id: int | None = None

    def blocks(self, accepted_cumulative: int, now_ms: int) -> bool:
        waiting = self.retry_at_ms is None or now_ms < self.retry_at_ms
        return waiting and accepted_cumulative <= self.cumulative


@dataclass(frozen=True)
class RowOutcome:
    """What a settlement did with one channel's row."""

    outcome: str  # redeemed, nothing_due, skipped (retried later), failed (permanent)
    error: str | None = None


class SettlementLedger:
    """Settlement rows and their transactions, in the VoucherStore's database."""

    def __init__(self, store: VoucherStore) -> None:
        self.engine = store.engine
        self._insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert

    # ------------------------------------------------------------------ what to send

    def newest_vouchers(self, channel_ids: list[bytes]) -> dict[bytes, SettlementItem]:
        """The highest accepted voucher of each channel (the one worth redeeming)."""
        p, c = schema.channel_payments, schema.payment_channels
        out: dict[bytes, SettlementItem] = {}
        with self.engine.connect() as connection:
            for channel_id in channel_ids:
                row = connection.execute(
                    select(p.c.cumulative, p.c.terms, p.c.r, p.c.vs, c.c.token)
                    .join(c, c.c.channel_id == p.c.channel_id)
                    .where(p.c.channel_id == channel_id, p.c.cumulative == c.c.accepted_cumulative)
                    .limit(1)
                ).first()
                if row is not None:
                    out[channel_id] = SettlementItem(channel_id, row.token, int(row.cumulative), int(row.terms),
                                                     bytes(row.r), bytes(row.vs))
        return out

    def in_flight(self) -> dict[bytes, int]:
        """Channel id -> settlement id, for settlements queued or sent (their channels are not batched again)."""
        s, items = schema.channel_settlements, schema.settlement_items
        with self.engine.connect() as connection:
            rows = connection.execute(select(items.c.channel_id, s.c.id).join(s, s.c.id == items.c.settlement_id)
                                      .where(s.c.status.in_(("queued", "sent")))).all()
        return {bytes(r[0]): int(r[1]) for r in rows}

    def items(self, settlement_id: int) -> dict[bytes, int]:
        """Channel id -> cumulative amount of each row of the settlement."""
        items = schema.settlement_items
        with self.engine.connect() as connection:
            rows = connection.execute(select(items.c.channel_id, items.c.cumulative)
                                      .where(items.c.settlement_id == settlement_id)).all()
        return {bytes(r[0]): int(r[1]) for r in rows}

    def holds(self) -> dict[bytes, ChannelHold]:
        h = schema.settlement_holds
        with self.engine.connect() as connection:
            rows = connection.execute(select(h)).mappings().all()
        return {bytes(r["channel_id"]): ChannelHold(
            bytes(r["channel_id"]), int(r["cumulative"]), r["error_class"], r["error"], int(r["failures"]),
            r["retry_at_ms"], r["settlement_id"]) for r in rows}

    # ------------------------------------------------------------------ queued: reserved, not yet signed

    def queue(self, items: list[SettlementItem], token: str, now_ms: int) -> int:
        s = schema.channel_settlements
        with self.engine.begin() as connection:
            settlement_id = connection.execute(s.insert().values(
                status="queued", token=token, total=0, attempts=0, created_at_ms=now_ms,
            ).returning(s.c.id)).scalar_one()
            self._insert_items(connection, int(settlement_id), items)
        return int(settlement_id)

    def replace_items(self, settlement_id: int, items: list[SettlementItem]) -> None:
        """A queued settlement about to be tried again sends its channels' newest vouchers."""
        with self.engine.begin() as connection:
            connection.execute(delete(schema.settlement_items)
                               .where(schema.settlement_items.c.settlement_id == settlement_id))
            self._insert_items(connection, settlement_id, items)

    def queued(self, now_ms: int) -> list[QueuedSettlement]:
        """Queued settlements whose backoff has passed, oldest first."""
        s, items = schema.channel_settlements, schema.settlement_items
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(s.c.id, s.c.token, s.c.attempts).where(s.c.status == "queued")
                .where((s.c.retry_at_ms.is_(None)) | (s.c.retry_at_ms <= now_ms)).order_by(s.c.id)).all()
            out = []
            for row in rows:
                channel_ids = connection.execute(select(items.c.channel_id)
                                                 .where(items.c.settlement_id == row.id)).scalars().all()
                out.append(QueuedSettlement(int(row.id), str(row.token), tuple(bytes(c) for c in channel_ids),
                                            int(row.attempts or 0)))
        return out

    def retry_later(self, settlement_id: int, *, error_class: str, error: str, retry_at_ms: int) -> None:
        """An attempt failed before anything was accepted by the network: queued again, tried from `retry_at_ms`."""
        s = schema.channel_settlements
        with self.engine.begin() as connection:
            connection.execute(s.update().where(s.c.id == settlement_id).values(
                status="queued", attempts=s.c.attempts + 1, error=error[:2000], error_class=error_class,
                retry_at_ms=retry_at_ms, nonce=None, tx_hash=None))

    # ------------------------------------------------------------------ sent: transactions with one nonce

    def record_signed(self, settlement_id: int, *, tx_hash: bytes, nonce: int, max_fee_per_gas: int,
                      max_priority_fee_per_gas: int, raw: bytes | None, now_ms: int) -> None:
        """Write-ahead: the transaction is durable before it is broadcast, so it is never forgotten."""
        s, t = schema.channel_settlements, schema.settlement_transactions
        with self.engine.begin() as connection:
            connection.execute(t.insert().values(
                tx_hash=tx_hash, settlement_id=settlement_id, nonce=nonce, max_fee_per_gas=max_fee_per_gas,
                max_priority_fee_per_gas=max_priority_fee_per_gas, raw=raw, status="signed", signed_at_ms=now_ms))
            connection.execute(s.update().where(s.c.id == settlement_id).values(
                status="sent", tx_hash=tx_hash, nonce=nonce, retry_at_ms=None))

    def mark_broadcast(self, tx_hash: bytes, now_ms: int) -> None:
        t = schema.settlement_transactions
        with self.engine.begin() as connection:
            connection.execute(t.update().where(t.c.tx_hash == tx_hash, t.c.status == "signed").values(
                status="broadcast", broadcast_at_ms=now_ms))

    def reject(self, tx_hash: bytes) -> None:
        """The node refused the transaction outright (it can never be mined): not awaited any more."""
        t = schema.settlement_transactions
        with self.engine.begin() as connection:
            connection.execute(t.update().where(t.c.tx_hash == tx_hash).values(status="rejected"))

    def record_sent(self, items: list[SettlementItem], tx_hash: bytes, nonce: int, now_ms: int) -> int:
        """A settlement sent in one go (a transaction recorded as broadcast, without its signed bytes)."""
        settlement_id = self.queue(items, items[0].token if items else "", now_ms)
        self.record_signed(settlement_id, tx_hash=tx_hash, nonce=nonce, max_fee_per_gas=0,
                           max_priority_fee_per_gas=0, raw=None, now_ms=now_ms)
        self.mark_broadcast(tx_hash, now_ms)
        return settlement_id

    def sent(self) -> list[InFlightSettlement]:
        """Sent settlements with their live (not rejected) transactions, waiting for confirmation."""
        s, t = schema.channel_settlements, schema.settlement_transactions
        with self.engine.connect() as connection:
            rows = connection.execute(select(s.c.id, s.c.nonce, s.c.created_at_ms).where(s.c.status == "sent")
                                      .order_by(s.c.id)).all()
            out = []
            for row in rows:
                txs = connection.execute(select(t).where(t.c.settlement_id == row.id, t.c.status != "rejected")
                                         ).mappings().all()
                transactions = sorted((
                    SettlementTransaction(bytes(x["tx_hash"]), int(x["nonce"]), int(x["max_fee_per_gas"]),
                                          int(x["max_priority_fee_per_gas"]),
                                          None if x["raw"] is None else bytes(x["raw"]), x["status"],
                                          int(x["signed_at_ms"]), x["broadcast_at_ms"]) for x in txs),
                    key=lambda x: (x.signed_at_ms, x.max_fee_per_gas))  # fees are text on SQLite: sort here
                out.append(InFlightSettlement(int(row.id), int(row.nonce), int(row.created_at_ms),
                                              tuple(transactions)))
        return out

    def next_nonce_floor(self) -> int:
        """The lowest nonce a new settlement may use: above every nonce a sent settlement holds (a recorded
        transaction the node does not know yet still owns its nonce)."""
        s = schema.channel_settlements
        with self.engine.connect() as connection:
            nonces = connection.execute(select(s.c.nonce).where(s.c.status == "sent")).scalars().all()
        return max((int(n) + 1 for n in nonces if n is not None), default=0)

    # ------------------------------------------------------------------ done

    def confirm(self, settlement_id: int, *, total: int, block_number: int, gas_used: int, now_ms: int,
                mined_tx_hash: bytes | None = None, outcomes: dict[bytes, RowOutcome] | None = None,
                holds: Iterable[ChannelHold] = ()) -> None:
        """Marks the settlement done and moves its settled rows' channels forward (never backwards). Without
        `outcomes` every row counts as redeemed."""
        self._finish(settlement_id, "confirmed", now_ms=now_ms, total=total, block_number=block_number,
                     gas_used=gas_used, mined_tx_hash=mined_tx_hash, outcomes=outcomes, holds=holds)

    def fail(self, settlement_id: int, error: str, now_ms: int, *, error_class: str | None = None,
             holds: Iterable[ChannelHold] = (), outcomes: dict[bytes, RowOutcome] | None = None,
             status: str = "failed") -> None:
        """The settlement is over without a redemption (failed; or skipped, when nothing needed sending)."""
        self._finish(settlement_id, status, now_ms=now_ms, error=error, error_class=error_class, holds=holds,
                     outcomes=outcomes if outcomes is not None else {})

    def mark_dropped(self, settlement_id: int, error: str, now_ms: int) -> None:
        """Its nonce was used by a transaction that is not ours: its channels become due again."""
        self._finish(settlement_id, "dropped", now_ms=now_ms, error=error, error_class="transient", outcomes={})

    def _finish(self, settlement_id: int, status: str, *, now_ms: int, total: int = 0,
                block_number: int | None = None, gas_used: int | None = None, mined_tx_hash: bytes | None = None,
                outcomes: dict[bytes, RowOutcome] | None = None, holds: Iterable[ChannelHold] = (),
                error: str | None = None, error_class: str | None = None) -> None:
        s, items, c = schema.channel_settlements, schema.settlement_items, schema.payment_channels
        t, h = schema.settlement_transactions, schema.settlement_holds
        with self.engine.begin() as connection:
            values: dict[str, Any] = {"status": status, "total": total, "block_number": block_number,
                                      "gas_used": gas_used, "completed_at_ms": now_ms, "retry_at_ms": None,
                                      "error": None if error is None else error[:2000], "error_class": error_class}
            if mined_tx_hash is not None:
                values["tx_hash"] = mined_tx_hash
                connection.execute(t.update().where(t.c.settlement_id == settlement_id).values(
                    status="replaced"))
                connection.execute(t.update().where(t.c.tx_hash == mined_tx_hash).values(status="mined"))
            connection.execute(s.update().where(s.c.id == settlement_id).values(**values))
            for row in connection.execute(select(items.c.channel_id, items.c.cumulative)
                                          .where(items.c.settlement_id == settlement_id)
                                          .order_by(items.c.channel_id)).all():
                outcome = RowOutcome("redeemed") if outcomes is None else outcomes.get(bytes(row.channel_id))
                if outcome is None:
                    continue
                connection.execute(items.update().where(items.c.settlement_id == settlement_id,
                                                        items.c.channel_id == row.channel_id)
                                   .values(outcome=outcome.outcome, error=outcome.error))
                if outcome.outcome not in SETTLED_OUTCOMES:
                    continue
                connection.execute(delete(h).where(h.c.channel_id == row.channel_id))
                # locked until commit (PostgreSQL): a concurrent confirm or append cannot interleave a stale read
                current = connection.execute(select(c.c.settled_cumulative, c.c.accepted_cumulative)
                                             .where(c.c.channel_id == row.channel_id).with_for_update()).one()
                settled = max(int(current.settled_cumulative), int(row.cumulative))
                connection.execute(c.update().where(c.c.channel_id == row.channel_id).values(
                    settled_cumulative=settled,
                    first_unsettled_at_ms=None if settled >= int(current.accepted_cumulative)
                    else c.c.first_unsettled_at_ms))
            self._write_holds(connection, holds, now_ms)

    # ------------------------------------------------------------------ helpers

    def _write_holds(self, connection: Connection, holds: Iterable[ChannelHold], now_ms: int) -> None:
        h = schema.settlement_holds
        rows = [{"channel_id": x.channel_id, "cumulative": x.cumulative, "error_class": x.error_class,
                 "error": x.error[:2000], "failures": x.failures, "retry_at_ms": x.retry_at_ms,
                 "settlement_id": x.settlement_id, "updated_at_ms": now_ms}
                for x in sorted(holds, key=lambda x: x.channel_id)]
        if not rows:
            return
        upsert = self._insert(h)
        upsert = upsert.on_conflict_do_update(index_elements=[h.c.channel_id], set_={
            name: upsert.excluded[name] for name in ("cumulative", "error_class", "error", "failures", "retry_at_ms",
                                                     "settlement_id", "updated_at_ms")})
        connection.execute(upsert, rows)

    @staticmethod
    def _insert_items(connection: Connection, settlement_id: int, items: list[SettlementItem]) -> None:
        if items:
            connection.execute(schema.settlement_items.insert(), [
                {"settlement_id": settlement_id, "channel_id": i.channel_id, "cumulative": i.cumulative}
                for i in items])
