"""Sentinel trips recorded by one worker refuse the key in every worker and after a restart; a payer's lift
accepts it again everywhere."""

from protocolbanks.relayer.sentinel import HardLimits, SentinelGuard, SentinelPolicy
from protocolbanks.relayer.sentinel.guard import TRIPPED
from protocolbanks.relayer.sentinel.resolution import FreezeResolutionWatcher
from protocolbanks.relayer.sentinel.responder import SentinelResponder
from protocolbanks.relayer.sentinel.trip_feed import SentinelTripFeed
from protocolbanks.relayer.store import VoucherStore
from protocolbanks.sdk import LaneTerms
from protocolbanks.sdk.acceptance import ChannelSnapshot

U = 10**6
CHANNEL = b"\x5a" * 32
SNAPSHOT = ChannelSnapshot(CHANNEL, "0x" + "01" * 20, "0x" + "02" * 20, "0x" + "03" * 20, "0x" + "04" * 20,
                           LaneTerms(50 * U, 0, 0, 2**39, 3), deposit=50 * U, claimed=0)


def guard_for(store):
    responder = SentinelResponder(store)
    guard = SentinelGuard(SentinelPolicy(limits=HardLimits(max_per_payment=U), spike=None), responder.enqueue)
    return guard, responder


def test_a_trip_in_one_worker_refuses_the_key_in_the_others_and_after_restart(tmp_path):
    store = VoucherStore(f"sqlite:///{tmp_path / 'shared.db'}")
    (a, responder_a), (b, _) = guard_for(store), guard_for(store)
    feed_b = SentinelTripFeed(store, b)
    assert b(SNAPSHOT, "0xkey", U // 2, 40 * U, 1_000) is None
    assert a(SNAPSHOT, "0xkey", 2 * U, 40 * U, 2_000) == "sentinel_max_per_payment"
    responder_a.handle_pending()  # recorded (no guardian key here: refused only)
    assert b(SNAPSHOT, "0xkey", U // 2, 40 * U, 3_000) is None  # b has not read the record yet
    assert feed_b.poll() == 1
    assert b(SNAPSHOT, "0xkey", U // 2, 40 * U, 4_000) == TRIPPED

    restarted, _ = guard_for(VoucherStore(f"sqlite:///{tmp_path / 'shared.db'}"))
    SentinelTripFeed(store, restarted).poll()
    assert restarted(SNAPSHOT, "0xkey", U // 2, 40 * U, 5_000) == TRIPPED

    FreezeResolutionWatcher(a, store)("ChannelUnfrozen", {"channelId": CHANNEL})  # the payer lifted it
    assert feed_b.poll() == 1
    assert b(SNAPSHOT, "0xkey", U // 2, 40 * U, 6_000) is None
    fresh, _ = guard_for(store)
    SentinelTripFeed(store, fresh).poll()  # trip then lift, replayed in order
    assert fresh(SNAPSHOT, "0xkey", U // 2, 40 * U, 7_000) is None


def test_only_the_recording_worker_writes_resolutions(tmp_path):
    store = VoucherStore(f"sqlite:///{tmp_path / 'shared.db'}")
    guard, _ = guard_for(store)
    guard.mark_tripped(CHANNEL, 3)
    FreezeResolutionWatcher(guard, store, record=False)("ChannelUnfrozen", {"channelId": CHANNEL})
    assert guard.tripped_epochs(CHANNEL) == []  # it follows the decision
    assert SentinelTripFeed(store, guard).poll() == 0  # but leaves the record to the recording worker
