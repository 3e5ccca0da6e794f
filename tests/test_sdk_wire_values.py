"""The shared readers of hex and unsigned-integer fields (relayer submissions and x402 payloads use them)."""

import pytest
from protocolbanks.sdk.wire_values import WireValueError, parse_hex, parse_uint


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("2500000", 2_500_000), (7, 7), (2**256 - 1, 2**256 - 1)])
def test_parse_uint__decimal_strings_and_integers(value, expected):
    assert parse_uint(value, "amount") == expected


@pytest.mark.parametrize("value", [True, None, 1.5, "1.5", "-1", "0x10", "1e6", " 1", 2**256, -1, "9" * 79, [1]])
def test_parse_uint__refuses_what_is_not_an_unsigned_integer(value):
    with pytest.raises(WireValueError, match="amount"):
        parse_uint(value, "amount")


def test_parse_uint__hex_only_where_allowed():
    assert parse_uint("0x10", "terms", hex_ok=True) == 16


@pytest.mark.parametrize(("value", "length", "message"), [
    ("1234", None, "0x-prefixed"), ("0xzz", None, "not valid hex"), ("0x1234", 32, "must be 32 bytes, got 2"),
    (b"\x12", None, "0x-prefixed"),
])
def test_parse_hex__refusals_name_the_field_and_the_rule(value, length, message):
    with pytest.raises(WireValueError, match=message):
        parse_hex(value, "channelId", length)


def test_parse_hex__exact_length():
    assert parse_hex("0x" + "ab" * 32, "channelId", 32) == b"\xab" * 32
