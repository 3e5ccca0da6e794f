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

    def progress(self) -> dict[bytes, ChannelProgress]:
        """Every channel's progress, for the intake to start from after a restart."""
        c = schema.payment_channels
        with self.engine.connect() as connection:
            rows = connection.execute(select(c)).mappings().all()
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
