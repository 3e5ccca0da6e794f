"""Time-of-day windows: a named multiplier that applies between two UTC times of day.

A window is half-open, `[start, end)`, in UTC; when `end` is earlier than `start` it wraps midnight
(22:00-06:00 covers 22:00..23:59:59.999999 and 00:00..05:59:59.999999). `start == end` is refused: an
all-day multiplier is a global named multiplier on the rate card, not a window.

When several windows cover the same instant their multipliers **multiply** (peak x1.5 inside weekend x1.2 gives
x1.8), the same rule as for every other multiplier on a card, so the order of windows never matters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from protocolbanks.sdk.pricing.exact import as_multiplier, decimal_text
from protocolbanks.sdk.pricing.utc import as_utc


def _utc_time_of_day(value: object, what: str) -> time:
    if not isinstance(value, time):
        raise TypeError(f"{what} must be a datetime.time, not {type(value).__name__}")
    offset = value.utcoffset()
    if offset is not None and offset != timedelta(0):
        raise ValueError(f"{what} {value.isoformat()} is not UTC: windows are UTC times of day")
    return value.replace(tzinfo=None)


@dataclass(frozen=True)
class TimeWindow:
    """`multiplier` applies to units used at a UTC time of day in `[start, end)`; `name` is how the merchant
    changes it (`RateCard.set_multiplier(name, ...)`)."""

    start: time
    end: time
    multiplier: Decimal
    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("a time window needs a non-empty name")
        start = _utc_time_of_day(self.start, f"window {self.name!r} start")
        end = _utc_time_of_day(self.end, f"window {self.name!r} end")
        if start == end:
            raise ValueError(f"window {self.name!r} starts and ends at {start.isoformat()}: empty window "
                             "(for a multiplier that applies all day use a named multiplier)")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "multiplier", as_multiplier(self.multiplier, f"window {self.name!r} multiplier"))

    @property
    def wraps_midnight(self) -> bool:
        return self.end < self.start

    def contains(self, at: datetime) -> bool:
        """Whether the window covers the instant `at` (aware datetime, compared in UTC)."""
        moment = as_utc(at).time()
        if self.wraps_midnight:
            return moment >= self.start or moment < self.end
        return self.start <= moment < self.end

    def with_multiplier(self, multiplier: Decimal) -> TimeWindow:
        return TimeWindow(self.start, self.end, multiplier, self.name)

    def boundaries_between(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """Instants in `(after, until]` where this window opens or closes (its price may change there)."""
        first, last = as_utc(after), as_utc(until)
        day = first.date() - timedelta(days=1)
        while day <= last.date():
            for moment in (self.start, self.end):
                instant = datetime.combine(day, moment, UTC)
                if first < instant <= last:
                    yield instant
            day += timedelta(days=1)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "multiplier": decimal_text(self.multiplier)}

    @classmethod
    def from_dict(cls, data: object) -> TimeWindow:
        if not isinstance(data, dict):
            raise ValueError(f"a window must be an object, got {type(data).__name__}")
        try:
            start, end = time.fromisoformat(data["start"]), time.fromisoformat(data["end"])
            return cls(start, end, as_multiplier(data["multiplier"]), data["name"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed window {data!r}: {exc}") from exc
