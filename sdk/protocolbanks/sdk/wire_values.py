"""Reading the two kinds of value every JSON body of the protocol carries: 0x-hex byte strings and unsigned
integers (base units, terms). One set of rules for the relayer's submissions and the x402 payloads.

Integers are decimal strings or JSON integers (hex strings only where the caller allows them); booleans, floats
and anything outside 0..2^256-1 are refused, so an amount is never rounded on the way in.
"""

from __future__ import annotations

from typing import Any

MAX_UINT256 = (1 << 256) - 1


class WireValueError(ValueError):
    """A value that is not what its field must hold; the message names the field."""


def parse_hex(value: Any, name: str, length: int | None = None) -> bytes:
    """The bytes of a 0x-prefixed hex string, exactly `length` long when given."""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise WireValueError(f"{name} must be a 0x-prefixed hex string")
    try:
        data = bytes.fromhex(value[2:])
    except ValueError as exc:
        raise WireValueError(f"{name} is not valid hex") from exc
    if length is not None and len(data) != length:
        raise WireValueError(f"{name} must be {length} bytes, got {len(data)}")
    return data


def parse_uint(value: Any, name: str, *, hex_ok: bool = False) -> int:
    """An unsigned 256-bit integer from a decimal string or a JSON integer (or 0x-hex when `hex_ok`)."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise WireValueError(f"{name} must be an integer (decimal string or JSON integer)")
    try:
        if isinstance(value, str) and hex_ok and value.startswith("0x"):
            number = int(value, 16)
        elif isinstance(value, str):
            if len(value) > 78 or not value.isdigit():
                raise ValueError
            number = int(value, 10)
        elif isinstance(value, int):
            number = value
        else:
            raise ValueError
    except ValueError as exc:
        raise WireValueError(f"{name} is not an unsigned integer") from exc
    if not 0 <= number <= MAX_UINT256:
        raise WireValueError(f"{name} is outside 0..2^256-1")
    return number
