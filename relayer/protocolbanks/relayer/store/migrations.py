"""Versioned schema migrations, applied in order at start-up, each in its own transaction.

Add a migration by appending `(next_version, function)`; never edit one that shipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from protocolbanks.relayer.store import schema
from sqlalchemy import Connection, Engine, func, inspect, select, text


def _v1_initial(connection: Connection) -> None:
    tables = [t for name, t in schema.metadata.tables.items() if name != "schema_version"]
    schema.metadata.create_all(connection, tables=tables)


def _v2_settlement_transactions(connection: Connection) -> None:
    """Every transaction of a settlement (fee-bumped replacements), per-row outcomes, retry state and holds.
    Idempotent: v1 creates tables from the current metadata, so on a new database these already exist."""
    schema.metadata.create_all(connection, tables=[schema.settlement_transactions, schema.settlement_holds])
    inspector = inspect(connection)
    for table, names in ((schema.channel_settlements, ("token", "error_class", "retry_at_ms")),
                         (schema.settlement_items, ("outcome", "error"))):
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for name in names:
            if name not in present:
                column_type = table.c[name].type.compile(dialect=connection.dialect)
                connection.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {name} {column_type}"))
    # settlements sent before v2 had one transaction, recorded on the settlement itself
    s, t = schema.channel_settlements, schema.settlement_transactions
    known = set(connection.execute(select(t.c.tx_hash)).scalars().all())
    for row in connection.execute(select(s.c.id, s.c.tx_hash, s.c.nonce, s.c.created_at_ms)
                                  .where(s.c.tx_hash.is_not(None), s.c.nonce.is_not(None))).all():
        if bytes(row.tx_hash) not in known:
            connection.execute(t.insert().values(
                tx_hash=row.tx_hash, settlement_id=row.id, nonce=row.nonce, max_fee_per_gas=0,
                max_priority_fee_per_gas=0, raw=None, status="broadcast", signed_at_ms=row.created_at_ms,
                broadcast_at_ms=row.created_at_ms))


MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (1, _v1_initial),
    (2, _v2_settlement_transactions),
]


# PostgreSQL advisory lock held while migrating: relayer instances starting together on one database take turns.
MIGRATION_LOCK_KEY = 0x7062_6D67


def migrate(engine: Engine) -> int:
    """Brings the database to the newest schema; returns the version it is at."""
    with engine.connect() as connection:
        serialised = engine.dialect.name == "postgresql"
        if serialised:
            connection.execute(text(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
            connection.commit()  # the lock belongs to the session and outlives this transaction
        try:
            return _apply_pending(connection)
        finally:
            if serialised:
                connection.rollback()
                connection.execute(text(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                connection.commit()


def _apply_pending(connection: Connection) -> int:
    with connection.begin():
        schema.schema_version.create(connection, checkfirst=True)
        current = connection.execute(select(func.max(schema.schema_version.c.version))).scalar() or 0
    for version, apply in MIGRATIONS:
        if version <= current:
            continue
        with connection.begin():
            apply(connection)
            connection.execute(schema.schema_version.insert().values(version=version,
                                                                       applied_at_ms=int(time.time() * 1000)))
        current = version
    return int(current)
