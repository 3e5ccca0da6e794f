"""When to try again after a failure: exponential backoff with a cap. Pure; the caller stores the attempt count
(the settlement ledger does, so a restarted relayer continues the schedule instead of starting over)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    initial_ms: int = 1_000
    max_ms: int = 300_000
    factor: int = 2

    def __post_init__(self) -> None:
        if self.initial_ms <= 0 or self.max_ms < self.initial_ms or self.factor < 1:
            raise ValueError(f"invalid backoff: {self}")

    def delay_ms(self, failures: int) -> int:
        """Wait after the `failures`-th consecutive failure (1 -> initial, doubling up to the cap)."""
        if failures <= 0:
            return 0
        delay = self.initial_ms
        for _ in range(failures - 1):
            delay *= self.factor
            if delay >= self.max_ms:
                return self.max_ms
        return min(delay, self.max_ms)

    def retry_at_ms(self, failures: int, now_ms: int) -> int:
        return now_ms + self.delay_ms(failures)
