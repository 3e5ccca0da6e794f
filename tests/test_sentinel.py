"""Sentinel rules on generated spending traces: a busy agent never trips, a vertical spike trips in seconds."""

import random

import pytest
from protocolbanks.relayer.sentinel import HardLimits, HardRuleBook, RuleViolation, SpikeDetector, SpikeSettings

UNIT = 10**6
PRICE = UNIT // 10  # 0.1 U per request
SETTINGS = SpikeSettings(window_s=5, ratio=8, floor_per_s=UNIT // 2, half_life_s=120, warmup_s=60)


def trace(rng: random.Random, seconds: range, per_second) -> list[int]:
    """Payment times (ms) with a per-second request count drawn by `per_second(second)`, spread in the second."""
    times = []
    for second in seconds:
        for _ in range(per_second(second)):
            times.append(second * 1000 + rng.randrange(1000))
    return sorted(times)


def first_trip(times: list[int], detector: SpikeDetector) -> int | None:
    for t in times:
        if detector.observe(PRICE, t).tripped:
            return t
    return None


@pytest.mark.parametrize("seed", range(5))
def test_busy_agent__steady_high_rate_with_jitter__never_trips(seed):
    rng = random.Random(seed)
    times = trace(rng, range(1800), lambda s: rng.randint(10, 30))  # ~20 req/s = 2 U/s for 30 minutes
    assert first_trip(times, SpikeDetector(SETTINGS)) is None


@pytest.mark.parametrize("seed", range(3))
def test_busy_agent__gradual_ramp_and_idle_gaps__never_trips(seed):
    rng = random.Random(seed)

    def rate(second: int) -> int:
        if 600 <= second < 660:
            return 0  # a quiet minute
        return 2 + second // 60  # the agent doubles its traffic every few minutes, smoothly

    times = trace(rng, range(1200), rate)
    assert first_trip(times, SpikeDetector(SETTINGS)) is None


@pytest.mark.parametrize("seed", range(5))
def test_runaway_script__vertical_spike__trips_within_seconds(seed):
    rng = random.Random(seed)
    spike_at = 600

    def rate(second: int) -> int:
        return rng.randint(1, 4) if second < spike_at else 200  # 0.25 U/s, then 20 U/s

    times = trace(rng, range(700), rate)
    tripped = first_trip(times, SpikeDetector(SETTINGS))
    assert tripped is not None and spike_at * 1000 <= tripped < (spike_at + 3) * 1000


def test_new_key__heavy_use_before_warmup__trips_on_the_floor():
    times = trace(random.Random(1), range(30), lambda s: 100)  # 10 U/s from the first second
    assert first_trip(times, SpikeDetector(SETTINGS)) is not None


def test_new_key__modest_use_before_warmup__does_not_trip():
    times = trace(random.Random(1), range(30), lambda s: 5)  # 0.5 U/s
    assert first_trip(times, SpikeDetector(SETTINGS)) is None


def test_spike_settings__invalid__raise():
    with pytest.raises(ValueError):
        SpikeSettings(ratio=1)


def test_hard_rules__per_payment_minute_hour_and_balance():
    book = HardRuleBook(HardLimits(max_per_payment=10 * UNIT, max_per_minute=20 * UNIT, max_per_hour=50 * UNIT,
                                   min_remaining_balance=UNIT))
    assert book.check(11 * UNIT, 0, 100 * UNIT) is RuleViolation.PER_PAYMENT
    for t in (0, 1_000):
        assert book.check(10 * UNIT, t, 100 * UNIT) is None
        book.record(10 * UNIT, t)
    assert book.check(1, 2_000, 100 * UNIT) is RuleViolation.PER_MINUTE
    assert book.check(10 * UNIT, 61_000, 100 * UNIT) is None  # the first payment left the minute window
    for t in (61_000, 122_000, 183_000):
        book.record(10 * UNIT, t)
    assert book.spent_last_hour == 50 * UNIT
    assert book.check(1, 244_000, 100 * UNIT) is RuleViolation.PER_HOUR
    assert book.check(1, 3_600_001, 100 * UNIT) is None  # the first payment left the hour window
    assert book.check(1, 3_600_001, UNIT - 1) is RuleViolation.MIN_BALANCE


def test_hard_rules__disabled_rules_allow_anything():
    book = HardRuleBook(HardLimits())
    for t in range(0, 100_000, 10):
        assert book.check(10**12, t, 0) is None
        book.record(10**12, t)


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_hard_limits__bad_values__raise(bad):
    with pytest.raises(ValueError):
        HardLimits(max_per_payment=bad)
