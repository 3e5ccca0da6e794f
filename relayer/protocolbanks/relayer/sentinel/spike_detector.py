"""Spike detection on a key's spending curve: the spend rate of the last few seconds against its own baseline.

The baseline is an exponentially weighted average of the rate per second, updated once per elapsed second (so
a silent second counts as zero spend). A spike is a short-window rate that is both `ratio` times the baseline and
above an absolute floor; until `warmup_s` seconds of history exist only the floor (times `ratio`) applies. An
ordinary busy agent has a high but steady rate, so its baseline follows it; a runaway script jumps by an order
of magnitude within seconds and trips before the baseline can catch up.

Pure and deterministic: the caller passes the time. Amounts are integer base units; the baseline is kept in
milli-units per second (integers), never floats.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class SpikeSettings:
    window_s: int = 5  # length of the short window, seconds
    ratio: int = 8  # trip when the short-window rate exceeds ratio x baseline
    floor_per_s: int = 0  # ... and exceeds this absolute rate (base units per second)
    half_life_s: int = 120  # baseline memory
    warmup_s: int = 60  # seconds of history before the baseline is trusted

    def __post_init__(self) -> None:
        if self.window_s < 1 or self.ratio < 2 or self.half_life_s < 1 or self.warmup_s < 0 or self.floor_per_s < 0:
            raise ValueError(f"invalid spike settings: {self}")


@dataclass(frozen=True)
class SpikeVerdict:
    tripped: bool
    short_rate_per_s: int  # base units per second over the short window
    baseline_per_s: int  # base units per second (rounded down)


class SpikeDetector:
    """One key's spending curve."""

    def __init__(self, settings: SpikeSettings | None = None) -> None:
        self.settings = settings or SpikeSettings()
        self._seconds: deque[tuple[int, int]] = deque()  # (second, spend) within the short window
        self._window_total = 0
        self._baseline_milli = 0  # milli-units per second
        self._first_second: int | None = None
        self._last_folded: int | None = None  # last second folded into the baseline
        self._current_second: int | None = None
        self._current_spend = 0
        # decay per second, as a fraction num/den: 0.5 ** (1 / half_life)
        self._decay_den = 1_000_000
        self._decay_num = round(0.5 ** (1 / self.settings.half_life_s) * self._decay_den)

    def _fold(self, second: int, spend: int) -> None:
        """Adds one whole second to the baseline (EWMA)."""
        x = spend * 1000
        self._baseline_milli = (self._baseline_milli * self._decay_num + x * (self._decay_den - self._decay_num)) \
            // self._decay_den
        self._last_folded = second

    def _advance(self, second: int) -> None:
        if self._current_second is None:
            self._current_second, self._first_second = second, second
            return
        if second <= self._current_second:
            return
        # close the current second, and every silent second since, into the baseline
        self._fold(self._current_second, self._current_spend)
        silent = min(second - self._current_second - 1, 10 * self.settings.half_life_s)
        for _ in range(silent):
            self._fold(self._current_second, 0)
        self._current_second, self._current_spend = second, 0
        while self._seconds and self._seconds[0][0] <= second - self.settings.window_s:
            self._window_total -= self._seconds.popleft()[1]

    def observe(self, amount: int, now_ms: int) -> SpikeVerdict:
        """Records a payment of `amount` at `now_ms` and says whether the curve now shows a spike."""
        second = now_ms // 1000
        self._advance(second)
        self._current_spend += amount
        if self._seconds and self._seconds[-1][0] == second:
            last_second, last_spend = self._seconds.pop()
            self._seconds.append((last_second, last_spend + amount))
        else:
            self._seconds.append((second, amount))
        self._window_total += amount
        return self._verdict(second)

    def _verdict(self, second: int) -> SpikeVerdict:
        s = self.settings
        short_rate = self._window_total // s.window_s
        history = second - (self._first_second if self._first_second is not None else second)
        warmed = history >= s.warmup_s
        if warmed:
            reference_milli = max(self._baseline_milli, s.floor_per_s * 1000)
        else:
            reference_milli = s.floor_per_s * 1000  # no trusted baseline yet: only the floor speaks
        tripped = reference_milli > 0 and short_rate > s.floor_per_s and short_rate * 1000 > s.ratio * reference_milli
        return SpikeVerdict(tripped, short_rate, self._baseline_milli // 1000)
