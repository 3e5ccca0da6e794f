"""Rate limit for "settle this channel now" requests (the payer's `settle()`, an operator).

Settling early only costs the merchant gas, so anyone may ask, but each channel at most once per
`min_interval_s`; the request itself is recorded in the database (`VoucherStore.request_settlement`), so whichever
relayer instance settles sees it on its next round.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SettleRequests:
    def __init__(self, min_interval_s: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self.min_interval_s = min_interval_s
        self.clock = clock
        self._last: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def ask(self, channel_id: bytes) -> bool:
        """True when the request may go ahead; False when the channel was asked for less than
        `min_interval_s` ago."""
        now = self.clock()
        with self._lock:
            last = self._last.get(channel_id)
            if last is not None and now - last < self.min_interval_s:
                return False
            self._last[channel_id] = now
            return True
