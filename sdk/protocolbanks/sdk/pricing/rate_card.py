"""A merchant's rate card: `price x usage x multipliers`, in integer base units, rounded up once.

    amount = ceil( unit_price x (product of the global named multipliers)
                              x (product of the multipliers of the windows covering `at`)
                              x (sum over the quoted units of each unit's volume-tier multiplier) )

* **Named multipliers.** Every multiplier has a name. A window's name refers to the multiplier applied inside
  that window ("peak" 17:00-20:00 x1.5); any other name is a global multiplier applied at all times ("surge",
  "promo"). `set_multiplier(name, value)` changes either kind (or adds a global one); every change is recorded
  with its UTC time, old and new value (`history`), and `quote(at=T)` / `published(at=T)` / `multipliers_at(T)`
  answer with the multipliers in effect at T.
* **Windows** are UTC times of day and may wrap midnight; several covering the same instant multiply.
* **Volume tiers** are chosen per unit by the payer's cumulative count (`volume` = units used before this quote);
  a quote crossing a boundary prices each unit at its own tier.
* **Rounding.** Computed exactly (Decimal with unbounded precision), then rounded up (ROUND_CEILING) once, to a
  whole base unit: the merchant never undercharges through rounding, the overcharge is below one base unit per
  quote, and because the rule and every input are in the published card a client reproduces the amount bit for
  bit (`verify_quote`).

Pure: no I/O. Reads are lock-free (the multiplier timeline is immutable and swapped in one assignment); changes
hold a lock so two concurrent `set_multiplier` calls cannot interleave.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from protocolbanks.sdk.pricing.exact import DecimalInput, as_count, as_multiplier, ceil_int, exact_product
from protocolbanks.sdk.pricing.history import MultiplierTimeline, RateChange, RateState
from protocolbanks.sdk.pricing.published import PublishedRate
from protocolbanks.sdk.pricing.tiers import VolumeTier, sorted_tiers, tier_multiplier, tiered_units
from protocolbanks.sdk.pricing.utc import Clock, as_utc, utc_now
from protocolbanks.sdk.pricing.windows import TimeWindow


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a multiplier name must be a non-empty string, got {value!r}")
    return value


class RateCard:
    """Prices units of `unit` ("request", "image", "minute", ...) at `unit_price` base units each."""

    def __init__(
        self,
        unit_price: int,
        *,
        unit: str = "request",
        windows: Iterable[TimeWindow] = (),
        tiers: Iterable[VolumeTier] = (),
        multipliers: Mapping[str, DecimalInput] | None = None,
        clock: Clock = utc_now,
        effective_at: datetime | None = None,
    ) -> None:
        if isinstance(unit_price, Decimal | str | float):
            raise TypeError(f"unit_price must be an int of base units, not {type(unit_price).__name__} "
                            f"(convert a human price with to_base_units({unit_price!r}, decimals=...))")
        self._unit_price = as_count(unit_price, "unit_price")
        if not isinstance(unit, str) or not unit.strip():
            raise ValueError(f"unit must be a non-empty name, got {unit!r}")
        self._unit = unit
        self._windows = tuple(windows)
        self._window_names = frozenset(window.name for window in self._windows)
        if len(self._window_names) != len(self._windows):
            raise ValueError(f"two windows share a name: {[window.name for window in self._windows]}")
        self._tiers = sorted_tiers(tiers)
        named = {_name(name): as_multiplier(value, f"multiplier {name!r}")
                 for name, value in (multipliers or {}).items()}
        clash = self._window_names & named.keys()
        if clash:
            raise ValueError(f"multiplier name(s) {sorted(clash)} are window names: set a window's multiplier "
                             "on the window (or later with set_multiplier)")
        self._clock = clock
        initial = {**{window.name: window.multiplier for window in self._windows}, **named}
        self._timeline = MultiplierTimeline(initial, effective_at if effective_at is not None else clock())
        self._change_lock = threading.Lock()

    # -- what the card is -----------------------------------------------------------------------------------
    @property
    def unit(self) -> str:
        return self._unit

    @property
    def unit_price(self) -> int:
        return self._unit_price

    @property
    def tiers(self) -> tuple[VolumeTier, ...]:
        return self._tiers

    @property
    def version(self) -> int:
        return self._timeline.latest.version

    @property
    def history(self) -> list[RateChange]:
        """Every multiplier change, oldest first (a copy)."""
        return list(self._timeline.changes)

    def now(self) -> datetime:
        return as_utc(self._clock(), "clock()")

    def _at(self, at: datetime | None) -> datetime:
        return self.now() if at is None else as_utc(at)

    def state_at(self, at: datetime | None = None) -> RateState:
        """Version, effective time and all named multipliers (windows' included) in effect at `at`."""
        return self._timeline.state_at(self._at(at))

    def multipliers_at(self, at: datetime | None = None) -> dict[str, Decimal]:
        """Every named multiplier (windows' and global) as it was set at `at`, whether it applies then or not."""
        return dict(self.state_at(at).multipliers)

    def windows_at(self, at: datetime | None = None) -> tuple[TimeWindow, ...]:
        """The windows with the multipliers they had at `at`."""
        multipliers = self.state_at(at).multipliers
        return tuple(window.with_multiplier(multipliers[window.name]) for window in self._windows)

    def applied_multipliers(self, at: datetime | None = None) -> dict[str, Decimal]:
        """The named multipliers that apply at `at`: all global ones and the windows covering `at`."""
        moment = self._at(at)
        multipliers = self._timeline.state_at(moment).multipliers
        covering = {window.name for window in self._windows if window.contains(moment)}
        return {name: value for name, value in multipliers.items()
                if name not in self._window_names or name in covering}

    # -- the merchant's API --------------------------------------------------------------------------------
    def set_multiplier(self, name: str, value: DecimalInput, *, at: datetime | None = None) -> RateChange:
        """Set multiplier `name` (a window's or a global one; a new name adds a global multiplier) from `at`
        (default now) on. Recorded in `history`; the card's version goes up by one. ValueError for a value <= 0
        or a time before the previous change; TypeError for a float."""
        multiplier = as_multiplier(value, f"multiplier {name!r}")
        with self._change_lock:
            timeline, change = self._timeline.with_change(_name(name), multiplier, self._at(at))
            self._timeline = timeline
        return change

    # -- prices ----------------------------------------------------------------------------------------------
    def time_factor(self, at: datetime | None = None) -> Decimal:
        """Exact product of the multipliers that apply at `at` (everything but the volume tier)."""
        return exact_product(self.applied_multipliers(at).values())

    def rate_at(self, at: datetime | None = None, *, volume: int = 0) -> Decimal:
        """Exact, unrounded price in base units of the unit numbered `volume` used at `at`: "what was the rate
        at time T" (with the multipliers in effect at T)."""
        tier = tier_multiplier(self._tiers, as_count(volume, "volume"))
        return exact_product((Decimal(self._unit_price), self.time_factor(at), tier))

    def exact_cost(self, units: int = 1, *, at: datetime | None = None, volume: int = 0) -> Decimal:
        """The exact, unrounded cost of `units` units at `at` after `volume` units (what `quote` rounds up)."""
        weight = tiered_units(self._tiers, as_count(volume, "volume"), as_count(units, "units"))
        return exact_product((Decimal(self._unit_price), self.time_factor(at), weight))

    def quote(self, units: int = 1, *, at: datetime | None = None, volume: int = 0) -> int:
        """Base units due for `units` units used at `at` (default now) by a payer who already used `volume`
        units: the exact cost rounded up once."""
        return ceil_int(self.exact_cost(units, at=at, volume=volume))

    def quotes_between(self, units: int, start: datetime, end: datetime, *, volume: int = 0) -> set[int]:
        """Every amount `quote(units, volume=volume)` takes at some instant in `[start, end]`: a quote only changes
        at a window boundary or a recorded change, so these are the quotes at `start` and at each such instant.
        The gateway accepts a paid retry priced at any of them (x402 echoes the 402's amount), and a client
        with a skewed clock checks with it."""
        first, last = as_utc(start), as_utc(end)
        if last < first:
            raise ValueError(f"quotes_between: end {last} is before start {first}")
        instants = {first, *self._timeline.change_times_between(first, last)}
        for window in self._windows:
            instants.update(window.boundaries_between(first, last))
        return {self.quote(units, at=instant, volume=volume) for instant in instants}

    # -- publication -----------------------------------------------------------------------------------------
    def published_rate(self, *, at: datetime | None = None) -> PublishedRate:
        state = self.state_at(at)  # one read: version, windows and named multipliers of the same state
        named = {name: value for name, value in state.multipliers.items() if name not in self._window_names}
        windows = tuple(window.with_multiplier(state.multipliers[window.name]) for window in self._windows)
        return PublishedRate(self._unit, self._unit_price, named, windows, self._tiers,
                             state.version, state.effective_at)

    def published(self, *, at: datetime | None = None) -> dict[str, Any]:
        """The JSON-able card in effect at `at` (default now): what clients verify quotes against."""
        return self.published_rate(at=at).to_dict()

    @classmethod
    def from_published(cls, published: Mapping[str, Any], *, clock: Clock = utc_now) -> RateCard:
        """The card a client rebuilds from `published()`; its quotes equal the merchant's for any time at which
        the published state was in effect. ValueError for a malformed card."""
        rate = PublishedRate.from_dict(published)
        card = cls(rate.unit_price, unit=rate.unit, windows=rate.windows, tiers=rate.tiers,
                   multipliers=dict(rate.multipliers), clock=clock, effective_at=rate.effective_at)
        card._timeline = MultiplierTimeline(card._timeline.latest.multipliers, rate.effective_at, rate.version)
        return card

    def __repr__(self) -> str:
        return (f"RateCard(unit_price={self._unit_price}, unit={self._unit!r}, version={self.version}, "
                f"multipliers={ {k: str(v) for k, v in self._timeline.latest.multipliers.items()} })")

