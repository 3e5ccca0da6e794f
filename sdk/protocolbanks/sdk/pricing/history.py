"""The record of a rate card's multiplier changes, and what the multipliers were at any time.

Every `set_multiplier` appends a `RateChange` (UTC time, name, old and new value, the card's new version).
Changes are append-only and in time order (a change may not be dated before the previous one), so "what was
the rate at time T" is a binary search. The timeline is immutable: a change returns a new timeline, which a
rate card swaps in with one assignment, so readers never see half a change.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from protocolbanks.sdk.pricing.exact import decimal_text
from protocolbanks.sdk.pricing.utc import as_utc, iso_utc


@dataclass(frozen=True)
class RateChange:
    """One merchant change: multiplier `name` went from `old` (None: it did not exist) to `new` at `at` (UTC)."""

    at: datetime
    name: str
    old: Decimal | None
    new: Decimal
    version: int  # the card's version from this change on

    def to_dict(self) -> dict[str, Any]:
        return {"at": iso_utc(self.at), "name": self.name,
                "old": None if self.old is None else decimal_text(self.old), "new": decimal_text(self.new),
                "version": self.version}


@dataclass(frozen=True)
class RateState:
    """The card's named multipliers (windows' and global ones) in effect from `effective_at` on."""

    version: int
    effective_at: datetime
    multipliers: Mapping[str, Decimal]


class MultiplierTimeline:
    """States of the named multipliers over time; `state_at(t)` is the last state whose time is <= t (the initial
    state also answers for times before it)."""

    def __init__(self, initial: Mapping[str, Decimal], effective_at: datetime, version: int = 0) -> None:
        first = RateState(version, as_utc(effective_at, "effective_at"), MappingProxyType(dict(initial)))
        self._states: tuple[RateState, ...] = (first,)
        self._changes: tuple[RateChange, ...] = ()
        self._times: tuple[datetime, ...] = ()

    @property
    def changes(self) -> tuple[RateChange, ...]:
        return self._changes

    @property
    def latest(self) -> RateState:
        return self._states[-1]

    def state_at(self, at: datetime) -> RateState:
        return self._states[bisect_right(self._times, as_utc(at))]

    def change_times_between(self, after: datetime, until: datetime) -> list[datetime]:
        """Times of changes in `(after, until]`."""
        first, last = as_utc(after), as_utc(until)
        return [moment for moment in self._times[bisect_right(self._times, first):] if moment <= last]

    def with_change(self, name: str, value: Decimal, at: datetime) -> tuple[MultiplierTimeline, RateChange]:
        moment = as_utc(at, "change time")
        latest = self.latest
        if moment < latest.effective_at:
            raise ValueError(f"a rate change at {iso_utc(moment)} would be dated before the card's state of "
                             f"{iso_utc(latest.effective_at)} (version {latest.version}): history is append-only")
        change = RateChange(moment, name, latest.multipliers.get(name), value, latest.version + 1)
        state = RateState(change.version, moment, MappingProxyType({**latest.multipliers, name: value}))
        timeline = MultiplierTimeline.__new__(MultiplierTimeline)
        timeline._states = (*self._states, state)
        timeline._changes = (*self._changes, change)
        timeline._times = (*self._times, moment)
        return timeline, change
