"""Read-only views of the relayer's database for operators (channels, settlements, Sentinel events)."""

from __future__ import annotations

from typing import Any

from protocolbanks.relayer.store import VoucherStore, schema
from sqlalchemy import desc, or_, select


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
    """Settlements, newest first, each with every transaction signed for it (the first and its same-nonce
    replacements; `minedTx` is the one that counted) and each row's outcome. `failed_only`: settlements that
    failed as a whole, and those with rows the contract refused for good (`failedItems`, with the decoded error)."""
    s, items, t = schema.channel_settlements, schema.settlement_items, schema.settlement_transactions
    query = select(s).order_by(desc(s.c.id)).limit(limit)
    if failed_only:
        failed_rows = select(items.c.settlement_id).where(items.c.outcome == "failed")
        query = query.where(or_(s.c.status == "failed", s.c.id.in_(failed_rows)))
    with store.engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
        ids = [r["id"] for r in rows]
        rows_of: dict[int, list[Any]] = {i: [] for i in ids}
        txs_of: dict[int, list[Any]] = {i: [] for i in ids}
        for item in connection.execute(select(items).where(items.c.settlement_id.in_(ids))).mappings():
            rows_of[item["settlement_id"]].append(item)
        for tx in connection.execute(select(t).where(t.c.settlement_id.in_(ids))
                                     .order_by(t.c.signed_at_ms)).mappings():
            txs_of[tx["settlement_id"]].append(tx)
    out = []
    for r in rows:
        entries = [{"channelId": _hex(i["channel_id"]), "cumulative": str(i["cumulative"]), "outcome": i["outcome"],
                    "error": i["error"]} for i in rows_of[r["id"]]]
        out.append({
            "id": r["id"], "status": r["status"], "txHash": _hex(r["tx_hash"]) if r["tx_hash"] else None,
            "nonce": r["nonce"], "total": str(r["total"]), "gasUsed": r["gas_used"], "block": r["block_number"],
            "error": r["error"], "errorClass": r["error_class"], "attempts": r["attempts"],
            "retryAtMs": r["retry_at_ms"], "createdMs": r["created_at_ms"], "completedMs": r["completed_at_ms"],
            "transactions": [{"txHash": _hex(x["tx_hash"]), "status": x["status"],
                              "maxFeePerGas": str(x["max_fee_per_gas"]),
                              "maxPriorityFeePerGas": str(x["max_priority_fee_per_gas"]),
                              "signedMs": x["signed_at_ms"]} for x in txs_of[r["id"]]],
            "items": entries,
            "failedItems": [e for e in entries if e["outcome"] == "failed"],
        })
    return out


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def sentinel_events(store: VoucherStore, *, limit: int = 50) -> list[dict[str, Any]]:
    e = schema.sentinel_events
    with store.engine.connect() as connection:
        rows = connection.execute(select(e).order_by(desc(e.c.id)).limit(limit)).mappings().all()
    return [{"id": r["id"], "channelId": "0x" + bytes(r["channel_id"]).hex(), "signer": r["signer"],
             "reason": r["kind"], "action": r["action"], "detail": r["detail"], "atMs": r["created_at_ms"]}
            for r in rows]
