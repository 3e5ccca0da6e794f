"""Exact decimal arithmetic for prices: parse human input, multiply and add without rounding, round up once.

Multipliers and human prices are `Decimal` (or the text of one, or an int); a float is refused with TypeError
because it cannot represent "0.1" exactly. Products and sums run in a context with unbounded precision that
traps on any rounding, so a price is the exact value of `unit_price x multipliers x units` until the single
`ceil_int` at the end.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_CEILING,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
)

EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN,
                traps=[Inexact, Rounded, InvalidOperation, Overflow, DivisionByZero])

ONE = Decimal(1)
ZERO = Decimal(0)

DecimalInput = Decimal | str | int


def as_decimal(value: object, what: str = "value") -> Decimal:
    """A finite Decimal from a Decimal, its text ("1.5") or an int; TypeError for float/bool, ValueError else."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"{what} must be a Decimal, a decimal string or an int, not {type(value).__name__} "
                        f"({value!r}): floats cannot hold decimal prices exactly")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValueError(f"{what} {value!r} is not a decimal number") from exc
    else:
        raise TypeError(f"{what} must be a Decimal, a decimal string or an int, not {type(value).__name__}")
    if not number.is_finite():
        raise ValueError(f"{what} {value!r} is not a finite number")
    return number


def as_count(value: object, what: str) -> int:
    """A non-negative int (units, volumes, base units); TypeError for anything else (bool and float included)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}")
    return value


def as_multiplier(value: object, what: str = "multiplier") -> Decimal:
    """A multiplier: a finite Decimal strictly greater than zero (use 1 for "no effect")."""
    number = as_decimal(value, what)
    if number <= 0:
        raise ValueError(f"{what} must be greater than zero, got {value!r} (use 1 for no effect)")
    return number


def decimal_text(number: Decimal) -> str:
    """Canonical text without exponent or trailing zeros: Decimal("1.50") -> "1.5", Decimal("1E+2") -> "100"."""
    if number == 0:
        return "0"
    return format(number.normalize(EXACT), "f")


def exact_product(factors: Iterable[Decimal]) -> Decimal:
    result = ONE
    for factor in factors:
        result = EXACT.multiply(result, factor)
    return result


def exact_sum(terms: Iterable[Decimal]) -> Decimal:
    result = ZERO
    for term in terms:
        result = EXACT.add(result, term)
    return result


def ceil_int(number: Decimal) -> int:
    """The smallest integer >= number (ROUND_CEILING)."""
    return int(number.to_integral_value(rounding=ROUND_CEILING, context=EXACT))
