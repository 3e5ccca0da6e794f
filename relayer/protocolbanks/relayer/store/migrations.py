"""Versioned schema migrations, applied in order at start-up, each in its own transaction.

Add a migration by appending `(next_version, function)`; never edit one that shipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from protocolbanks.relayer.store import schema
from sqlalchemy import Connection, Engine, func, select


def _v1_initial(connection: Connection) -> None:
    tables = [t for name, t in schema.metadata.tables.items() if name != "schema_version"]
    schema.metadata.create_all(connection, tables=tables)


MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (1, _v1_initial),
]


def migrate(engine: Engine) -> int:
    """Brings the database to the newest schema; returns the version it is at."""
    schema.schema_version.create(engine, checkfirst=True)
    with engine.begin() as connection:
        current = connection.execute(select(func.max(schema.schema_version.c.version))).scalar() or 0
    for version, apply in MIGRATIONS:
        if version <= current:
            continue
        with engine.begin() as connection:
            apply(connection)
            connection.execute(schema.schema_version.insert().values(version=version,
                                                                       applied_at_ms=int(time.time() * 1000)))
        current = version
    return current
