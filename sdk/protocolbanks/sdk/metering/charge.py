"""What a metered session owes after N units, each unit priced at the time it was used.

Unit number k of a session begins at `started_at + k x unit_seconds` and is priced by the rate card **at that
instant**, with the payer's volume tier for unit `volume + k`: a peak window (or a multiplier change) that
begins mid-session applies to the units that begin at or after it; a unit that began just before keeps the
earlier price for its whole length.

`amount_due(n)` is the exact sum of the first n units rounded up once (the same rule as a quote), so each
voucher's cumulative amount is at most one base unit above the exact cost, and `amount_due` never decreases.
The payer signs `channel base + amount_due(billed units)`; the merchant recomputes the same number from the
same published card. A card rebuilt from `published()` does not know multiplier changes made after it was
published: if the merchant changes a multiplier mid-session the payer must fetch the new card.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from protocolbanks.sdk.metering.meter import UsageMeter
from protocolbanks.sdk.pricing.exact import EXACT, ZERO, as_count, ceil_int
from protocolbanks.sdk.pricing.rate_card import RateCard
from protocolbanks.sdk.pricing.utc import as_utc


class MeteredCharge:
    """Cumulative amounts due for a session that started at `started_at` with units of `unit_seconds`."""

    def __init__(self, card: RateCard, *, started_at: datetime, unit_seconds: int = 60, volume: int = 0) -> None:
        if as_count(unit_seconds, "unit_seconds") == 0:
            raise ValueError("unit_seconds must be at least 1")
        self.card = card
        self.started_at = as_utc(started_at, "started_at")
        self.unit_seconds = unit_seconds
        self.volume = as_count(volume, "volume")
        self._prefix: list[Decimal] = [ZERO]  # exact cost of the first i units

    @classmethod
    def for_meter(cls, card: RateCard, meter: UsageMeter, *, volume: int = 0) -> MeteredCharge:
        if meter.started_at is None:
            raise ValueError("the meter has not started")
        return cls(card, started_at=meter.started_at, unit_seconds=meter.unit_seconds, volume=volume)

    def unit_started_at(self, index: int) -> datetime:
        return self.started_at + as_count(index, "index") * timedelta(seconds=self.unit_seconds)

    def unit_rate(self, index: int) -> Decimal:
        """Exact price of unit number `index` of the session."""
        return self.card.rate_at(self.unit_started_at(index), volume=self.volume + index)

    def exact_due(self, units: int) -> Decimal:
        """Exact (unrounded) cost of the first `units` units."""
        as_count(units, "units")
        while len(self._prefix) <= units:
            index = len(self._prefix) - 1
            self._prefix.append(EXACT.add(self._prefix[-1], self.unit_rate(index)))
        return self._prefix[units]

    def amount_due(self, units: int) -> int:
        """Base units owed after the first `units` units: their exact cost rounded up once."""
        return ceil_int(self.exact_due(units))

    def tick_amount(self, unit_number: int) -> int:
        """What billing unit `unit_number` (1-based: the n-th tick) adds to the cumulative amount."""
        if as_count(unit_number, "unit_number") == 0:
            raise ValueError("unit_number is 1-based")
        return self.amount_due(unit_number) - self.amount_due(unit_number - 1)

    def units_covered(self, amount: int, *, limit: int) -> int:
        """The most units (at most `limit`) whose amount due is <= `amount`: how many units a cumulative payment
        pays for (the merchant's side of `check_billed`)."""
        as_count(amount, "amount")
        units = 0
        while units < as_count(limit, "limit") and self.amount_due(units + 1) <= amount:
            units += 1
        return units
