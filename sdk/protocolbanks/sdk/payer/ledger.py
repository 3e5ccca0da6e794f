"""The payer's memory of each channel: what the merchant confirmed, the most it ever signed, the last voucher.

- `charged`: the cumulative the merchant confirmed (PAYMENT-RESPONSE `channelState`); the next voucher signs
  `charged + amount`.
- `signed_max`: the highest cumulative ever signed for the channel. A merchant's claim that its base (or its
  charge) is above it is refused: the payer never signed that, so following it would mean paying twice.
- `last_payload`: the last voucher sent, `VoucherPayload.to_dict()` (for support and disputes).
- `units`: units paid and confirmed (the volume that tiered prices are computed from).

With a path the ledger is a JSON file replaced atomically (tmp + fsync + rename) **before** a signed voucher
leaves the process, so a restart resumes from the persisted base and the persisted signed maximum. Confirmations
are written with the next voucher (or `flush()`), not each on their own: one lost in a crash only makes the
merchant's next answer a corrective 402, which the payer follows since it is <= the persisted signed maximum.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from protocolbanks.sdk.payer.atomic_file import write_atomically
from protocolbanks.sdk.payer.errors import RefusalReason, ResyncRefused

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class LedgerEntry:
    charged: int = 0
    signed_max: int = 0
    units: int = 0
    last_payload: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"charged": str(self.charged), "signedMax": str(self.signed_max), "units": str(self.units),
                "lastPayload": self.last_payload}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LedgerEntry:
        return cls(int(raw["charged"]), int(raw["signedMax"]), int(raw.get("units", "0")), raw.get("lastPayload"))


class LedgerCorrupted(ValueError):
    """The ledger file cannot be read: refusing to start from zero (that could sign a base already paid)."""


class ChannelLedger:
    """Per-channel client state; in memory (`path=None`) or persisted. Thread-safe."""

    def __init__(self, path: Path | str | None = None, *, durable: bool = True) -> None:
        self.path = Path(path) if path is not None else None
        self.durable = durable
        self._lock = threading.Lock()
        self._dirty = False
        self._entries: dict[bytes, LedgerEntry] = self._load() if self.path is not None else {}

    # ------------------------------------------------------------------ reading

    def entry(self, channel_id: bytes) -> LedgerEntry:
        with self._lock:
            return self._entries.get(channel_id, LedgerEntry())

    def channels(self) -> list[bytes]:
        with self._lock:
            return list(self._entries)

    # ------------------------------------------------------------------ changes

    def record_signed(self, channel_id: bytes, cumulative: int, payload: dict[str, Any]) -> LedgerEntry:
        """Called after signing and before sending: raises the signed maximum, persisted first."""
        with self._lock:
            old = self._entries.get(channel_id, LedgerEntry())
            new = replace(old, signed_max=max(old.signed_max, cumulative), last_payload=payload)
            return self._store(channel_id, new)

    def confirm(self, channel_id: bytes, charged: int, *, units: int = 0) -> LedgerEntry:
        """The merchant charged up to `charged` (and `units` more units): never above what was signed."""
        with self._lock:
            old = self._entries.get(channel_id, LedgerEntry())
            if charged > old.signed_max:
                raise ResyncRefused(RefusalReason.MERCHANT_CHARGED_ABOVE_SIGNED,
                                    f"merchant reports {charged} charged, the most ever signed is {old.signed_max}")
            new = replace(old, charged=max(old.charged, charged), units=old.units + units)
            self._entries[channel_id] = new
            self._dirty = self.path is not None
            return new

    def flush(self) -> None:
        """Writes confirmations not on disk yet (they are also written with the next signed voucher)."""
        with self._lock:
            if self._dirty:
                self._write()

    def resync(self, channel_id: bytes, base: int) -> LedgerEntry:
        """A corrective 402 says the merchant's base is `base`: followed only when it is <= the signed maximum.
        A lower base is followed too (signing below an earlier voucher cannot cost the payer more)."""
        with self._lock:
            old = self._entries.get(channel_id, LedgerEntry())
            if base > old.signed_max:
                raise ResyncRefused(RefusalReason.MERCHANT_BASE_ABOVE_SIGNED,
                                    f"merchant claims base {base}, the most ever signed is {old.signed_max}")
            log.info("channel base resynchronised", extra={"channel": "0x" + channel_id.hex(),
                                                            "old_base": old.charged, "new_base": base})
            return self._store(channel_id, replace(old, charged=base))

    # ------------------------------------------------------------------ storage

    def _store(self, channel_id: bytes, entry: LedgerEntry) -> LedgerEntry:
        previous = self._entries.get(channel_id)
        self._entries[channel_id] = entry
        if self.path is not None:
            try:
                self._write()
            except BaseException:
                if previous is None:
                    self._entries.pop(channel_id)
                else:
                    self._entries[channel_id] = previous
                raise
        return entry

    def _write(self) -> None:
        assert self.path is not None
        body = {"version": FORMAT_VERSION,
                "channels": {"0x" + cid.hex(): entry.to_json() for cid, entry in sorted(self._entries.items())}}
        write_atomically(self.path, json.dumps(body, indent=1, sort_keys=True).encode(), durable=self.durable)
        self._dirty = False

    def _load(self) -> dict[bytes, LedgerEntry]:
        assert self.path is not None
        if not self.path.exists():
            return {}
        try:
            body = json.loads(self.path.read_text())
            if body.get("version") != FORMAT_VERSION:
                raise ValueError(f"unknown ledger format {body.get('version')!r}")
            return {bytes.fromhex(cid.removeprefix("0x")): LedgerEntry.from_json(raw)
                    for cid, raw in body["channels"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LedgerCorrupted(f"{self.path}: {exc}") from exc
