"""Keeps the merchant's chain view current: polls a `ChainCache` from a background thread.

The channel book reads snapshots from memory; a freeze, revoke or close reaches the gateway with the next poll.
Give the book `chain_lag=follower.seconds_behind` and it refuses vouchers (`chain_unavailable`) while the view is
older than `max_chain_lag_s` (RPC down), as the relayer's intake does.
"""

from __future__ import annotations

import logging
import threading

from protocolbanks.sdk.chain_view import ChainCache

log = logging.getLogger("protocolbanks.gateway.chain")


class ChainFollower:
    """`cache.poll()` every `interval` seconds until stopped; a failing poll is logged and retried."""

    def __init__(self, cache: ChainCache, *, interval: float = 1.0) -> None:
        self.cache = cache
        self.interval = interval
        self.polls = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ChainFollower:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="pb-chain-follower", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def seconds_behind(self) -> float | None:
        return self.cache.seconds_behind()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.cache.poll()
                self.polls += 1
            except Exception as exc:  # the RPC is down: keep the last good view, try again
                self.failures += 1
                log.warning("chain poll failed: %s", exc, extra={"failures": self.failures})
            self._stop.wait(self.interval)
