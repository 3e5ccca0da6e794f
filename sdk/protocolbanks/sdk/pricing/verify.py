"""Client side: check that a charged amount is what the merchant's published card says.

The payer's budget guard calls `verify_quote(requirement.extra["rate"], units, amount, at=now)` before it signs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from protocolbanks.sdk.pricing.rate_card import RateCard


def verify_quote(published: Mapping[str, Any], units: int, amount: int, *, at: datetime, volume: int = 0,
                 skew_seconds: float = 0) -> bool:
    """Whether `amount` equals the quote the published card gives for `units` units at `at` after `volume` units.

    `skew_seconds` > 0 also accepts the quote at any instant within `at ± skew_seconds` (client and merchant
    clocks differ, and the merchant may have priced the request a moment before a window boundary).
    ValueError for a malformed card (a merchant that publishes garbage is not "verified"), TypeError for a float
    amount."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amount must be an int of base units, not {type(amount).__name__}")
    if skew_seconds < 0:
        raise ValueError(f"skew_seconds must not be negative, got {skew_seconds}")
    card = RateCard.from_published(published)
    if not skew_seconds:
        return card.quote(units, at=at, volume=volume) == amount
    skew = timedelta(seconds=skew_seconds)
    return amount in card.quotes_between(units, at - skew, at + skew, volume=volume)
