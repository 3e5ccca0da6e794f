"""Where accepted vouchers become durable: one transaction per batch (group commit), before anyone is answered.

Synchronous (SQLAlchemy Core); the async intake calls it from a writer thread so many requests share one commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from protocolbanks.relayer.store import schema
from protocolbanks.relayer.store.migrations import migrate
from protocolbanks.relayer.store.voucher_sql import VoucherSql
from protocolbanks.relayer.store.writer_lock import WriterLock, sqlite_file_of
from protocolbanks.sdk.acceptance import PeriodUsage
from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

log = logging.getLogger("protocolbanks.relayer.store")


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
    previous_cumulative: int | None = None  # what the decision assumed was accepted before (None: no check)


STORED, CONFLICT, REFUSED = "stored", "conflict", "refused"


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


def _progress(r: Any) -> ChannelProgress:
    return ChannelProgress(
        channel_id=bytes(r["channel_id"]), accepted_cumulative=r["accepted_cumulative"],
        settled_cumulative=r["settled_cumulative"], epoch=r["epoch"],
        period=PeriodUsage(r["period_index"], r["period_spent"]),
        first_unsettled_at_ms=r["first_unsettled_at_ms"], last_activity_at_ms=r["last_activity_at_ms"],
    )


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
        self._sql = VoucherSql(self.engine.dialect.name)
        sqlite_file = sqlite_file_of(self.engine.url.database) if self.engine.dialect.name == "sqlite" else None
        self._writer_lock = WriterLock(sqlite_file)

    def append(self, batch: list[AcceptedVoucher]) -> list[str]:
        """Stores the batch; returns, per voucher, `STORED`, `CONFLICT` (its channel moved on in the database since
        the decision — another relayer instance accepted a voucher: decide again) or `REFUSED` (the database
        refused the row, e.g. a request id already used). Normally one transaction of two bulk statements; when
        any row conflicts or is refused, each voucher goes in its own transaction so one bad row never fails
        its batch-mates."""
        if not batch:
            return []
        with self._writer_lock.held():
            return self._append(batch)

    def _append(self, batch: list[AcceptedVoucher]) -> list[str]:
        try:
            if len({v.request_id for v in batch if v.request_id}) == sum(1 for v in batch if v.request_id):
                with self.engine.begin() as connection:
                    if self._write(connection, batch):
                        return [STORED] * len(batch)
                    connection.rollback()
        except IntegrityError:
            pass
        return [self._append_one(voucher) for voucher in batch]

    def _append_one(self, voucher: AcceptedVoucher) -> str:
        try:
            with self.engine.begin() as connection:
                if self._write(connection, [voucher]):
                    return STORED
                connection.rollback()
                return CONFLICT
        except IntegrityError as exc:
            log.warning("voucher for channel 0x%s refused by the database: %s", voucher.channel_id.hex(),
                        exc.orig)
            return REFUSED

    def _write(self, connection: Connection, batch: list[AcceptedVoucher]) -> bool:
        """The two bulk statements; False (caller rolls back) when a channel row did not match its expected
        previous cumulative."""
        latest: dict[bytes, AcceptedVoucher] = {}
        first: dict[bytes, AcceptedVoucher] = {}
        for voucher in batch:
            known = latest.get(voucher.channel_id)
            if known is not None and voucher.previous_cumulative not in (None, known.cumulative):
                return False
            latest[voucher.channel_id] = voucher  # vouchers of one channel arrive in increasing order
            first.setdefault(voucher.channel_id, voucher)
        sql, u = self._sql, self._sql.units
        channel_rows = [
            (cid, v.payer, v.payee, v.token, u(v.cumulative), u(0), v.period.index, u(v.period.spent), v.epoch,
             first[cid].received_at_ms, v.received_at_ms,
             0 if first[cid].previous_cumulative is None else 1, u(first[cid].previous_cumulative or 0))
            for cid, v in sorted(latest.items())  # one lock order for every writer: concurrent batches never deadlock
        ]
        written = connection.exec_driver_sql(sql.channel_upsert, channel_rows).rowcount
        if written != len(channel_rows):
            return False
        payment_rows = [
            (v.channel_id, v.request_id, v.signer, v.epoch, u(v.cumulative), u(v.amount), u(v.terms), v.r, v.vs,
             v.resource, v.received_at_ms)
            for v in batch
        ]
        connection.exec_driver_sql(sql.payment_insert, payment_rows)
        return True

    def channel_progress(self, channel_id: bytes) -> ChannelProgress | None:
        """One channel's progress as stored (after a conflict with another instance)."""
        c = schema.payment_channels
        with self.engine.connect() as connection:
            row = connection.execute(select(c).where(c.c.channel_id == channel_id)).mappings().first()
        return None if row is None else _progress(row)

    def request_settlement(self, channel_id: bytes) -> bool:
        """Makes a channel with unsettled money due at once, whichever instance settles: its unsettled-since
        clock is moved back to 1 ms after the epoch, so the settlement interval has passed (not 0: a falsy clock
        reads as "unset" in too many places). False if nothing is unsettled."""
        c = schema.payment_channels
        with self.engine.begin() as connection:
            result = connection.execute(update(c).where(c.c.channel_id == channel_id,
                                                        c.c.first_unsettled_at_ms.is_not(None))
                                        .values(first_unsettled_at_ms=1))
        return bool(result.rowcount)

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
        return {bytes(r["channel_id"]): _progress(r) for r in rows}

    def close(self) -> None:
        self.engine.dispose()


# The settlement ledger lives in its own module; imported here for callers that know it from this one.
from protocolbanks.relayer.store.settlement_ledger import SettlementItem, SettlementLedger  # noqa: E402

__all__ = ["CONFLICT", "REFUSED", "STORED", "AcceptedVoucher", "ChannelProgress", "SettlementItem",
           "SettlementLedger", "StoreError", "VoucherStore"]
