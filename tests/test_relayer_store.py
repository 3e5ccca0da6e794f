"""The relayer's store: durable across reopening, exact big amounts, idempotency keys, migrations."""

import sqlite3

import pytest
from protocolbanks.relayer.store import AcceptedVoucher, VoucherStore
from protocolbanks.relayer.store.migrations import MIGRATIONS
from protocolbanks.sdk.acceptance import PeriodUsage
from sqlalchemy.exc import IntegrityError

CHANNEL = b"\x07" * 32


def voucher(cumulative: int, amount: int, at: int, request_id: str | None = None) -> AcceptedVoucher:
    return AcceptedVoucher(CHANNEL, "0xPayer", "0xPayee", "0xToken", "0xKey", 1, cumulative, amount, 12345,
                           b"\x01" * 32, b"\x02" * 32, at, PeriodUsage(at // 3_600_000, amount), request_id)


def test_store__survives_reopen_with_progress(tmp_path):
    url = f"sqlite:///{tmp_path / 'relayer.db'}"
    store = VoucherStore(url)
    store.append([voucher(100, 100, 1_000, "req-1"), voucher(250, 150, 2_000, "req-2")])
    store.close()
    reopened = VoucherStore(url)
    progress = reopened.progress()[CHANNEL]
    assert (progress.accepted_cumulative, progress.settled_cumulative, progress.unsettled) == (250, 0, 250)
    assert progress.first_unsettled_at_ms == 1_000 and progress.last_activity_at_ms == 2_000
    assert reopened.payment_for_request("req-2") == (CHANNEL, 250, 150)


def test_store__amounts_beyond_64_bits_are_exact(tmp_path):
    store = VoucherStore(f"sqlite:///{tmp_path / 'big.db'}")
    huge = 2**80 - 1
    store.append([voucher(huge, huge, 1)])
    assert store.progress()[CHANNEL].accepted_cumulative == huge


def test_store__duplicate_request_id__rolls_back_the_whole_batch(tmp_path):
    store = VoucherStore(f"sqlite:///{tmp_path / 'dup.db'}")
    store.append([voucher(1, 1, 1, "same")])
    with pytest.raises(IntegrityError):
        store.append([voucher(2, 1, 2, "other"), voucher(3, 1, 3, "same")])
    assert store.progress()[CHANNEL].accepted_cumulative == 1
    assert store.payment_for_request("other") is None


def test_store__migrations_apply_once_and_record_version(tmp_path):
    path = tmp_path / "m.db"
    assert VoucherStore(f"sqlite:///{path}").schema_version == len(MIGRATIONS)
    assert VoucherStore(f"sqlite:///{path}").schema_version == len(MIGRATIONS)
    rows = sqlite3.connect(path).execute("select version from schema_version").fetchall()
    assert rows == [(v,) for v, _ in MIGRATIONS]


def test_store__sqlite_is_durable_mode(tmp_path):
    store = VoucherStore(f"sqlite:///{tmp_path / 'd.db'}")
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_store__negative_amount__refused(tmp_path):
    store = VoucherStore(f"sqlite:///{tmp_path / 'n.db'}")
    with pytest.raises(Exception, match="non-negative"):
        store.append([voucher(-1, 1, 1)])


def test_store__unsettled_only_lists_channels_holding_unredeemed_money(tmp_path):
    from protocolbanks.relayer.store.voucher_store import SettlementItem, SettlementLedger

    store = VoucherStore(f"sqlite:///{tmp_path / 's.db'}")
    store.append([voucher(100, 100, 1_000)])
    assert set(store.progress(unsettled_only=True)) == {CHANNEL}
    ledger = SettlementLedger(store)
    settlement = ledger.record_sent([SettlementItem(CHANNEL, "0xToken", 100, 0, b"", b"")], b"\x01" * 32, 0, 2_000)
    ledger.confirm(settlement, total=100, block_number=1, gas_used=1, now_ms=3_000)
    assert store.progress(unsettled_only=True) == {} and store.progress()[CHANNEL].unsettled == 0
    store.append([voucher(150, 50, 4_000)])
    assert store.progress(unsettled_only=True)[CHANNEL].first_unsettled_at_ms == 4_000
