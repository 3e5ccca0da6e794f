"""Read-only views of the relayer's database for operators (channels, settlements, Sentinel events)."""

from __future__ import annotations

from typing import Any

from protocolbanks.relayer.store import VoucherStore, schema
from sqlalchemy import desc, select


def channels(store: VoucherStore, *, pending_only: bool = False) -> list[dict[str, Any]]:
    c = schema.payment_channels
    with store.engine.connect() as connection:
        rows = connection.execute(select(c).order_by(desc(c.c.last_activity_at_ms))).mappings().all()
    out = []
    for r in rows:
        unsettled = int(r["accepted_cumulative"]) - int(r["settled_cumulative"])
        if pending_only and unsettled <= 0:
            continue
        out.append({"channelId": "0x" + bytes(r["channel_id"]).hex(), "payer": r["payer"],
                    "accepted": str(r["accepted_cumulative"]), "settled": str(r["settled_cumulative"]),
                    "unsettled": str(unsettled), "unsettledSinceMs": r["first_unsettled_at_ms"],
                    "lastActivityMs": r["last_activity_at_ms"]})
    return out


def settlements(store: VoucherStore, *, failed_only: bool = False, limit: int = 50) -> list[dict[str, Any]]:
    s = schema.channel_settlements
    query = select(s).order_by(desc(s.c.id)).limit(limit)
    if failed_only:
        query = query.where(s.c.status == "failed")
    with store.engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [{"id": r["id"], "status": r["status"], "txHash": "0x" + bytes(r["tx_hash"]).hex() if r["tx_hash"] else None,
             "total": str(r["total"]), "gasUsed": r["gas_used"], "block": r["block_number"], "error": r["error"],
             "createdMs": r["created_at_ms"], "completedMs": r["completed_at_ms"]} for r in rows]


def sentinel_events(store: VoucherStore, *, limit: int = 50) -> list[dict[str, Any]]:
    e = schema.sentinel_events
    with store.engine.connect() as connection:
        rows = connection.execute(select(e).order_by(desc(e.c.id)).limit(limit)).mappings().all()
    return [{"id": r["id"], "channelId": "0x" + bytes(r["channel_id"]).hex(), "signer": r["signer"],
             "reason": r["kind"], "action": r["action"], "detail": r["detail"], "atMs": r["created_at_ms"]}
            for r in rows]
