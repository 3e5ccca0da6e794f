"""Sentinel decisions recorded in the database, replayed into this process's guard, in the order they happened.

A trip refuses its key in every relayer worker (and after a restart), not only in the process that saw the
spike; a payer's lift (`payer_lifted`) accepts the channel's keys again. Trips are recorded by the worker that
saw them (`SentinelResponder`); lifts by one worker (`FreezeResolutionWatcher`).
"""

from __future__ import annotations

import json
import logging

from protocolbanks.relayer.sentinel.guard import SentinelGuard
from protocolbanks.relayer.store import VoucherStore, schema
from sqlalchemy import select

log = logging.getLogger("protocolbanks.relayer.sentinel")


class SentinelTripFeed:
    def __init__(self, store: VoucherStore, guard: SentinelGuard) -> None:
        self.store = store
        self.guard = guard
        self.last_id = 0

    def poll(self) -> int:
        """Applies every record newer than the last one applied; returns how many were applied."""
        e = schema.sentinel_events
        with self.store.engine.connect() as connection:
            rows = connection.execute(select(e.c.id, e.c.channel_id, e.c.kind, e.c.detail, e.c.action)
                                      .where(e.c.id > self.last_id).order_by(e.c.id)).all()
        for row_id, channel_id, kind, detail, action in rows:
            self.last_id = row_id
            if kind == "payer_lifted":
                self.guard.lift_channel(bytes(channel_id))
            elif kind.startswith("sentinel_") and action != "resolved":
                epoch = json.loads(detail).get("epoch")
                if isinstance(epoch, int):
                    self.guard.mark_tripped(bytes(channel_id), epoch)
                else:
                    log.warning("sentinel record %s has no epoch; not replayed", row_id)
        return len(rows)
