"""The intake's hot-path SQL, written out per dialect and run with the driver's own `executemany`.

Why not SQLAlchemy Core here: its bulk INSERT with RETURNING ("insertmanyvalues") folds many rows into one
statement, and a per-row parameter in the ON CONFLICT ... WHERE clause is then bound once for all of them; and
its per-row type processing was most of the writer's CPU. Plain `executemany` runs the statement once per row
with that row's parameters, and `rowcount` (summed over the rows by sqlite3 and psycopg) tells how many rows were
written, which is how the store detects that another instance moved a channel on (optimistic concurrency).
Amounts are token base units: decimal text on SQLite (see schema.BaseUnits), integers on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

CHANNEL_COLUMNS = ("channel_id", "payer", "payee", "token", "accepted_cumulative", "settled_cumulative",
                   "period_index", "period_spent", "epoch", "first_unsettled_at_ms", "last_activity_at_ms")
PAYMENT_COLUMNS = ("channel_id", "request_id", "signer", "epoch", "cumulative", "amount", "terms", "r", "vs",
                   "resource", "received_at_ms")


class VoucherSql:
    """The two statements of a voucher batch for one dialect (`sqlite` or `postgresql`)."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        p = "?" if self.sqlite else "%s"
        new, old = "excluded.accepted_cumulative", "payment_channels.accepted_cumulative"
        greater = (f"(length({new}) > length({old}) OR (length({new}) = length({old}) AND {new} > {old}))"
                   if self.sqlite else f"{new} > {old}")
        self.channel_upsert = (
            f"INSERT INTO payment_channels ({', '.join(CHANNEL_COLUMNS)}) "
            f"VALUES ({', '.join([p] * len(CHANNEL_COLUMNS))}) "
            "ON CONFLICT (channel_id) DO UPDATE SET accepted_cumulative = excluded.accepted_cumulative, "
            "period_index = excluded.period_index, period_spent = excluded.period_spent, epoch = excluded.epoch, "
            "last_activity_at_ms = excluded.last_activity_at_ms, "
            # the unsettled-since clock starts with the first payment after everything was settled
            "first_unsettled_at_ms = COALESCE(payment_channels.first_unsettled_at_ms, excluded.first_unsettled_at_ms) "
            # only upwards, and (when checked) only from the amount the decision was based on
            f"WHERE {greater} AND ({p} = 0 OR {old} = {p})"
        )
        self.payment_insert = (
            f"INSERT INTO channel_payments ({', '.join(PAYMENT_COLUMNS)}) "
            f"VALUES ({', '.join([p] * len(PAYMENT_COLUMNS))})"
        )

    def units(self, value: int) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 256:
            raise ValueError(f"base units must be a non-negative int below 2^256, got {value!r}")
        return str(value) if self.sqlite else value
