"""The relayer's store on a real PostgreSQL server (tests/postgres_server.py starts one on loopback).

Migrations from an empty database (also several instances starting at once), exact amounts up to 2^256-1, two
relayer instances writing concurrently to one database, and the HTTP intake storing into PostgreSQL end to end.
The backend-neutral store cases run on PostgreSQL too, from tests/test_relayer_store.py.
"""

import asyncio
import random
import threading
import time
from collections import defaultdict

from protocolbanks.relayer.inspection import channels as inspect_channels
from protocolbanks.relayer.intake import VoucherIntake
from protocolbanks.relayer.store import AcceptedVoucher, VoucherStore, metadata
from protocolbanks.relayer.store.migrations import MIGRATIONS
from protocolbanks.relayer.store.schema import channel_payments, payment_channels, schema_version, settlement_items
from protocolbanks.relayer.store.voucher_store import CONFLICT, STORED, SettlementLedger
from protocolbanks.sdk.acceptance import PeriodUsage
from sqlalchemy import Numeric, func, inspect, select, text
from test_relayer_intake_http import CHANNEL as HTTP_CHANNEL
from test_relayer_intake_http import DOMAIN, SNAPSHOT, U, body, intake_on_loopback, post

MAX_UINT256 = 2**256 - 1


def voucher(channel: bytes, cumulative: int, *, amount: int = 1, at: int = 1_000,
            request_id: str | None = None) -> AcceptedVoucher:
    return AcceptedVoucher(channel, "0xPayer", "0xPayee", "0xToken", "0xKey", 1, cumulative, amount, 12345,
                           b"\x01" * 32, b"\x02" * 32, at, PeriodUsage(0, cumulative), request_id)


def test_postgres__migrations_from_empty__every_table_with_exact_amount_columns(postgres_url):
    store = VoucherStore(postgres_url)
    assert store.engine.dialect.name == "postgresql"
    assert store.schema_version == len(MIGRATIONS)
    inspector = inspect(store.engine)
    assert set(inspector.get_table_names()) == set(metadata.tables)
    amount = {c["name"]: c["type"] for c in inspector.get_columns("payment_channels")}["accepted_cumulative"]
    assert isinstance(amount, Numeric) and (amount.precision, amount.scale) == (78, 0)
    store.close()


def test_postgres__instances_starting_together__migrate_exactly_once(postgres_url):
    start = threading.Barrier(4)
    versions: list[int] = []
    errors: list[BaseException] = []

    def open_store() -> None:
        start.wait()
        try:
            store = VoucherStore(postgres_url)
            versions.append(store.schema_version)
            store.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == [] and versions == [len(MIGRATIONS)] * 4
    store = VoucherStore(postgres_url)
    with store.engine.connect() as connection:
        rows = connection.execute(select(schema_version.c.version).order_by(schema_version.c.version)).all()
    assert [r[0] for r in rows] == [v for v, _ in MIGRATIONS]
    store.close()


def test_postgres__amounts_up_to_2_pow_256_minus_1__exact_everywhere(postgres_url):
    channel = b"\x2a" * 32
    store, other = VoucherStore(postgres_url), VoucherStore(postgres_url)
    store.append([voucher(channel, MAX_UINT256 - 1, amount=MAX_UINT256 - 1, request_id="a")])
    store.append([voucher(channel, MAX_UINT256, amount=1, request_id="b")])
    late = voucher(channel, MAX_UINT256 - 2, amount=MAX_UINT256, request_id="late")
    assert other.append([late]) == [CONFLICT]  # lower than what is stored: the instance must decide again
    progress = other.progress()[channel]
    assert (progress.accepted_cumulative, progress.period.spent) == (MAX_UINT256, MAX_UINT256)
    assert store.payment_for_request("a") == (channel, MAX_UINT256 - 1, MAX_UINT256 - 1)
    assert store.payment_for_request("late") is None
    ledger = SettlementLedger(store)
    newest = ledger.newest_vouchers([channel])[channel]
    assert newest.cumulative == MAX_UINT256 and newest.terms == 12345
    settlement = ledger.record_sent([newest], b"\x03" * 32, 7, 2_000)
    ledger.confirm(settlement, total=MAX_UINT256, block_number=1, gas_used=21_000, now_ms=3_000)
    assert other.progress()[channel].unsettled == 0
    assert inspect_channels(other)[0]["settled"] == str(MAX_UINT256)
    store.close()
    other.close()


def _payment_count(store: VoucherStore) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(channel_payments)).scalar_one())


def test_postgres__two_instances_writing_and_settling_concurrently__nothing_lost_highest_kept(postgres_url):
    """Four writer threads on two VoucherStores race on the same eight channels: each writer owns every fourth
    cumulative of each channel and writes them in increasing order, in batches spanning all channels in a
    shuffled order. Meanwhile each instance settles what it sees as newest and confirms it."""
    instances = [VoucherStore(postgres_url), VoucherStore(postgres_url)]
    channel_ids = [bytes([i]) * 32 for i in range(1, 9)]
    writers, top = 4, 60
    acknowledged: list[tuple[bytes, int, str]] = []
    conflicts: list[AcceptedVoucher] = []
    errors: list[BaseException] = []
    confirmed: dict[bytes, list[int]] = defaultdict(list)
    start = threading.Barrier(writers + len(instances))
    writing = threading.Event()
    writing.set()
    guard = threading.Lock()

    def write(writer: int) -> None:
        store, rng = instances[writer % 2], random.Random(writer)
        start.wait()
        for cumulative in range(writer + 1, top + 1, writers):
            batch = [voucher(cid, cumulative, at=cumulative, request_id=f"{cid.hex()[:4]}-{cumulative}")
                     for cid in rng.sample(channel_ids, len(channel_ids))]
            try:
                outcomes = store.append(batch)
            except BaseException as exc:
                with guard:
                    errors.append(exc)
                return
            with guard:  # a voucher lower than one already stored is a conflict (the intake re-decides: stale)
                acknowledged.extend((v.channel_id, v.cumulative, v.request_id or "")
                                    for v, outcome in zip(batch, outcomes, strict=True) if outcome == STORED)
                conflicts.extend(v for v, outcome in zip(batch, outcomes, strict=True) if outcome == CONFLICT)

    def settle(instance: int) -> None:
        ledger = SettlementLedger(instances[instance])
        start.wait()
        rounds = 0
        while writing.is_set() or rounds < 2:
            rounds += 1
            try:
                items = list(ledger.newest_vouchers(channel_ids).values())
                if not items:
                    continue
                tx_hash = (instance << 128 | rounds).to_bytes(32, "big")  # a transaction of its own each round
                settlement = ledger.record_sent(items, tx_hash, rounds, rounds)
                ledger.confirm(settlement, total=0, block_number=rounds, gas_used=1, now_ms=rounds)
            except BaseException as exc:
                with guard:
                    errors.append(exc)
                return
            with guard:
                for item in items:
                    confirmed[item.channel_id].append(item.cumulative)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    settlers = [threading.Thread(target=settle, args=(i,)) for i in range(len(instances))]
    for t in threads + settlers:
        t.start()
    for t in threads:
        t.join(timeout=120)
    writing.clear()
    for t in settlers:
        t.join(timeout=120)
    assert errors == []

    reader = VoucherStore(postgres_url)
    assert len(acknowledged) + len(conflicts) == len(channel_ids) * top
    assert len(acknowledged) == _payment_count(reader)
    for v in conflicts:  # refused only because a higher voucher of its channel was stored first
        assert reader.payment_for_request(v.request_id or "") is None
        assert any(c == v.channel_id and n > v.cumulative for c, n, _ in acknowledged)
    for channel_id, cumulative, request_id in acknowledged:  # every acknowledged voucher is stored, exactly
        assert reader.payment_for_request(request_id) == (channel_id, cumulative, 1)
    progress = reader.progress()
    for channel_id in channel_ids:
        p = progress[channel_id]
        assert p.accepted_cumulative == top  # the highest voucher wins, whoever committed last
        assert p.settled_cumulative == max(confirmed[channel_id])  # never moved backwards by a slower confirm
        assert (p.first_unsettled_at_ms is None) == (p.unsettled == 0)  # the unsettled clock matches the money
    with reader.engine.connect() as connection:  # every settled voucher is one that was stored
        stored = {(bytes(r[0]), int(r[1])) for r in connection.execute(
            select(channel_payments.c.channel_id, channel_payments.c.cumulative)).all()}
        items = {(bytes(r[0]), int(r[1])) for r in connection.execute(
            select(settlement_items.c.channel_id, settlement_items.c.cumulative)).all()}
    assert items and items <= stored
    for store in [*instances, reader]:
        store.close()


def test_postgres__confirm_racing_another_instances_append__keeps_the_unsettled_clock(postgres_url):
    """A settlement of 100 is confirmed while another instance's append of 150 is still uncommitted: the confirm
    must wait and see 150, leaving the channel unsettled (clock kept), not mark it fully settled."""
    channel = b"\x33" * 32
    store, other = VoucherStore(postgres_url), VoucherStore(postgres_url)
    store.append([voucher(channel, 100, at=1_000)])
    ledger = SettlementLedger(store)
    settlement = ledger.record_sent([ledger.newest_vouchers([channel])[channel]], b"\x04" * 32, 0, 2_000)
    c = payment_channels
    with other.engine.connect() as appending, other.engine.connect() as watcher:
        transaction = appending.begin()
        appending.execute(c.update().where(c.c.channel_id == channel).values(accepted_cumulative=150))
        confirming = threading.Thread(target=ledger.confirm, args=(settlement,),
                                      kwargs={"total": 100, "block_number": 1, "gas_used": 1, "now_ms": 3_000})
        confirming.start()
        deadline = time.monotonic() + 10
        while not watcher.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one():
            watcher.rollback()  # a fresh snapshot each poll
            assert time.monotonic() < deadline, "the confirm never waited for the uncommitted append"
            time.sleep(0.01)
        transaction.commit()
    confirming.join(timeout=30)
    progress = store.progress()[channel]
    assert (progress.settled_cumulative, progress.accepted_cumulative) == (100, 150)
    assert progress.first_unsettled_at_ms == 1_000  # still due for settlement by age
    store.close()
    other.close()


def test_postgres__http_intake_stores_into_postgres_end_to_end(postgres_url):
    """The intake over real HTTP on loopback, committing to PostgreSQL before it answers; a restarted relayer
    (a new store and intake on the same database) knows what was accepted."""

    async def serve(scenario):
        store = VoucherStore(postgres_url)
        try:
            async with intake_on_loopback(VoucherIntake(store, {HTTP_CHANNEL: SNAPSHOT}.get, DOMAIN)) as (session, url):
                return await scenario(session, url)
        finally:
            store.close()

    async def first(session, url):
        status, answer = await post(session, url, body(2 * U, requestId="pg-1"))
        assert (status, answer["status"], answer["remaining"]) == (200, "accepted", str(28 * U))
        witness = VoucherStore(postgres_url)  # another connection sees it committed already
        assert witness.progress()[HTTP_CHANNEL].accepted_cumulative == 2 * U
        witness.close()
        answers = await asyncio.gather(*(post(session, url, body(5 * U)) for _ in range(10)))
        assert sorted(a[1]["status"] for a in answers) == ["accepted"] + ["stale"] * 9

    async def after_restart(session, url):
        assert (await post(session, url, body(5 * U)))[1]["status"] == "stale"
        assert (await post(session, url, body(2 * U, requestId="pg-1")))[1]["status"] == "duplicate"
        status, answer = await post(session, url, body(6 * U))
        assert (status, answer["status"], answer["payment"]) == (200, "accepted", str(U))

    asyncio.run(serve(first))
    asyncio.run(serve(after_restart))
    store = VoucherStore(postgres_url)
    assert store.progress()[HTTP_CHANNEL].accepted_cumulative == 6 * U
    assert store.payment_for_request("pg-1") == (HTTP_CHANNEL, 2 * U, 2 * U)
    assert _payment_count(store) == 3
    store.close()
