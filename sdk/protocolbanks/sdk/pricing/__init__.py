"""Merchant pricing, pure and exact: `price x usage x multipliers` in integer token base units.

A `RateCard` has a unit price, named multipliers the merchant changes at run time (`set_multiplier`, recorded in
`history`), UTC time-of-day windows (may wrap midnight; several multiply) and volume tiers (each unit at its
own tier). `quote` computes exactly and rounds up once. `published()` is the JSON clients verify against with
`verify_quote`; `RateCard.from_published` rebuilds the card on the client. `to_base_units("0.1", decimals=6)`
converts human prices exactly (floats refused).
"""

from protocolbanks.sdk.pricing.amounts import format_base_units, from_base_units, to_base_units
from protocolbanks.sdk.pricing.exact import as_count, as_decimal, as_multiplier, decimal_text
from protocolbanks.sdk.pricing.history import RateChange, RateState
from protocolbanks.sdk.pricing.published import FORMAT, PublishedRate, content_digest
from protocolbanks.sdk.pricing.rate_card import RateCard
from protocolbanks.sdk.pricing.tiers import VolumeTier
from protocolbanks.sdk.pricing.utc import Clock, as_utc, iso_utc, parse_iso_utc, utc_now
from protocolbanks.sdk.pricing.verify import verify_quote
from protocolbanks.sdk.pricing.windows import TimeWindow

__all__ = [
    "FORMAT",
    "Clock",
    "PublishedRate",
    "RateCard",
    "RateChange",
    "RateState",
    "TimeWindow",
    "VolumeTier",
    "as_count",
    "as_decimal",
    "as_multiplier",
    "as_utc",
    "content_digest",
    "decimal_text",
    "format_base_units",
    "from_base_units",
    "iso_utc",
    "parse_iso_utc",
    "to_base_units",
    "utc_now",
    "verify_quote",
]
