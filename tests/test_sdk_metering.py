"""Metered sessions: units of actual use between start and stop, the tick schedule a payer signs vouchers on, the
merchant's check of billed units against elapsed time, and cumulative amounts with each unit priced when used."""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocolbanks.sdk.metering import MeteredCharge, MeterRounding, MeterVerdict, UsageMeter
from protocolbanks.sdk.pricing import RateCard, TimeWindow, VolumeTier, verify_quote

T0 = datetime(2026, 11, 22, 16, 58, 30, tzinfo=UTC)
MINUTE = 100_000  # 0.1 U per minute


def after(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def peak_card(**kwargs) -> RateCard:
    return RateCard(MINUTE, unit="minute", windows=[TimeWindow(time(17), time(20), Decimal("1.5"), "peak")],
                    effective_at=T0 - timedelta(days=1), **kwargs)


def started(rounding=MeterRounding.UP, **kwargs) -> UsageMeter:
    meter = UsageMeter(60, rounding, **kwargs)
    meter.start(T0)
    return meter


# -- the meter ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seconds, up, down", [
    (-5, 0, 0), (0, 1, 0), (0.000001, 1, 0), (59.999999, 1, 0), (60, 2, 1), (119, 2, 1), (120, 3, 2), (3600, 61, 60),
])
def test_units_used__while_running(seconds, up, down):
    assert started(MeterRounding.UP).units_used(after(seconds)) == up
    assert started(MeterRounding.DOWN).units_used(after(seconds)) == down


@pytest.mark.parametrize("stop_after, up, down", [(0, 1, 0), (30, 1, 0), (60, 1, 1), (60.5, 2, 1), (150, 3, 2)])
def test_stop__freezes_the_units(stop_after, up, down):
    for rounding, expected in ((MeterRounding.UP, up), (MeterRounding.DOWN, down)):
        meter = started(rounding)
        assert meter.stop(after(stop_after)) == expected
        assert meter.units_used(after(stop_after)) == meter.units_used(after(10_000)) == expected
        assert not meter.running and meter.next_tick_at(after(10_000)) is None


def test_up_meter__stop_on_a_boundary_does_not_bill_the_unit_beginning_there():
    meter = started()
    assert meter.units_used(after(119.999)) == 2
    assert meter.stop(after(120)) == 2


def test_due_ticks__one_voucher_per_tick_of_use():
    meter = started()
    assert meter.due_ticks(after(0)) == 1  # per started minute: the first minute is due at once
    assert meter.mark_billed(at=after(0)) == 1
    assert meter.due_ticks(after(30)) == 0
    assert meter.due_ticks(after(60)) == 1
    assert meter.due_ticks(after(185)) == 3  # a payer that slept catches up: 3 ticks (or one voucher for 3)
    meter.mark_billed(3, at=after(185))
    assert meter.billed_units == 4 and meter.due_ticks(after(185)) == 0
    meter.stop(after(200))
    assert meter.due_ticks(after(900)) == 0


def test_mark_billed__never_ahead_of_use():
    meter = started(MeterRounding.DOWN)
    with pytest.raises(ValueError, match="only 0 used"):
        meter.mark_billed(at=after(59))
    assert meter.mark_billed(at=after(60)) == 1
    with pytest.raises(ValueError):
        meter.mark_billed(-1, at=after(60))


def test_next_tick_at__the_next_unit_boundary():
    up, down = UsageMeter(60, MeterRounding.UP), UsageMeter(60, MeterRounding.DOWN)
    assert up.next_tick_at(T0) is None  # not started
    up.start(T0)
    down.start(T0)
    assert up.next_tick_at(after(-1)) == T0 and down.next_tick_at(after(-1)) == after(60)
    assert up.next_tick_at(after(0)) == after(60) == down.next_tick_at(after(59.5))
    assert up.next_tick_at(after(60)) == after(120)
    assert up.unit_started_at(3) == after(180)


def test_meter__lifecycle_errors_and_clock():
    now = [T0]
    meter = UsageMeter(clock=lambda: now[0])
    assert meter.units_used() == 0 and meter.due_ticks() == 0
    with pytest.raises(ValueError, match="not running"):
        meter.stop()
    assert meter.start() == T0
    with pytest.raises(ValueError, match="already started"):
        meter.start()
    with pytest.raises(ValueError, match="before the start"):
        meter.stop(after(-1))
    now[0] = after(90)
    assert meter.units_used() == 2 and meter.stop() == 2
    with pytest.raises(ValueError, match="naive"):
        UsageMeter().start(datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        UsageMeter(0)
    with pytest.raises(TypeError):
        UsageMeter(1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("billed, seconds, verdict", [
    (0, 0, MeterVerdict.OK),  # the first minute's voucher is in flight
    (2, 0, MeterVerdict.OK),  # payer's clock one minute ahead
    (3, 0, MeterVerdict.AHEAD),
    (4, 200, MeterVerdict.OK), (3, 200, MeterVerdict.OK), (5, 200, MeterVerdict.OK),
    (2, 200, MeterVerdict.ARREARS), (6, 200, MeterVerdict.AHEAD),
])
def test_check_billed__one_tick_of_skew_either_way(billed, seconds, verdict):
    assert started().check_billed(billed, after(seconds)) is verdict


def test_check_billed__strict_without_skew():
    meter = started(skew_ticks=0)
    assert meter.check_billed(4, after(200)) is MeterVerdict.OK
    assert meter.check_billed(3, after(200)) is MeterVerdict.ARREARS
    assert meter.check_billed(5, after(200)) is MeterVerdict.AHEAD


# -- amounts ------------------------------------------------------------------------------------------------------
def test_metered_charge__peak_window_starting_mid_session_applies_from_then_on():
    charge = MeteredCharge(peak_card(), started_at=T0)  # units begin 16:58:30, 16:59:30, 17:00:30, ...
    assert [charge.tick_amount(n) for n in range(1, 5)] == [MINUTE, MINUTE, 150_000, 150_000]
    assert charge.amount_due(4) == 2 * MINUTE + 2 * 150_000
    on_boundary = MeteredCharge(peak_card(), started_at=T0 - timedelta(seconds=30))  # unit 2 begins at 17:00:00
    assert on_boundary.amount_due(3) == 2 * MINUTE + 150_000
    assert on_boundary.unit_started_at(2) == datetime(2026, 11, 22, 17, tzinfo=UTC)


def test_metered_charge__peak_ending_and_multiplier_change_mid_session():
    card = peak_card()
    card.set_multiplier("surge", "2", at=after(150))  # from 17:01:00
    charge = MeteredCharge(card, started_at=T0)
    assert [charge.tick_amount(n) for n in range(1, 5)] == [MINUTE, MINUTE, 150_000, 300_000]
    evening = MeteredCharge(peak_card(), started_at=datetime(2026, 11, 22, 19, 58, tzinfo=UTC))
    assert [evening.tick_amount(n) for n in range(1, 4)] == [150_000, 150_000, MINUTE]


def test_metered_charge__rounds_the_cumulative_up_once():
    charge = MeteredCharge(RateCard(1, multipliers={"fee": "1.1"}, effective_at=T0), started_at=T0)
    assert [charge.amount_due(n) for n in (0, 1, 2, 9, 10)] == [0, 2, 3, 10, 11]
    assert sum(charge.tick_amount(n) for n in range(1, 11)) == charge.amount_due(10)
    with pytest.raises(ValueError, match="1-based"):
        charge.tick_amount(0)


def test_metered_charge__volume_tiers_continue_from_the_payers_volume():
    card = RateCard(MINUTE, tiers=[VolumeTier(60, Decimal("0.5"))], effective_at=T0)
    charge = MeteredCharge(card, started_at=T0, volume=58)
    assert [charge.tick_amount(n) for n in range(1, 5)] == [MINUTE, MINUTE, 50_000, 50_000]


def test_units_covered__how_many_units_a_payment_pays_for():
    charge = MeteredCharge(peak_card(), started_at=T0)
    assert charge.units_covered(0, limit=10) == 0
    assert charge.units_covered(199_999, limit=10) == 1
    assert charge.units_covered(350_000, limit=10) == 3
    assert charge.units_covered(10**12, limit=7) == 7


def test_rider_session__payer_signs_per_tick_and_merchant_checks_each_voucher():
    """A rider rents a car from 16:58:30 for 4.5 minutes; both sides agree on every cumulative amount."""
    card = peak_card()
    published = card.published(at=T0)
    payer_meter, merchant_meter = started(), UsageMeter(60)
    merchant_meter.start(after(0.4))  # the merchant sees the start a bit later
    payer_charge = MeteredCharge(RateCard.from_published(published), started_at=T0)
    merchant_charge = MeteredCharge.for_meter(card, merchant_meter)
    vouchers = []
    for second in range(0, 271, 5):
        now = after(second)
        for _ in range(payer_meter.due_ticks(now)):
            units = payer_meter.mark_billed(at=now)
            vouchers.append((now, units, payer_charge.amount_due(units)))
    payer_meter.stop(after(270))
    merchant_meter.stop(after(270.4))
    assert [units for _, units, _ in vouchers] == [1, 2, 3, 4, 5]
    assert [amount for *_, amount in vouchers] == [100_000, 200_000, 350_000, 500_000, 650_000]
    for sent_at, units, amount in vouchers:
        assert merchant_charge.amount_due(units) == amount  # each side prices with its own start: same minutes
        assert merchant_charge.units_covered(amount, limit=units + 1) == units
        assert merchant_meter.check_billed(units, sent_at + timedelta(seconds=0.2)) is MeterVerdict.OK
    assert merchant_meter.check_billed(4, after(400)) is MeterVerdict.OK  # one unit of grace after the stop
    assert merchant_meter.check_billed(3, after(400)) is MeterVerdict.ARREARS
    assert verify_quote(published, 1, vouchers[2][2] - vouchers[1][2], at=payer_meter.unit_started_at(2))


# -- properties ----------------------------------------------------------------------------------------------------
multipliers = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("3"), places=2)


@settings(max_examples=100, deadline=None)
@given(price=st.integers(0, 10**9), fee=multipliers, units=st.integers(0, 200), volume=st.integers(0, 300),
       tier=st.builds(VolumeTier, st.integers(0, 400), multipliers))
def test_property__without_windows_a_session_costs_what_one_quote_says(price, fee, units, volume, tier):
    card = RateCard(price, multipliers={"fee": fee}, tiers=[tier], effective_at=T0)
    charge = MeteredCharge(card, started_at=T0, volume=volume)
    assert charge.amount_due(units) == card.quote(units, at=T0, volume=volume)
    assert charge.amount_due(units) <= charge.amount_due(units + 1)


@settings(max_examples=100, deadline=None)
@given(unit_seconds=st.integers(1, 3600), first=st.floats(0, 10**6), second=st.floats(0, 10**6),
       stop=st.one_of(st.none(), st.floats(0, 10**6)))
def test_property__units_monotone_in_time_and_up_at_most_one_above_down(unit_seconds, first, second, stop):
    meters = []
    for rounding in MeterRounding:
        meter = UsageMeter(unit_seconds, rounding)
        meter.start(T0)
        if stop is not None:
            meter.stop(after(stop))
        meters.append(meter)
    up, down = meters
    early, late = after(min(first, second)), after(max(first, second))
    for meter in meters:
        assert meter.units_used(early) <= meter.units_used(late)
    assert 0 <= up.units_used(late) - down.units_used(late) <= 1
