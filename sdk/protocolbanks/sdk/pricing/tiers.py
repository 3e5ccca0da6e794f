"""Volume tiers: a multiplier chosen by how many units the payer has already used.

Units are counted from 0: with `volume` units used before, the next unit is unit number `volume`. The tier in
effect for a unit is the one with the largest `from_units` <= its number; units below the first tier pay
multiplier 1. A quote that crosses a tier boundary prices **each unit at its own tier** (units 98..101 with a
tier from 100 pay two units at the old multiplier and two at the new), so splitting a purchase into smaller
ones never changes the exact total.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise
from typing import Any

from protocolbanks.sdk.pricing.exact import EXACT, ONE, ZERO, as_multiplier, decimal_text


@dataclass(frozen=True)
class VolumeTier:
    """`multiplier` applies to every unit numbered `from_units` or more (until the next tier)."""

    from_units: int
    multiplier: Decimal

    def __post_init__(self) -> None:
        if isinstance(self.from_units, bool) or not isinstance(self.from_units, int):
            raise TypeError(f"tier from_units must be an int, not {type(self.from_units).__name__}")
        if self.from_units < 0:
            raise ValueError(f"tier from_units must not be negative, got {self.from_units}")
        object.__setattr__(self, "multiplier",
                           as_multiplier(self.multiplier, f"tier from {self.from_units} multiplier"))

    def to_dict(self) -> dict[str, Any]:
        return {"fromUnits": self.from_units, "multiplier": decimal_text(self.multiplier)}

    @classmethod
    def from_dict(cls, data: object) -> VolumeTier:
        if not isinstance(data, dict):
            raise ValueError(f"a tier must be an object, got {type(data).__name__}")
        try:
            return cls(data["fromUnits"], as_multiplier(data["multiplier"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed tier {data!r}: {exc}") from exc


def sorted_tiers(tiers: Iterable[VolumeTier]) -> tuple[VolumeTier, ...]:
    """Tiers by `from_units`; ValueError when two start at the same unit (which one would apply?)."""
    ordered = tuple(sorted(tiers, key=lambda tier: tier.from_units))
    for before, after in pairwise(ordered):
        if before.from_units == after.from_units:
            raise ValueError(f"two volume tiers start at unit {after.from_units} "
                             f"(multipliers {before.multiplier} and {after.multiplier})")
    return ordered


def tier_multiplier(tiers: tuple[VolumeTier, ...], unit_number: int) -> Decimal:
    """The multiplier for unit number `unit_number` (0-based count of the payer's units)."""
    multiplier = ONE
    for tier in tiers:
        if tier.from_units > unit_number:
            break
        multiplier = tier.multiplier
    return multiplier


def tiered_units(tiers: tuple[VolumeTier, ...], volume: int, units: int) -> Decimal:
    """Exact sum of the tier multipliers of units `volume .. volume + units - 1` (each unit at its own tier)."""
    total, first, end = ZERO, volume, volume + units
    while first < end:
        multiplier = tier_multiplier(tiers, first)
        next_start = next((tier.from_units for tier in tiers if tier.from_units > first), end)
        stop = min(next_start, end)
        total = EXACT.add(total, EXACT.multiply(multiplier, Decimal(stop - first)))
        first = stop
    return total
