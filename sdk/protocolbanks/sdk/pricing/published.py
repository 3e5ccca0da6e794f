"""The published rate card: the JSON a merchant puts in a 402 requirement (`extra["rate"]`) and serves from its
rate API, from which a client reproduces every quote exactly.

```json
{"format": "pb-rate-card/1", "unit": "minute", "unitPrice": "100000",
 "multipliers": {"surge": "1.2"},
 "windows": [{"name": "peak", "start": "17:00:00", "end": "20:00:00", "multiplier": "1.5"}],
 "tiers": [{"fromUnits": 100, "multiplier": "0.8"}],
 "combine": "product", "rounding": "ceiling",
 "version": 3, "effectiveAt": "2026-11-22T16:00:00Z", "digest": "9f2c…"}
```

`unitPrice` is a decimal string of token base units (JSON numbers lose precision past 2**53 in JavaScript);
multipliers are decimal strings. `version` counts the merchant's changes and `effectiveAt` is when this state
started, so a client holding an older card sees the change; `digest` (SHA-256 of the pricing content, without
version and time) stays the same across a merchant restart that keeps the same prices.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from protocolbanks.sdk.pricing.exact import as_multiplier, decimal_text
from protocolbanks.sdk.pricing.tiers import VolumeTier, sorted_tiers
from protocolbanks.sdk.pricing.utc import iso_utc, parse_iso_utc
from protocolbanks.sdk.pricing.windows import TimeWindow

FORMAT = "pb-rate-card/1"
COMBINE = "product"  # all multipliers that apply (named, windows, the unit's tier) multiply
ROUNDING = "ceiling"  # exact total rounded up once, to a whole base unit


@dataclass(frozen=True)
class PublishedRate:
    """A rate card's state at one time, as published."""

    unit: str
    unit_price: int
    multipliers: Mapping[str, Decimal]  # global named multipliers (windows carry their own)
    windows: tuple[TimeWindow, ...]
    tiers: tuple[VolumeTier, ...]
    version: int
    effective_at: datetime

    def content(self) -> dict[str, Any]:
        return {"format": FORMAT, "unit": self.unit, "unitPrice": str(self.unit_price),
                "multipliers": {name: decimal_text(value) for name, value in sorted(self.multipliers.items())},
                "windows": [window.to_dict() for window in self.windows],
                "tiers": [tier.to_dict() for tier in self.tiers],
                "combine": COMBINE, "rounding": ROUNDING}

    def to_dict(self) -> dict[str, Any]:
        content = self.content()
        return {**content, "version": self.version, "effectiveAt": iso_utc(self.effective_at),
                "digest": content_digest(content)}

    @classmethod
    def from_dict(cls, data: object) -> PublishedRate:
        """Parse and check a published card; ValueError says what is wrong (unknown format or rule, malformed
        field, digest that does not match the content)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a published rate card must be an object, got {type(data).__name__}")
        for field, expected in (("format", FORMAT), ("combine", COMBINE), ("rounding", ROUNDING)):
            if data.get(field) != expected:
                raise ValueError(f"published rate card {field} {data.get(field)!r} is not {expected!r}")
        unit, version, multipliers = data.get("unit"), data.get("version"), data.get("multipliers", {})
        windows, tiers = data.get("windows", []), data.get("tiers", [])
        if not isinstance(unit, str) or not unit:
            raise ValueError(f"published rate card unit {unit!r} is not a non-empty string")
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise ValueError(f"published rate card version {version!r} is not a non-negative integer")
        if not isinstance(multipliers, Mapping) or not isinstance(windows, list) or not isinstance(tiers, list):
            raise ValueError("published rate card multipliers must be an object, windows and tiers lists")
        try:
            rate = cls(unit, _parse_unit_price(data.get("unitPrice")),
                       {str(name): as_multiplier(value, f"multiplier {name!r}")
                        for name, value in multipliers.items()},
                       tuple(TimeWindow.from_dict(window) for window in windows),
                       sorted_tiers(VolumeTier.from_dict(tier) for tier in tiers),
                       version, parse_iso_utc(data.get("effectiveAt"), "effectiveAt"))
        except TypeError as exc:  # e.g. a JSON number (float) where a decimal string belongs
            raise ValueError(f"malformed published rate card: {exc}") from exc
        digest = data.get("digest")
        if digest is not None and digest != content_digest(rate.content()):
            raise ValueError("published rate card digest does not match its content")
        return rate


def content_digest(content: Mapping[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _parse_unit_price(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError(f"published unitPrice {value!r} is not a non-negative integer of base units")
