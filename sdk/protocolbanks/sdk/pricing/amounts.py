"""Human token amounts <-> integer base units, exactly.

`to_base_units("0.1", decimals=6) == 100_000`. Money inside the SDK is always an int of base units; these helpers
are for the API edge (a merchant writing "0.1" U per image, a summary printing amounts).
"""

from __future__ import annotations

from decimal import Decimal

from protocolbanks.sdk.pricing.exact import DecimalInput, as_decimal, decimal_text


def _check_decimals(decimals: int) -> None:
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 77:
        raise ValueError(f"decimals must be an int between 0 and 77, got {decimals!r}")


def to_base_units(amount: DecimalInput, *, decimals: int) -> int:
    """Whole-token amount (Decimal, decimal string or int) -> base units. TypeError for a float; ValueError for a
    negative amount or one with more fractional digits than the token has ("0.0000001" with 6 decimals)."""
    _check_decimals(decimals)
    number = as_decimal(amount, "amount")
    if number < 0:
        raise ValueError(f"amount must not be negative, got {amount!r}")
    _sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite, checked by as_decimal
    coefficient = int("".join(map(str, digits)) or "0")
    shift = exponent + decimals
    scale: int = 10 ** abs(shift)
    if shift >= 0:
        return coefficient * scale
    base_units, remainder = divmod(coefficient, scale)
    if remainder:
        raise ValueError(f"amount {amount!r} has more than {decimals} decimals: not a whole number of base units")
    return base_units


def from_base_units(amount: int, *, decimals: int) -> Decimal:
    """Base units -> whole-token Decimal, exactly: from_base_units(100_000, decimals=6) == Decimal("0.100000")."""
    _check_decimals(decimals)
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amount must be an int of base units, not {type(amount).__name__}")
    return Decimal(f"{amount}E-{decimals}")


def format_base_units(amount: int, *, decimals: int) -> str:
    """Base units as short human text: format_base_units(100_000, decimals=6) == "0.1"."""
    return decimal_text(from_base_units(amount, decimals=decimals))
