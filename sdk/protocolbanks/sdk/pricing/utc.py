"""Time for pricing and metering: aware datetimes in UTC only, and an injectable clock.

A naive datetime is refused (is it local time or UTC?); any aware datetime is converted to UTC. Rate cards and
meters take a `clock` so tests and replays can fix "now"; the default reads the system clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(at: datetime, what: str = "time") -> datetime:
    """`at` in UTC; ValueError for a naive datetime."""
    if not isinstance(at, datetime):
        raise TypeError(f"{what} must be a datetime, not {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} {at.isoformat()} is naive: pass an aware datetime (e.g. tzinfo=UTC)")
    return at.astimezone(UTC)


def iso_utc(at: datetime) -> str:
    """`2026-11-22T17:00:00Z` (microseconds kept when present)."""
    return as_utc(at).isoformat().replace("+00:00", "Z")


def parse_iso_utc(text: object, what: str = "time") -> datetime:
    if not isinstance(text, str):
        raise ValueError(f"{what} must be an ISO 8601 string, not {type(text).__name__}")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{what} {text!r} is not an ISO 8601 time") from exc
    return as_utc(parsed, what)
