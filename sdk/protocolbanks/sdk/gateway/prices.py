"""What a paid route charges for one request: a fixed price, a function of the request, or a rate card.

A route's price is one of
* an `int` of token base units (per unit), or a `Decimal` / decimal string of whole tokens ("0.1" U per unit),
  converted exactly with the token's decimals (floats are refused: TypeError);
* a function of the framework's request returning one of those (the whole price of the request, e.g. 0.1 U per
  generated image times the images asked for);
* a `protocolbanks.sdk.pricing.RateCard`: `card.quote(units, volume=...)`, its published card going to the
  requirement's `extra["rate"]` so the payer can check the amount (`verify_quote`) before it signs.

`units` (a function of the request, default 1) says how many units a request uses; with a rate card or a fixed
per-unit price the amount is for that many units and `extra["units"]` tells the payer.

x402 requires a paid retry's amount to equal the 402's exactly. A rate card's quote can change between the two
(a window boundary, a merchant's multiplier change), so a rate-card route also accepts an amount it quoted within
the requirement's `maxTimeoutSeconds` (`RateCard.quotes_between`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from protocolbanks.sdk.pricing import RateCard, to_base_units

PriceValue = int | Decimal | str
PriceFunction = Callable[[Any], PriceValue]
PriceSpec = PriceValue | RateCard | PriceFunction
UnitsFunction = Callable[[Any], int]


def to_amount(value: object, *, decimals: int) -> int:
    """Base units of a price value: an int is base units, a Decimal or decimal string is whole tokens."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"a price must be an int of base units or a Decimal/decimal string of tokens, not "
                        f"{type(value).__name__} ({value!r}): floats cannot hold prices exactly")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a price must not be negative, got {value}")
        return value
    if isinstance(value, (Decimal, str)):
        return to_base_units(value, decimals=decimals)
    raise TypeError(f"a price must be an int, a Decimal or a decimal string, not {type(value).__name__}")


@dataclass(frozen=True)
class Quote:
    """The amount asked for one request, and what the payer needs to check it."""

    amount: int
    units: int = 1
    rate: dict[str, Any] | None = None  # the published rate card, when the route prices by one
    per_unit: bool = False  # whether the amount is for `units` units (the payer checks them)

    def extra(self) -> dict[str, Any]:
        """Keys for the requirement's `extra` (`rate`, `units`)."""
        extra: dict[str, Any] = {}
        if self.rate is not None:
            extra["rate"] = self.rate
        if self.rate is not None or self.per_unit:
            extra["units"] = self.units
        return extra


class RoutePrice:
    """How one route prices a request."""

    def __init__(self, spec: PriceSpec, *, decimals: int, units: UnitsFunction | None = None) -> None:
        self.decimals = decimals
        self.units_of = units
        self.card: RateCard | None = spec if isinstance(spec, RateCard) else None
        self.function: PriceFunction | None = None
        self.fixed: int | None = None
        if self.card is None:
            if callable(spec):
                self.function = spec
            else:
                self.fixed = to_amount(spec, decimals=decimals)

    def units(self, request: Any) -> int:
        if self.units_of is None:
            return 1
        units = self.units_of(request)
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"units of a request must be an int >= 1, got {units!r}")
        return units

    def quote(self, request: Any, *, volume: int = 0, at: datetime | None = None) -> Quote:
        units = self.units(request)
        if self.card is not None:
            return Quote(self.card.quote(units, at=at, volume=volume), units, self.card.published(at=at))
        if self.function is not None:
            return Quote(to_amount(self.function(request), decimals=self.decimals), units,
                         per_unit=self.units_of is not None)
        assert self.fixed is not None
        return Quote(self.fixed * units, units, per_unit=self.units_of is not None)

    def recent(self, request: Any, amount: int, rate: Any, *, volume: int, now: datetime,
               window_seconds: int) -> Quote | None:
        """A quote this route gave for this request within the last `window_seconds` and asked `amount` — the
        402 a paid retry answers — or None. Only rate cards change their quotes over time."""
        if self.card is None or not isinstance(rate, dict):
            return None
        units = self.units(request)
        if amount not in self.card.quotes_between(units, now - timedelta(seconds=window_seconds), now,
                                                  volume=volume):
            return None
        return Quote(amount, units, rate)
