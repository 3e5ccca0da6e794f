"""Channels someone asked to settle now (the payer's `settle()`, an operator), whatever the thresholds.

Settling early only costs the merchant gas, so anyone may ask, but each channel at most once per
`min_interval_s` and only while it holds unsettled money; the settler takes the requests on its next round.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SettleRequests:
    def __init__(self, min_interval_s: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self.min_interval_s = min_interval_s
        self.clock = clock
        self._pending: set[bytes] = set()
        self._last: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def ask(self, channel_id: bytes) -> bool:
        """Records the request; False when the channel was asked for less than `min_interval_s` ago."""
        now = self.clock()
        with self._lock:
            last = self._last.get(channel_id)
            if last is not None and now - last < self.min_interval_s:
                return False
            self._last[channel_id] = now
            self._pending.add(channel_id)
            return True

    def take(self) -> set[bytes]:
        """The channels asked for since the last call (the settler's round)."""
        with self._lock:
            taken, self._pending = self._pending, set()
            return taken
