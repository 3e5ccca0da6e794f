"""A usage meter for metered sessions (DePIN: a rented car, a charging point): units of `unit_seconds` of actual
use between `start` and `stop`, and the tick schedule a payer signs vouchers on.

Rounding of a partial unit:
* `MeterRounding.UP` (default, "per started minute"): a unit is due as soon as it begins, so the payer pays
  each unit at its start (pre-paid). A session bills at least one unit; stopping exactly on a boundary does not
  bill the unit that would begin there.
* `MeterRounding.DOWN` ("whole minutes only"): a unit is due once it is complete (post-paid); the last partial
  unit is free.

The payer asks `due_ticks(now)` (units used but not billed yet), signs one voucher per tick (cumulative amount
from `MeteredCharge`) and records it with `mark_billed`, which refuses to bill a unit that has not begun or
completed: the payer never pays ahead of its own clock.

The merchant runs its own meter from the session start it saw and checks the payer's cumulative billed units
with `check_billed`: with `skew_ticks=1` it tolerates the payer being **one unit behind** (the voucher for the
unit that just began is still in flight, or the payer's clock is behind) **or one unit ahead** (the payer's
clock is ahead, or it started its meter before the merchant saw the start). Further behind is `ARREARS` (stop
the service), further ahead is `AHEAD` (a payer bug: it paid for time not used yet).

Pure: all times are passed in or read from the injectable clock; no I/O, no timers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from protocolbanks.sdk.pricing.exact import as_count
from protocolbanks.sdk.pricing.utc import Clock, as_utc, iso_utc, utc_now

MICROSECOND = timedelta(microseconds=1)


class MeterRounding(StrEnum):
    UP = "up"  # a unit is due once it begins (per started unit, pre-paid)
    DOWN = "down"  # a unit is due once it is complete (whole units only, post-paid)


class MeterVerdict(StrEnum):
    OK = "ok"  # billed units within skew_ticks of the units used
    ARREARS = "arrears"  # the payer is more than skew_ticks units behind: stop serving
    AHEAD = "ahead"  # the payer billed more than skew_ticks units not used yet


class UsageMeter:
    """Counts units of `unit_seconds` seconds between one `start` and one `stop`."""

    def __init__(self, unit_seconds: int = 60, rounding: MeterRounding = MeterRounding.UP, *,
                 skew_ticks: int = 1, clock: Clock = utc_now) -> None:
        if as_count(unit_seconds, "unit_seconds") == 0:
            raise ValueError("unit_seconds must be at least 1")
        self.unit_seconds = unit_seconds
        self.rounding = MeterRounding(rounding)
        self.skew_ticks = as_count(skew_ticks, "skew_ticks")
        self._clock = clock
        self._unit_us = unit_seconds * 1_000_000
        self.started_at: datetime | None = None
        self.stopped_at: datetime | None = None
        self.billed_units = 0

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.stopped_at is None

    def _at(self, at: datetime | None) -> datetime:
        return as_utc(self._clock() if at is None else at)

    def start(self, at: datetime | None = None) -> datetime:
        if self.started_at is not None:
            raise ValueError(f"meter already started at {iso_utc(self.started_at)}: use a new meter per session")
        self.started_at = self._at(at)
        return self.started_at

    def stop(self, at: datetime | None = None) -> int:
        """Stop the meter at `at` (default now); returns the units used by the whole session."""
        if self.started_at is None or self.stopped_at is not None:
            raise ValueError("stop() on a meter that is not running")
        moment = self._at(at)
        if moment < self.started_at:
            raise ValueError(f"stop at {iso_utc(moment)} is before the start at {iso_utc(self.started_at)}")
        self.stopped_at = moment
        return self.units_used(moment)

    def units_used(self, at: datetime | None = None) -> int:
        """Units due by `at` (default now) under the meter's rounding; 0 before the start."""
        if self.started_at is None:
            return 0
        moment = self._at(at)
        if moment < self.started_at:
            return 0
        stopped = self.stopped_at is not None and moment >= self.stopped_at
        end = self.stopped_at if stopped and self.stopped_at is not None else moment
        elapsed_us = (end - self.started_at) // MICROSECOND
        whole, partial = divmod(elapsed_us, self._unit_us)
        if self.rounding is MeterRounding.DOWN:
            return whole
        if stopped:  # units begun strictly before the stop, at least one
            return max(1, whole + (1 if partial else 0))
        return whole + 1  # the unit running now has begun

    def due_ticks(self, now: datetime | None = None) -> int:
        """Units used by `now` and not billed yet: sign one voucher per tick (or one covering all of them)."""
        return max(0, self.units_used(now) - self.billed_units)

    def mark_billed(self, units: int = 1, *, at: datetime | None = None) -> int:
        """Record `units` more billed units; ValueError if that would bill units not used by `at` (default now).
        Returns the cumulative billed units."""
        as_count(units, "units")
        used = self.units_used(at)
        if self.billed_units + units > used:
            raise ValueError(f"billing {units} more unit(s) would make {self.billed_units + units} billed, but only "
                             f"{used} used by {iso_utc(self._at(at))}")
        self.billed_units += units
        return self.billed_units

    def unit_started_at(self, index: int) -> datetime:
        """When unit number `index` (0-based) of the session begins: the time at which it is priced."""
        if self.started_at is None:
            raise ValueError("the meter has not started")
        return self.started_at + as_count(index, "index") * timedelta(seconds=self.unit_seconds)

    def next_tick_at(self, now: datetime | None = None) -> datetime | None:
        """The next instant after `now` at which `units_used` grows (a unit boundary); None once stopped or
        before the start (an UP meter's first unit is due at the start itself)."""
        if not self.running or self.started_at is None:
            return None
        moment = self._at(now)
        if moment < self.started_at:
            return self.started_at if self.rounding is MeterRounding.UP else self.unit_started_at(1)
        whole = ((moment - self.started_at) // MICROSECOND) // self._unit_us
        return self.unit_started_at(whole + 1)

    def check_billed(self, billed_units: int, now: datetime | None = None) -> MeterVerdict:
        """The merchant's check of a payer's cumulative billed units against its own meter at `now`."""
        used = self.units_used(now)
        billed = as_count(billed_units, "billed_units")
        if billed > used + self.skew_ticks:
            return MeterVerdict.AHEAD
        if billed < used - self.skew_ticks:
            return MeterVerdict.ARREARS
        return MeterVerdict.OK
