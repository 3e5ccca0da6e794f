"""What the local demo runs against (`DemoWorld`: a chain, the deployed contracts, the actors' keys) and the
numbers of its story (`DemoSettings`), plus the narrator that prints its progress.

The world is plain data (an RPC URL, addresses, hex private keys), so the story runs the same under
`ape run demo` (which deploys first) and in a test that already has a chain and contracts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

UNIT = 10**6  # one "U" of the 6-decimal mock stablecoin


def usd(amount: int) -> str:
    """Base units of the 6-decimal token as a human amount: 2500000 -> '2.50 U'."""
    return f"{Decimal(amount) / UNIT:,.2f} U"


def short(value: str, keep: int = 10) -> str:
    """An address or a hash shortened for a one-line message: 0x1234abcd…"""
    return value if len(value) <= keep + 2 else f"{value[:keep]}…"


@dataclass(frozen=True)
class DemoWorld:
    """A chain with StreamChannels and the mock token deployed, and the keys of everyone in the story. Each key
    must hold ether for gas; the payers mint their own tokens (the mock token mints to anyone)."""

    rpc_url: str
    channels: str  # StreamChannels address
    token: str  # MockUSDC address
    merchant_key: str  # the payee: its relayer signs settlements with it
    guardian_key: str  # the relayer's guardian account: freezes a payer's channel when the Sentinel trips
    agent_key: str  # an AI agent buying images
    rider_key: str  # a rider renting a car by the minute
    runaway_key: str  # a script gone wrong


@dataclass(frozen=True)
class DemoSettings:
    """The story's numbers. Money in token base units; a "demo minute" of the car rental lasts `minute_seconds`."""

    image_price: str = "0.1"  # U per image (a decimal string: prices never pass through a float)
    agent_deposit: int = 5 * UNIT
    agent_key_cap: int = 50 * UNIT  # the 24 h session key's total cap
    images: int = 25
    image_pause_s: float = 0.4  # the agent's pace: about 0.25 U/s, an ordinary busy agent
    ride_price: int = UNIT // 5  # base units per minute (0.20 U) before the peak multiplier
    peak_multiplier: str = "1.5"
    rider_deposit: int = 5 * UNIT
    rider_key_cap: int = 10 * UNIT
    ride_minutes: int = 10
    peak_from_minute: int = 5  # the merchant switches peak pricing on during this minute
    minute_seconds: int = 1
    runaway_deposit: int = 10 * UNIT
    runaway_images_per_request: int = 10  # 1 U per request ...
    runaway_pause_s: float = 0.2  # ... five times a second: twenty times the agent's rate
    runaway_max_requests: int = 20
    settle_threshold: int = 2 * UNIT  # the relayer settles a channel once this much is unsettled
    settle_interval_s: int = 600  # ... or once its oldest unsettled payment is this old
    spike_window_s: int = 5  # the Sentinel trips a key spending more than spike_ratio x spike_floor_per_s
    spike_ratio: int = 8  # per second over spike_window_s (before a baseline exists: the first minute)
    spike_floor_per_s: int = 75_000  # -> trips above 3 U in 5 s; the agent and the rider stay below 1.5 U
    poll_interval_ms: int = 200  # relayer: chain poll, Sentinel response and settlement rounds
    fast_key_encryption: bool = False  # True: cheap keystore KDF (tests); False: eth-account's standard scrypt

    @property
    def spike_trips_above(self) -> int:
        """Base units within `spike_window_s` seconds that trip the Sentinel (while only its floor speaks)."""
        return self.spike_ratio * self.spike_floor_per_s * self.spike_window_s


Say = Callable[[str], None]


class Narrator:
    """Prints progress lines from any thread, one whole line at a time; keeps them for the caller."""

    def __init__(self, write: Say = print) -> None:
        self._write = write
        self._lock = threading.Lock()
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)
            self._write(line)


class DemoFailed(RuntimeError):
    """The demo could not go on (a process did not start, a step timed out); the message says what happened."""
