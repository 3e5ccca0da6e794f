"""The settlement ledger on both backends (`store_url`: SQLite, then a real PostgreSQL server): schema v2 applied to a
v1 database, every transaction of a settlement recorded before broadcast, outcomes per row, holds, nonces."""

from protocolbanks.relayer.store import AcceptedVoucher, VoucherStore
from protocolbanks.relayer.store.migrations import MIGRATIONS
from protocolbanks.relayer.store.settlement_ledger import ChannelHold, RowOutcome, SettlementItem, SettlementLedger
from protocolbanks.sdk.acceptance import PeriodUsage
from sqlalchemy import inspect, text

A, B = b"\x0a" * 32, b"\x0b" * 32


def voucher(channel: bytes, cumulative: int, at: int = 1_000) -> AcceptedVoucher:
    return AcceptedVoucher(channel, "0xPayer", "0xPayee", "0xToken", "0xKey", 1, cumulative, cumulative, 12345,
                           b"\x01" * 32, b"\x02" * 32, at, PeriodUsage(0, cumulative))


def item(channel: bytes, cumulative: int) -> SettlementItem:
    return SettlementItem(channel, "0xToken", cumulative, 12345, b"\x01" * 32, b"\x02" * 32)


def test_ledger__v1_database__migrated_to_v2__legacy_sent_settlement_kept(store_url):
    store = VoucherStore(store_url)
    with store.engine.begin() as connection:  # turn it back into what v1 made, with a settlement in flight
        connection.execute(text("DROP TABLE settlement_transactions"))
        connection.execute(text("DROP TABLE settlement_holds"))
        for table, column in (("channel_settlements", "token"), ("channel_settlements", "error_class"),
                              ("channel_settlements", "retry_at_ms"), ("settlement_items", "outcome"),
                              ("settlement_items", "error")):
            connection.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        connection.execute(text("DELETE FROM schema_version WHERE version = 2"))
        connection.execute(text("INSERT INTO channel_settlements (status, tx_hash, nonce, total, attempts, "
                                "created_at_ms) VALUES ('sent', :tx, 7, '0', 1, 5000)"), {"tx": b"\x99" * 32})
    store.close()

    store = VoucherStore(store_url)
    assert store.schema_version == len(MIGRATIONS) == 2
    inspector = inspect(store.engine)
    assert {"settlement_transactions", "settlement_holds"} <= set(inspector.get_table_names())
    assert {"token", "error_class", "retry_at_ms"} <= {c["name"] for c in inspector.get_columns("channel_settlements")}
    [legacy] = SettlementLedger(store).sent()
    assert (legacy.nonce, legacy.newest.tx_hash, legacy.newest.raw) == (7, b"\x99" * 32, None)
    assert SettlementLedger(store).next_nonce_floor() == 8
    store.close()


def test_ledger__replacements_recorded__the_mined_one_confirms__others_marked_replaced(store_url):
    store = VoucherStore(store_url)
    store.append([voucher(A, 300), voucher(B, 200)])
    ledger = SettlementLedger(store)
    settlement = ledger.queue([item(A, 300), item(B, 200)], "0xToken", 1_000)
    assert ledger.in_flight() == {A: settlement, B: settlement} and ledger.sent() == []
    ledger.record_signed(settlement, tx_hash=b"\x01" * 32, nonce=4, max_fee_per_gas=100, max_priority_fee_per_gas=10,
                         raw=b"first", now_ms=1_000)
    ledger.mark_broadcast(b"\x01" * 32, 1_001)
    ledger.record_signed(settlement, tx_hash=b"\x02" * 32, nonce=4, max_fee_per_gas=113, max_priority_fee_per_gas=12,
                         raw=b"second", now_ms=61_000)
    [in_flight] = ledger.sent()
    assert [t.tx_hash for t in in_flight.transactions] == [b"\x01" * 32, b"\x02" * 32]
    assert [t.status for t in in_flight.transactions] == ["broadcast", "signed"]  # the 2nd not yet broadcast
    assert ledger.next_nonce_floor() == 5

    ledger.confirm(settlement, total=300, block_number=9, gas_used=50_000, now_ms=70_000, mined_tx_hash=b"\x01" * 32,
                   outcomes={A: RowOutcome("redeemed"), B: RowOutcome("failed", "InvalidSignature")},
                   holds=[ChannelHold(B, 200, "permanent", "InvalidSignature", 1, None, settlement)])
    progress = store.progress()
    assert (progress[A].unsettled, progress[B].unsettled) == (0, 200)  # a refused row settles nothing
    assert ledger.sent() == [] and ledger.in_flight() == {}
    hold = ledger.holds()[B]
    assert hold.blocks(200, 10**12) and not hold.blocks(201, 70_000)  # until a newer voucher arrives
    with store.engine.connect() as connection:
        statuses = dict(connection.execute(text("SELECT tx_hash, status FROM settlement_transactions")).all())
    assert {bytes(k): v for k, v in statuses.items()} == {b"\x01" * 32: "mined", b"\x02" * 32: "replaced"}
    store.close()


def test_ledger__retry_later__backoff_state_survives_a_restart__nothing_due_settles(store_url):
    store = VoucherStore(store_url)
    store.append([voucher(A, 300)])
    ledger = SettlementLedger(store)
    settlement = ledger.queue([item(A, 300)], "0xToken", 1_000)
    ledger.retry_later(settlement, error_class="transient", error="connection refused", retry_at_ms=3_000)
    ledger.retry_later(settlement, error_class="transient", error="connection refused", retry_at_ms=5_000)
    store.close()

    ledger = SettlementLedger(store := VoucherStore(store_url))
    assert ledger.queued(4_999) == []
    [queued] = ledger.queued(5_000)
    assert (queued.settlement_id, queued.attempts, queued.channel_ids) == (settlement, 2, (A,))

    earlier = ledger.queue([item(A, 300)], "0xToken", 1_000)  # an earlier failure left a hold on the channel
    ledger.fail(earlier, "transaction reverted", 2_000, holds=[ChannelHold(A, 300, "transient", "reverted", 1, 9_000)])
    assert ledger.holds()[A].blocks(300, 8_999)
    ledger.fail(settlement, "simulated: nothing to send", 6_000, status="skipped",
                outcomes={A: RowOutcome("nothing_due")})
    assert store.progress()[A].unsettled == 0 and ledger.holds() == {}  # settled: the hold is lifted
    store.close()
