"""Fees of settlement transactions and the retry schedule: pure arithmetic, no chain."""

import pytest
from protocolbanks.relayer.fee_policy import Fees, bumped_fees, initial_fees, minimum_replacement
from protocolbanks.relayer.retry_backoff import Backoff

GWEI = 10**9


def test_initial_fees__room_for_the_base_fee_to_double():
    assert initial_fees(10 * GWEI, 2 * GWEI, None) == Fees(22 * GWEI, 2 * GWEI)


def test_initial_fees__clipped_to_the_cap__or_none_below_the_base_fee():
    assert initial_fees(10 * GWEI, 2 * GWEI, 15 * GWEI) == Fees(15 * GWEI, 2 * GWEI)
    assert initial_fees(10 * GWEI, 2 * GWEI, 11 * GWEI) == Fees(11 * GWEI, 2 * GWEI)
    assert initial_fees(10 * GWEI, 2 * GWEI, 9 * GWEI) is None  # could not be mined at today's base fee


def test_bump__both_fees_rise_at_least_12_5_percent():
    previous = Fees(20 * GWEI, 2 * GWEI)
    bumped = bumped_fees(previous, base_fee=0, suggested_priority=0, cap=None)
    assert bumped == Fees(22_500_000_000, 2_250_000_000)
    assert bumped.max_fee_per_gas * 8 >= previous.max_fee_per_gas * 9
    assert bumped.max_priority_fee_per_gas * 8 >= previous.max_priority_fee_per_gas * 9


def test_bump__rounds_up_and_moves_even_zero_fees():
    assert minimum_replacement(Fees(9, 1)) == Fees(11, 2)  # ceil(9 * 1.125) = 11; 1 -> 2
    assert minimum_replacement(Fees(0, 0)) == Fees(1, 1)


def test_bump__follows_the_market_when_it_moved_more():
    bumped = bumped_fees(Fees(20 * GWEI, 2 * GWEI), base_fee=30 * GWEI, suggested_priority=3 * GWEI, cap=None)
    assert bumped == Fees(63 * GWEI, 3 * GWEI)


def test_bump__never_above_the_cap__and_none_when_the_cap_leaves_no_room():
    previous = Fees(20 * GWEI, 2 * GWEI)
    assert bumped_fees(previous, 30 * GWEI, 3 * GWEI, cap=25 * GWEI) == Fees(25 * GWEI, 3 * GWEI)
    assert bumped_fees(previous, 30 * GWEI, 3 * GWEI, cap=22 * GWEI) is None  # below the 12.5 % minimum
    assert bumped_fees(Fees(20 * GWEI, 20 * GWEI), 0, 0, cap=22_500_000_000) == Fees(22_500_000_000, 22_500_000_000)


def test_bump__less_than_12_5_percent__refused():
    with pytest.raises(ValueError, match=r"12\.5"):
        bumped_fees(Fees(20, 2), 0, 0, None, bump_bps=1_000)


def test_backoff__doubles_up_to_the_cap():
    backoff = Backoff(initial_ms=1_000, max_ms=10_000)
    assert [backoff.delay_ms(n) for n in range(6)] == [0, 1_000, 2_000, 4_000, 8_000, 10_000]
    assert backoff.delay_ms(10_000) == 10_000  # no overflow after many failures
    assert backoff.retry_at_ms(3, now_ms=5_000) == 9_000
