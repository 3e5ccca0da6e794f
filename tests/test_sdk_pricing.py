"""Merchant pricing: exact base-unit quotes with multipliers, windows (wrapping midnight), volume tiers, a recorded
change history, rounding up once, and a published card from which a client reproduces every quote."""

import json
from datetime import UTC, datetime, time, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocolbanks.sdk.pricing import (
    RateCard,
    TimeWindow,
    VolumeTier,
    format_base_units,
    from_base_units,
    to_base_units,
    verify_quote,
)

U = 10**6
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # noon UTC


def at(hour: int, minute: int = 0, second: int = 0, day: int = 22) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


def car_card(**kwargs) -> RateCard:
    """0.1 U per minute, peak 17:00-20:00 x1.5, night 22:00-06:00 x0.5."""
    windows = [TimeWindow(time(17), time(20), Decimal("1.5"), "peak"),
               TimeWindow(time(22), time(6), Decimal("0.5"), "night")]
    return RateCard(to_base_units("0.1", decimals=6), unit="minute", windows=windows, clock=lambda: T0, **kwargs)


# -- human amounts <-> base units -------------------------------------------------------------------------------
@pytest.mark.parametrize("amount, decimals, base", [
    ("0.1", 6, 100_000), (Decimal("1.5"), 6, 1_500_000), (2, 6, 2_000_000), ("0.000001", 6, 1),
    ("1.10", 1, 11), ("1E+2", 0, 100), ("0", 18, 0), (" 5 ", 2, 500),
    ("115792089237316195423570985008687907853269984665640564039457.584007913129639935", 18, 2**256 - 1),
])
def test_to_base_units__is_exact(amount, decimals, base):
    assert to_base_units(amount, decimals=decimals) == base


@pytest.mark.parametrize("amount, error", [
    (0.1, TypeError), (1.0, TypeError), (True, TypeError), (None, TypeError),
    ("0.0000001", ValueError), (Decimal("0.1234567"), ValueError), ("-1", ValueError), ("abc", ValueError),
    ("NaN", ValueError), ("Infinity", ValueError),
])
def test_to_base_units__refuses_floats_and_too_many_decimals(amount, error):
    with pytest.raises(error):
        to_base_units(amount, decimals=6)


def test_from_base_units__round_trips_and_formats_short():
    assert from_base_units(100_000, decimals=6) == Decimal("0.1")
    assert format_base_units(100_000, decimals=6) == "0.1" and format_base_units(5 * U, decimals=6) == "5"
    assert to_base_units(from_base_units(2**200 + 7, decimals=18), decimals=18) == 2**200 + 7
    with pytest.raises(TypeError):
        from_base_units(1.5, decimals=6)  # type: ignore[arg-type]


# -- validation ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("build, error, message", [
    (lambda: RateCard(-1), ValueError, "negative"),
    (lambda: RateCard(0.1), TypeError, "to_base_units"),
    (lambda: RateCard(Decimal("100000")), TypeError, "int of base units"),
    (lambda: RateCard(1, multipliers={"peak": Decimal(0)}), ValueError, "greater than zero"),
    (lambda: RateCard(1, multipliers={"peak": "-1.5"}), ValueError, "greater than zero"),
    (lambda: RateCard(1, multipliers={"peak": 1.5}), TypeError, "float"),
    (lambda: RateCard(1, multipliers={"": Decimal(1)}), ValueError, "non-empty"),
    (lambda: TimeWindow(time(1), time(2), Decimal(0), "w"), ValueError, "greater than zero"),
    (lambda: TimeWindow(time(8), time(8), Decimal(2), "w"), ValueError, "empty window"),
    (lambda: TimeWindow(time(8, tzinfo=timezone(timedelta(hours=2))), time(9), Decimal(2), "w"), ValueError, "UTC"),
    (lambda: VolumeTier(-1, Decimal("0.9")), ValueError, "negative"),
    (lambda: VolumeTier(10, Decimal("-0.9")), ValueError, "greater than zero"),
    (lambda: RateCard(1, tiers=[VolumeTier(10, Decimal("0.9")), VolumeTier(10, Decimal("0.8"))]), ValueError,
     "two volume tiers start at unit 10"),
    (lambda: RateCard(1, windows=[TimeWindow(time(1), time(2), Decimal(2), "w")] * 2), ValueError, "share a name"),
    (lambda: RateCard(1, windows=[TimeWindow(time(1), time(2), Decimal(2), "w")], multipliers={"w": 2}),
     ValueError, "window names"),
    (lambda: RateCard(1, unit=""), ValueError, "unit"),
])
def test_invalid_inputs__are_refused_with_a_clear_error(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_quote_arguments__are_checked():
    card = car_card()
    with pytest.raises(ValueError, match="negative"):
        card.quote(-1)
    with pytest.raises(ValueError, match="negative"):
        card.quote(1, volume=-5)
    with pytest.raises(ValueError, match="naive"):
        card.quote(1, at=datetime(2026, 11, 22, 12))
    with pytest.raises(ValueError, match="greater than zero"):
        card.set_multiplier("peak", "0")
    with pytest.raises(TypeError, match="float"):
        card.set_multiplier("peak", 2.0)
    assert card.history == [] and card.version == 0


# -- quotes -------------------------------------------------------------------------------------------------------
def test_plain_price__times_units():
    card = RateCard(to_base_units("0.1", decimals=6), unit="image", clock=lambda: T0)
    assert (card.quote(), card.quote(3), card.quote(0)) == (100_000, 300_000, 0)


@pytest.mark.parametrize("moment, amount", [
    (at(12), 100_000), (at(16, 59, 59), 100_000), (at(17), 150_000), (at(19, 59, 59), 150_000), (at(20), 100_000),
    (at(21, 59, 59), 100_000), (at(22), 50_000), (at(23, 59, 59), 50_000), (at(0), 50_000), (at(5, 59, 59), 50_000),
    (at(6), 100_000),
])
def test_windows__half_open_and_wrapping_midnight(moment, amount):
    assert car_card().quote(at=moment) == amount


def test_window_check__uses_utc_whatever_the_timezone_of_the_instant():
    paris = timezone(timedelta(hours=1))
    assert car_card().quote(at=datetime(2026, 11, 22, 18, 30, tzinfo=paris)) == 150_000  # 17:30 UTC: peak
    assert car_card().quote(at=datetime(2026, 11, 22, 17, 30, tzinfo=paris)) == 100_000  # 16:30 UTC


def test_overlapping_windows__multiply():
    card = RateCard(100_000, windows=[TimeWindow(time(17), time(20), Decimal("1.5"), "peak"),
                                      TimeWindow(time(18), time(19), Decimal("1.2"), "rush")], clock=lambda: T0)
    assert card.quote(at=at(18, 30)) == 180_000 and card.quote(at=at(17, 30)) == 150_000
    assert card.applied_multipliers(at(18, 30)) == {"peak": Decimal("1.5"), "rush": Decimal("1.2")}


def test_global_multipliers__multiply_with_windows():
    card = car_card(multipliers={"surge": "1.2"})
    assert card.quote(at=at(12)) == 120_000 and card.quote(at=at(18)) == 180_000 and card.quote(at=at(23)) == 60_000


def test_tiers__each_unit_at_its_own_tier():
    card = RateCard(100_000, tiers=[VolumeTier(1000, Decimal("0.5")), VolumeTier(100, Decimal("0.8"))],
                    clock=lambda: T0)
    assert card.tiers[0].from_units == 100  # sorted
    assert card.quote(1, volume=99) == 100_000 and card.quote(1, volume=100) == 80_000
    assert card.quote(4, volume=98) == 2 * 100_000 + 2 * 80_000  # crosses 100
    assert card.quote(1000, volume=0) == 100 * 100_000 + 900 * 80_000
    assert card.quote(3, volume=999) == 80_000 + 2 * 50_000
    assert card.quote(5, volume=10**9) == 5 * 50_000


def test_tier_from_zero__sets_the_base_multiplier():
    card = RateCard(100, tiers=[VolumeTier(0, Decimal("2")), VolumeTier(5, Decimal("1"))], clock=lambda: T0)
    assert card.quote(6) == 5 * 200 + 100


def test_rounding__exact_then_up_once():
    card = RateCard(3, multipliers={"promo": "1.1"}, clock=lambda: T0)
    assert card.exact_cost(1) == Decimal("3.3") and card.quote(1) == 4
    assert card.quote(3) == 10  # 9.9 -> 10, not 3 x ceil(3.3) = 12
    assert RateCard(10, multipliers={"peak": "1.5"}, clock=lambda: T0).quote(1) == 15  # exact: no rounding
    tiny = RateCard(1, multipliers={"a": "1.000000000000000000000000000000001"}, clock=lambda: T0)
    assert tiny.quote(10**40) == 10**40 + 10**7  # beyond 28 digits: still exact
    assert RateCard(1, multipliers={"a": "0.0001"}, clock=lambda: T0).quote(1) == 1  # never rounds to free


# -- changes over time ------------------------------------------------------------------------------------------
def test_set_multiplier__recorded_and_history_answers_what_the_rate_was():
    card = car_card(effective_at=at(8))
    peak = card.set_multiplier("peak", "2", at=at(13))
    surge = card.set_multiplier("surge", Decimal("1.25"), at=at(15))
    back = card.set_multiplier("peak", 1, at=at(21))
    assert [(c.name, c.old, c.new, c.version) for c in card.history] == [
        ("peak", Decimal("1.5"), Decimal(2), 1), ("surge", None, Decimal("1.25"), 2), ("peak", Decimal(2), 1, 3)]
    assert (peak.at, surge.at, back.at) == (at(13), at(15), at(21)) and card.version == 3
    assert peak.to_dict() == {"at": "2026-11-22T13:00:00Z", "name": "peak", "old": "1.5", "new": "2", "version": 1}
    # the quote for a time uses the multipliers in effect at that time
    assert card.quote(at=at(12)) == 100_000  # before any change
    assert card.quote(at=at(17, day=21)) == 150_000  # yesterday's peak: initial state
    assert card.quote(at=at(17)) == 250_000  # peak x2 x surge 1.25
    assert card.quote(at=at(19, 59)) == 250_000 and card.quote(at=at(20)) == 125_000
    assert card.quote(at=at(17, day=23)) == 125_000  # peak back to 1, surge stays
    assert card.multipliers_at(at(14)) == {"peak": Decimal(2), "night": Decimal("0.5")}
    assert card.rate_at(at(18)) == Decimal(250_000) and card.rate_at(at(12, day=21)) == Decimal(100_000)
    state = card.state_at(at(16))
    assert (state.version, state.effective_at) == (2, at(15))


def test_set_multiplier__defaults_to_the_clock_and_refuses_backdating():
    now = [at(10)]
    card = RateCard(100, clock=lambda: now[0])
    now[0] = at(11)
    assert card.set_multiplier("surge", "2").at == at(11)
    with pytest.raises(ValueError, match="append-only"):
        card.set_multiplier("surge", "3", at=at(10, 30))
    with pytest.raises(ValueError, match="append-only"):
        RateCard(100, effective_at=at(10)).set_multiplier("x", 2, at=at(9))
    history = card.history
    history.clear()
    assert len(card.history) == 1  # a copy


# -- publication and client-side verification -------------------------------------------------------------------
def wire(card: RateCard, moment: datetime) -> dict:
    return json.loads(json.dumps(card.published(at=moment)))


def test_published__carries_unit_price_rules_version_and_time():
    card = car_card(multipliers={"surge": "1"}, tiers=[VolumeTier(100, Decimal("0.80"))], effective_at=at(8))
    card.set_multiplier("peak", "1.75", at=at(13))
    published = wire(card, at(14))
    assert {k: published[k] for k in ("format", "unit", "unitPrice", "version", "effectiveAt", "combine",
                                      "rounding")} == {
        "format": "pb-rate-card/1", "unit": "minute", "unitPrice": "100000", "version": 1,
        "effectiveAt": "2026-11-22T13:00:00Z", "combine": "product", "rounding": "ceiling"}
    assert published["windows"][0] == {"name": "peak", "start": "17:00:00", "end": "20:00:00", "multiplier": "1.75"}
    assert published["tiers"] == [{"fromUnits": 100, "multiplier": "0.8"}]
    assert published["multipliers"] == {"surge": "1"}
    before = wire(card, at(12))
    assert before["version"] == 0 and before["effectiveAt"] == "2026-11-22T08:00:00Z"
    assert before["digest"] != published["digest"]
    assert RateCard.from_published(published).published() == published


def test_digest__same_prices_same_digest_across_restarts():
    one, two = car_card(effective_at=at(1)), car_card(effective_at=at(5))
    assert one.published()["digest"] == two.published()["digest"]


def test_verify_quote__round_trip_and_mismatch():
    card = car_card(tiers=[VolumeTier(10, Decimal("0.9"))])
    card.set_multiplier("surge", "1.1", at=at(13))
    for moment in (at(14), at(18), at(23, 30), at(3, day=23)):
        published = wire(card, moment)
        for units, volume in ((1, 0), (7, 5), (30, 100)):
            amount = card.quote(units, at=moment, volume=volume)
            assert verify_quote(published, units, amount, at=moment, volume=volume)
            assert not verify_quote(published, units, amount + 1, at=moment, volume=volume)
            assert not verify_quote(published, units, amount - 1, at=moment, volume=volume)


def test_verify_quote__stale_card_fails_after_a_change():
    card = car_card()
    old = wire(card, at(12))
    card.set_multiplier("peak", "3", at=at(13))
    amount = card.quote(at=at(18))
    assert not verify_quote(old, 1, amount, at=at(18)) and verify_quote(wire(card, at(18)), 1, amount, at=at(18))


def test_verify_quote__skew_accepts_the_quote_across_a_near_boundary():
    published = wire(car_card(), at(17))
    off_peak = car_card().quote(at=at(16, 59, 58))
    assert not verify_quote(published, 1, off_peak, at=at(17, 0, 1))
    assert verify_quote(published, 1, off_peak, at=at(17, 0, 1), skew_seconds=5)
    assert not verify_quote(published, 1, 123, at=at(17, 0, 1), skew_seconds=5)
    with pytest.raises(TypeError):
        verify_quote(published, 1, 100_000.0, at=at(12))  # type: ignore[arg-type]


def test_quotes_between__every_price_in_an_interval():
    card = car_card()
    card.set_multiplier("surge", "2", at=at(16))
    assert card.quotes_between(1, at(15), at(17, 30)) == {100_000, 200_000, 300_000}
    assert card.quotes_between(1, at(12), at(12, 1)) == {100_000}
    assert card.quotes_between(2, at(21, 59), at(22)) == {400_000, 200_000}  # surge x2; night starts at the end instant
    with pytest.raises(ValueError):
        card.quotes_between(1, at(13), at(12))


@pytest.mark.parametrize("tamper, message", [
    (lambda p: {**p, "format": "other/9"}, "format"),
    (lambda p: {**p, "rounding": "half_even"}, "rounding"),
    (lambda p: {**p, "unitPrice": "1.5"}, "unitPrice"),
    (lambda p: {**p, "unitPrice": "-3"}, "unitPrice"),
    (lambda p: {**p, "multipliers": {"surge": 1.5}}, "float"),
    (lambda p: {**p, "multipliers": {"surge": "0"}}, "greater than zero"),
    (lambda p: {**p, "windows": [{"name": "peak", "start": "17:00"}]}, "malformed window"),
    (lambda p: {**p, "tiers": [{"fromUnits": 5, "multiplier": "2"}] * 2}, "two volume tiers"),
    (lambda p: {**p, "version": -1}, "version"),
    (lambda p: {**p, "effectiveAt": "yesterday"}, "effectiveAt"),
    (lambda p: {**p, "unitPrice": "1"}, "digest"),
    (lambda p: [p], "object"),
])
def test_malformed_published_card__is_a_value_error(tamper, message):
    with pytest.raises(ValueError, match=message):
        verify_quote(tamper(wire(car_card(multipliers={"surge": "1.2"}), at(12))), 1, 1, at=at(12))


def test_published_without_digest__is_accepted():
    published = wire(car_card(), at(12))
    del published["digest"]
    assert verify_quote(published, 2, 200_000, at=at(12))


# -- properties ----------------------------------------------------------------------------------------------------
multipliers = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("5"), places=3)
windows = st.builds(lambda span, m, i: TimeWindow(*span, m, f"w{i}"),
                    st.tuples(st.times(), st.times()).filter(lambda span: span[0] != span[1]), multipliers,
                    st.integers(0, 5))


@st.composite
def cards(draw):
    window_list = draw(st.lists(windows, max_size=3, unique_by=lambda w: w.name))
    tiers = draw(st.lists(st.builds(VolumeTier, st.integers(0, 500), multipliers), max_size=3,
                          unique_by=lambda t: t.from_units))
    named = draw(st.dictionaries(st.sampled_from(["surge", "promo", "fx"]), multipliers, max_size=2))
    return RateCard(draw(st.integers(0, 10**12)), unit="unit", windows=window_list, tiers=tiers,
                    multipliers=named, effective_at=T0)


instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC))


@settings(max_examples=150, deadline=None)
@given(card=cards(), units=st.integers(0, 2000), volume=st.integers(0, 1000), moment=instants)
def test_property__quote_monotone_in_units_and_rounded_up_once(card, units, volume, moment):
    quote, more = card.quote(units, at=moment, volume=volume), card.quote(units + 1, at=moment, volume=volume)
    assert quote <= more
    exact = Fraction(card.exact_cost(units, at=moment, volume=volume))
    assert exact <= quote < exact + 1
    split = Fraction(card.exact_cost(units // 2, at=moment, volume=volume)) + Fraction(card.exact_cost(
        units - units // 2, at=moment, volume=volume + units // 2))
    assert split == exact  # tiers: pricing per unit, so splitting a purchase changes nothing exact


@settings(max_examples=150, deadline=None)
@given(card=cards(), units=st.integers(0, 2000), volume=st.integers(0, 1000), moment=instants,
       change=st.tuples(st.sampled_from(["surge", "w0", "new"]), multipliers))
def test_property__published_card_reproduces_every_quote(card, units, volume, moment, change):
    card.set_multiplier(*change, at=T0 + timedelta(days=30))
    published = json.loads(json.dumps(card.published(at=moment)))
    amount = card.quote(units, at=moment, volume=volume)
    assert verify_quote(published, units, amount, at=moment, volume=volume)
    assert RateCard.from_published(published).quote(units, at=moment, volume=volume) == amount
    assert not verify_quote(published, units, amount + 1, at=moment, volume=volume)
