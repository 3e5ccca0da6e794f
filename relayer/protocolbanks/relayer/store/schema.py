"""Tables of the relayer (the seed's payment_channels / channel_payments / channel_settlements, session keys and
Sentinel events). Amounts are integer base units stored exactly: NUMERIC(78, 0) on PostgreSQL, decimal text
on SQLite (whose integers stop at 2^63)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    and_,
    func,
    or_,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator, TypeEngine


class BaseUnits(TypeDecorator[int]):
    """An unsigned integer of token base units (up to 2^256), stored without loss on every dialect."""

    impl = String(78)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(78, 0))
        return dialect.type_descriptor(String(78))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"base units must be a non-negative int, got {value!r}")
        return value if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


def units_greater(dialect_name: str, left: ColumnElement[Any], right: ColumnElement[Any]) -> ColumnElement[bool]:
    """SQL for `left > right` on two BaseUnits columns: numeric on PostgreSQL; on SQLite, where they are decimal
    text and compare as text ("9" > "10"), the longer number is greater and equal lengths compare digit by digit."""
    if dialect_name == "postgresql":
        return left > right
    longer, same_length = func.length(left) > func.length(right), func.length(left) == func.length(right)
    return or_(longer, and_(same_length, left > right))


metadata = MetaData()

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at_ms", BigInteger, nullable=False),
)

payment_channels = Table(
    "payment_channels", metadata,
    Column("channel_id", LargeBinary(32), primary_key=True),
    Column("payer", String(42), nullable=False),
    Column("payee", String(42), nullable=False),
    Column("token", String(42), nullable=False),
    Column("accepted_cumulative", BaseUnits, nullable=False),  # highest voucher accepted off-chain
    Column("settled_cumulative", BaseUnits, nullable=False),  # redeemed on-chain, confirmed
    Column("period_index", BigInteger, nullable=False),  # off-chain period accounting of the current signer
    Column("period_spent", BaseUnits, nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("first_unsettled_at_ms", BigInteger, nullable=True),
    Column("last_activity_at_ms", BigInteger, nullable=False),
)

channel_payments = Table(
    "channel_payments", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("channel_id", LargeBinary(32), ForeignKey("payment_channels.channel_id"), nullable=False),
    Column("request_id", String(128), nullable=True, unique=True),  # client-chosen idempotency key
    Column("signer", String(42), nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("cumulative", BaseUnits, nullable=False),
    Column("amount", BaseUnits, nullable=False),  # this payment: cumulative minus the previous accepted
    Column("terms", BaseUnits, nullable=False),
    Column("r", LargeBinary(32), nullable=False),
    Column("vs", LargeBinary(32), nullable=False),
    Column("resource", Text, nullable=True),
    Column("received_at_ms", BigInteger, nullable=False),
)
Index("channel_payments_by_channel", channel_payments.c.channel_id, channel_payments.c.cumulative)

channel_settlements = Table(
    "channel_settlements", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("status", String(16), nullable=False),  # queued, sent, confirmed, failed, dropped (v1: replaced)
    Column("tx_hash", LargeBinary(32), nullable=True),  # the newest transaction sent; once confirmed, the mined one
    Column("nonce", BigInteger, nullable=True),
    Column("total", BaseUnits, nullable=False),
    Column("gas_used", BigInteger, nullable=True),
    Column("block_number", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("completed_at_ms", BigInteger, nullable=True),
    # v2
    Column("token", String(42), nullable=True),
    Column("error_class", String(16), nullable=True),  # transient, stale_terms, nothing_due, permanent
    Column("retry_at_ms", BigInteger, nullable=True),  # a queued settlement is tried again from then (backoff)
)

settlement_items = Table(
    "settlement_items", metadata,
    Column("settlement_id", BigInteger().with_variant(Integer, "sqlite"), ForeignKey("channel_settlements.id"),
           primary_key=True),
    Column("channel_id", LargeBinary(32), primary_key=True),
    Column("cumulative", BaseUnits, nullable=False),
    # v2: what the mined transaction did with the row (redeemed, nothing_due, skipped, failed) and why
    Column("outcome", String(16), nullable=True),
    Column("error", Text, nullable=True),
)

# v2: every transaction signed for a settlement (same nonce; fee-bumped replacements), recorded before it is
# broadcast, with its signed bytes, so a restarted relayer can re-broadcast it and never forgets one it sent.
settlement_transactions = Table(
    "settlement_transactions", metadata,
    Column("tx_hash", LargeBinary(32), primary_key=True),
    Column("settlement_id", BigInteger().with_variant(Integer, "sqlite"), ForeignKey("channel_settlements.id"),
           nullable=False, index=True),
    Column("nonce", BigInteger, nullable=False),
    Column("max_fee_per_gas", BaseUnits, nullable=False),
    Column("max_priority_fee_per_gas", BaseUnits, nullable=False),
    Column("raw", LargeBinary, nullable=True),
    Column("status", String(16), nullable=False),  # signed, broadcast, rejected, mined, replaced
    Column("signed_at_ms", BigInteger, nullable=False),
    Column("broadcast_at_ms", BigInteger, nullable=True),
)

# v2: a channel whose newest voucher failed on-chain waits here: until `retry_at_ms` (transient), or for good
# (NULL: permanent) unless a newer voucher than `cumulative` arrives.
settlement_holds = Table(
    "settlement_holds", metadata,
    Column("channel_id", LargeBinary(32), primary_key=True),
    Column("cumulative", BaseUnits, nullable=False),
    Column("error_class", String(16), nullable=False),
    Column("error", Text, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("retry_at_ms", BigInteger, nullable=True),
    Column("settlement_id", BigInteger, nullable=True),
    Column("updated_at_ms", BigInteger, nullable=False),
)

session_keys = Table(
    "session_keys", metadata,
    Column("channel_id", LargeBinary(32), primary_key=True),
    Column("epoch", Integer, primary_key=True),
    Column("key", String(42), nullable=False),
    Column("terms", BaseUnits, nullable=False),
    Column("max_per_payment", BaseUnits, nullable=False),
    Column("status", String(16), nullable=False),  # active, retired, frozen
    Column("updated_at_ms", BigInteger, nullable=False),
)

sentinel_events = Table(
    "sentinel_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("channel_id", LargeBinary(32), nullable=False),
    Column("signer", String(42), nullable=False),
    Column("kind", String(48), nullable=False),  # reason code of the rule that tripped
    Column("detail", Text, nullable=False),  # JSON
    Column("action", String(32), nullable=False),  # refused, freeze_sent, frozen, notified, lifted
    Column("created_at_ms", BigInteger, nullable=False),
)
