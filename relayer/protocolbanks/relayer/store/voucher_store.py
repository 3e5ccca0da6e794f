"""Where accepted vouchers become durable: one transaction per batch (group commit), before anyone is answered.

Synchronous (SQLAlchemy Core); the async intake calls it from a writer thread so many requests share one commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocolbanks.relayer.store import schema
from protocolbanks.relayer.store.migrations import migrate
from protocolbanks.sdk.acceptance import PeriodUsage
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite


class StoreError(Exception):
    """The database could not be opened or written."""


@dataclass(frozen=True)
class AcceptedVoucher:
    """A voucher the intake accepted, with what the channel's progress becomes after it."""

    channel_id: bytes
    payer: str
    payee: str
    token: str
    signer: str
    epoch: int
    cumulative: int
    amount: int
    terms: int
    r: bytes
    vs: bytes
    received_at_ms: int
    period: PeriodUsage
    request_id: str | None = None
    resource: str | None = None


@dataclass(frozen=True)
class ChannelProgress:
    """The relayer's own record of a channel: what it accepted and what is settled."""

    channel_id: bytes
    accepted_cumulative: int
    settled_cumulative: int
    epoch: int
    period: PeriodUsage
    first_unsettled_at_ms: int | None
    last_activity_at_ms: int

    @property
    def unsettled(self) -> int:
        return self.accepted_cumulative - self.settled_cumulative


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute("PRAGMA synchronous=FULL")  # a commit survives power loss: acknowledged means durable
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class VoucherStore:
    """The relayer's database. `url` is an SQLAlchemy URL: sqlite:///relayer.db or postgresql+psycopg://…"""

    def __init__(self, url: str) -> None:
        try:
            self.engine: Engine = create_engine(url)
        except Exception as exc:
            raise StoreError(f"cannot open database {url!r}: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.schema_version = migrate(self.engine)
        self._insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert

    def append(self, batch: list[AcceptedVoucher]) -> None:
        """Stores the batch in one transaction (two bulk statements), or nothing if any row is refused."""
        if not batch:
            return
        channels = schema.payment_channels
        latest: dict[bytes, AcceptedVoucher] = {}
        first_seen: dict[bytes, int] = {}
        for voucher in batch:
            latest[voucher.channel_id] = voucher  # vouchers of one channel arrive in increasing order
            first_seen.setdefault(voucher.channel_id, voucher.received_at_ms)
        upsert = self._insert(channels)
        upsert = upsert.on_conflict_do_update(
            index_elements=[channels.c.channel_id],
            set_={
                "accepted_cumulative": upsert.excluded.accepted_cumulative,
                "period_index": upsert.excluded.period_index,
                "period_spent": upsert.excluded.period_spent,
                "epoch": upsert.excluded.epoch,
                "last_activity_at_ms": upsert.excluded.last_activity_at_ms,
                # the unsettled-since clock starts with the first payment after everything was settled
                "first_unsettled_at_ms": func.coalesce(channels.c.first_unsettled_at_ms,
                                                       upsert.excluded.first_unsettled_at_ms),
            },
        )
        channel_rows = [
            {"channel_id": v.channel_id, "payer": v.payer, "payee": v.payee, "token": v.token,
             "accepted_cumulative": v.cumulative, "settled_cumulative": 0, "period_index": v.period.index,
             "period_spent": v.period.spent, "epoch": v.epoch, "first_unsettled_at_ms": first_seen[cid],
             "last_activity_at_ms": v.received_at_ms}
            for cid, v in latest.items()
        ]
        payment_rows = [
            {"channel_id": v.channel_id, "request_id": v.request_id, "signer": v.signer, "epoch": v.epoch,
             "cumulative": v.cumulative, "amount": v.amount, "terms": v.terms, "r": v.r, "vs": v.vs,
             "resource": v.resource, "received_at_ms": v.received_at_ms}
            for v in batch
        ]
        with self.engine.begin() as connection:
            connection.execute(upsert, channel_rows)
            connection.execute(schema.channel_payments.insert(), payment_rows)

    def payment_for_request(self, request_id: str) -> tuple[bytes, int, int] | None:
        """(channel id, cumulative, amount) stored under a client's idempotency key, if any."""
        p = schema.channel_payments
        with self.engine.connect() as connection:
            row = connection.execute(select(p.c.channel_id, p.c.cumulative, p.c.amount)
                                     .where(p.c.request_id == request_id)).first()
        return None if row is None else (bytes(row[0]), int(row[1]), int(row[2]))

    def progress(self, *, unsettled_only: bool = False) -> dict[bytes, ChannelProgress]:
        """Every channel's progress (the intake starts from it after a restart); with `unsettled_only`, just the
        channels holding accepted money not yet redeemed (marked by their unsettled-since clock)."""
        c = schema.payment_channels
        query = select(c).where(c.c.first_unsettled_at_ms.is_not(None)) if unsettled_only else select(c)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return {
            bytes(r["channel_id"]): ChannelProgress(
                channel_id=bytes(r["channel_id"]), accepted_cumulative=r["accepted_cumulative"],
                settled_cumulative=r["settled_cumulative"], epoch=r["epoch"],
                period=PeriodUsage(r["period_index"], r["period_spent"]),
                first_unsettled_at_ms=r["first_unsettled_at_ms"], last_activity_at_ms=r["last_activity_at_ms"],
            )
            for r in rows
        }

    def close(self) -> None:
        self.engine.dispose()


@dataclass(frozen=True)
class SettlementItem:
    """One channel in a settlement: the voucher that will be redeemed."""

    channel_id: bytes
    token: str
    cumulative: int
    terms: int
    r: bytes
    vs: bytes


class SettlementLedger:
    """Settlements as rows: queued -> sent -> confirmed | failed. Shares the VoucherStore's database."""

    def __init__(self, store: VoucherStore) -> None:
        self.engine = store.engine

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

    def record_sent(self, items: list[SettlementItem], tx_hash: bytes, nonce: int, now_ms: int) -> int:
        s = schema.channel_settlements
        with self.engine.begin() as connection:
            settlement_id = connection.execute(s.insert().values(
                status="sent", tx_hash=tx_hash, nonce=nonce, total=0, attempts=1, created_at_ms=now_ms,
            ).returning(s.c.id)).scalar_one()
            connection.execute(schema.settlement_items.insert(), [
                {"settlement_id": settlement_id, "channel_id": i.channel_id, "cumulative": i.cumulative}
                for i in items
            ])
        return int(settlement_id)

    def sent(self) -> list[tuple[int, bytes, int, int]]:
        """(id, tx hash, nonce, sent at ms) of settlements waiting for confirmation."""
        s = schema.channel_settlements
        with self.engine.connect() as connection:
            rows = connection.execute(select(s.c.id, s.c.tx_hash, s.c.nonce, s.c.created_at_ms)
                                      .where(s.c.status == "sent")).all()
        return [(int(r[0]), bytes(r[1]), int(r[2]), int(r[3])) for r in rows]

    def confirm(self, settlement_id: int, *, total: int, block_number: int, gas_used: int, now_ms: int) -> None:
        """Marks the settlement done and moves its channels' settled amount forward (never backwards)."""
        s, items, c = schema.channel_settlements, schema.settlement_items, schema.payment_channels
        with self.engine.begin() as connection:
            connection.execute(s.update().where(s.c.id == settlement_id).values(
                status="confirmed", total=total, block_number=block_number, gas_used=gas_used,
                completed_at_ms=now_ms))
            for row in connection.execute(select(items.c.channel_id, items.c.cumulative)
                                          .where(items.c.settlement_id == settlement_id)).all():
                current = connection.execute(select(c.c.settled_cumulative, c.c.accepted_cumulative)
                                             .where(c.c.channel_id == row.channel_id)).one()
                settled = max(int(current.settled_cumulative), int(row.cumulative))
                connection.execute(c.update().where(c.c.channel_id == row.channel_id).values(
                    settled_cumulative=settled,
                    first_unsettled_at_ms=None if settled >= int(current.accepted_cumulative)
                    else c.c.first_unsettled_at_ms))

    def in_flight(self) -> dict[bytes, tuple[int, int]]:
        """Channel id -> (settlement id, sent at ms) for settlements sent and not yet confirmed or failed."""
        s, items = schema.channel_settlements, schema.settlement_items
        with self.engine.connect() as connection:
            rows = connection.execute(select(items.c.channel_id, s.c.id, s.c.created_at_ms)
                                      .join(s, s.c.id == items.c.settlement_id).where(s.c.status == "sent")).all()
        return {bytes(r[0]): (int(r[1]), int(r[2])) for r in rows}

    def mark_replaced(self, settlement_id: int, now_ms: int) -> None:
        """A settlement given up on (not mined in time): its vouchers are sent again in a new one."""
        s = schema.channel_settlements
        with self.engine.begin() as connection:
            connection.execute(s.update().where(s.c.id == settlement_id, s.c.status == "sent").values(
                status="replaced", completed_at_ms=now_ms))

    def fail(self, settlement_id: int, error: str, now_ms: int) -> None:
        s = schema.channel_settlements
        with self.engine.begin() as connection:
            connection.execute(s.update().where(s.c.id == settlement_id).values(
                status="failed", error=error[:2000], completed_at_ms=now_ms))
