"""The relayer's store: durable across reopening, exact big amounts, idempotency keys, migrations.

Every case runs on SQLite and on a real PostgreSQL server (`store_url`, tests/postgres_server.py)."""

from dataclasses import replace

import pytest
from protocolbanks.relayer.store import AcceptedVoucher, VoucherStore
from protocolbanks.relayer.store.migrations import MIGRATIONS
from protocolbanks.relayer.store.schema import schema_version
from protocolbanks.relayer.store.voucher_store import CONFLICT, REFUSED, STORED
from protocolbanks.sdk.acceptance import PeriodUsage
from sqlalchemy import select

CHANNEL = b"\x07" * 32


def voucher(cumulative: int, amount: int, at: int, request_id: str | None = None) -> AcceptedVoucher:
    return AcceptedVoucher(CHANNEL, "0xPayer", "0xPayee", "0xToken", "0xKey", 1, cumulative, amount, 12345,
                           b"\x01" * 32, b"\x02" * 32, at, PeriodUsage(at // 3_600_000, amount), request_id)


def test_store__survives_reopen_with_progress(store_url):
    url = store_url
    store = VoucherStore(url)
    store.append([voucher(100, 100, 1_000, "req-1"), voucher(250, 150, 2_000, "req-2")])
    store.close()
    reopened = VoucherStore(url)
    progress = reopened.progress()[CHANNEL]
    assert (progress.accepted_cumulative, progress.settled_cumulative, progress.unsettled) == (250, 0, 250)
    assert progress.first_unsettled_at_ms == 1_000 and progress.last_activity_at_ms == 2_000
    assert reopened.payment_for_request("req-2") == (CHANNEL, 250, 150)


def test_store__amounts_beyond_64_bits_are_exact(store_url):
    store = VoucherStore(store_url)
    huge = 2**80 - 1
    store.append([voucher(huge, huge, 1)])
    assert store.progress()[CHANNEL].accepted_cumulative == huge


def test_store__a_lower_voucher_stored_later__is_a_conflict_and_the_highest_stays(store_url):
    """Relayer instances sharing a database can commit out of order: the highest cumulative stays, whatever its
    number of digits (SQLite keeps amounts as text, where "9" > "10"); the lower one is not stored."""
    store = VoucherStore(store_url)
    assert store.append([voucher(10, 10, 1_000, "ten")]) == [STORED]
    assert store.append([voucher(9, 9, 2_000, "nine")]) == [CONFLICT]
    progress = store.progress()[CHANNEL]
    assert (progress.accepted_cumulative, progress.last_activity_at_ms) == (10, 1_000)
    assert store.payment_for_request("nine") is None
    store.append([voucher(2**70, 2**70 - 10, 3_000)])
    assert store.append([voucher(2**70 - 1, 1, 4_000)]) == [CONFLICT]
    assert store.progress()[CHANNEL].accepted_cumulative == 2**70


def test_store__two_instances_deciding_from_the_same_base__one_conflicts(store_url):
    """Optimistic concurrency: a voucher is stored only if the channel still holds what its decision assumed."""
    first, second = VoucherStore(store_url), VoucherStore(store_url)
    assert first.append([replace(voucher(5, 5, 1), previous_cumulative=0)]) == [STORED]
    # both instances saw 5 and each accepted a voucher on top of it
    assert first.append([replace(voucher(8, 3, 2, "a"), previous_cumulative=5)]) == [STORED]
    assert second.append([replace(voucher(9, 4, 3, "b"), previous_cumulative=5)]) == [CONFLICT]
    assert second.payment_for_request("b") is None  # its payment of 4 would have double counted 3 of them
    reloaded = second.channel_progress(CHANNEL)
    assert reloaded is not None and reloaded.accepted_cumulative == 8
    assert second.append([replace(voucher(9, 1, 4, "b"), previous_cumulative=8)]) == [STORED]
    assert second.channel_progress(CHANNEL).accepted_cumulative == 9


def test_store__each_row_is_checked_against_its_own_previous_amount(store_url):
    """Channels at different amounts in one batch (a bulk statement must not bind one row's check for all)."""
    store = VoucherStore(store_url)
    others = [bytes([i]) * 32 for i in range(10, 14)]
    store.append([replace(voucher(100 * (i + 1), 1, 1), channel_id=c, previous_cumulative=0)
                  for i, c in enumerate(others)])
    batch = [replace(voucher(100 * (i + 1) + 7, 7, 2), channel_id=c, previous_cumulative=100 * (i + 1))
             for i, c in enumerate(others)]
    assert store.append(batch) == [STORED] * len(others)
    assert [store.channel_progress(c).accepted_cumulative for c in others] == [107, 207, 307, 407]
    stale = [replace(voucher(100 * (i + 1) + 9, 2, 3), channel_id=c, previous_cumulative=100 * (i + 1))
             for i, c in enumerate(others)]
    assert store.append(stale) == [CONFLICT] * len(others)


def test_store__a_reused_request_id__refuses_that_voucher_only(store_url):
    store = VoucherStore(store_url)
    store.append([voucher(1, 1, 1, "same")])
    other_channel = replace(voucher(7, 7, 2, "other"), channel_id=b"\x08" * 32)
    assert store.append([other_channel, voucher(3, 2, 3, "same")]) == [STORED, REFUSED]
    assert store.progress()[CHANNEL].accepted_cumulative == 1
    assert store.payment_for_request("other") == (b"\x08" * 32, 7, 7)


def test_store__request_settlement_makes_a_channel_due_now(store_url):
    store = VoucherStore(store_url)
    assert not store.request_settlement(CHANNEL)
    store.append([voucher(4, 4, 5_000)])
    assert store.request_settlement(CHANNEL)
    assert store.channel_progress(CHANNEL).first_unsettled_at_ms == 1


def test_store__migrations_apply_once_and_record_version(store_url):
    assert VoucherStore(store_url).schema_version == len(MIGRATIONS)
    store = VoucherStore(store_url)
    assert store.schema_version == len(MIGRATIONS)
    with store.engine.connect() as connection:
        rows = connection.execute(select(schema_version.c.version).order_by(schema_version.c.version)).all()
    assert [tuple(r) for r in rows] == [(v,) for v, _ in MIGRATIONS]


def test_store__sqlite_is_durable_mode(tmp_path):
    store = VoucherStore(f"sqlite:///{tmp_path / 'd.db'}")
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_store__negative_amount__refused(store_url):
    store = VoucherStore(store_url)
    with pytest.raises(Exception, match="non-negative"):
        store.append([voucher(-1, 1, 1)])


def test_store__unsettled_only_lists_channels_holding_unredeemed_money(store_url):
    from protocolbanks.relayer.store.voucher_store import SettlementItem, SettlementLedger

    store = VoucherStore(store_url)
    store.append([voucher(100, 100, 1_000)])
    assert set(store.progress(unsettled_only=True)) == {CHANNEL}
    ledger = SettlementLedger(store)
    settlement = ledger.record_sent([SettlementItem(CHANNEL, "0xToken", 100, 0, b"", b"")], b"\x01" * 32, 0, 2_000)
    ledger.confirm(settlement, total=100, block_number=1, gas_used=1, now_ms=3_000)
    assert store.progress(unsettled_only=True) == {} and store.progress()[CHANNEL].unsettled == 0
    store.append([voucher(150, 50, 4_000)])
    assert store.progress(unsettled_only=True)[CHANNEL].first_unsettled_at_ms == 4_000
