"""Lane terms: the packed word that says what a channel's current signer may authorise.

Mirrors `contracts/libraries/LaneTerms.sol` bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_AMOUNT = (1 << 80) - 1
MAX_TIME = (1 << 40) - 1
MAX_EPOCH = (1 << 24) - 1
MAX_PERIOD_LENGTH = (1 << 32) - 1


@dataclass(frozen=True)
class LaneTerms:
    """What a lane's signer may authorise; amounts in token base units, times in unix seconds."""

    ceiling: int
    period_cap: int
    period_length: int
    valid_until: int
    epoch: int

    def __post_init__(self) -> None:
        for name, value, bound in (
            ("ceiling", self.ceiling, MAX_AMOUNT),
            ("period_cap", self.period_cap, MAX_AMOUNT),
            ("period_length", self.period_length, MAX_PERIOD_LENGTH),
            ("valid_until", self.valid_until, MAX_TIME),
            ("epoch", self.epoch, MAX_EPOCH),
        ):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if not 0 <= value <= bound:
                raise ValueError(f"{name}={value} is outside 0..{bound}")

    @classmethod
    def for_payer(cls, epoch: int = 0) -> LaneTerms:
        """Terms of the payer's own lane: capped by the deposit only, no expiry."""
        return cls(ceiling=MAX_AMOUNT, period_cap=0, period_length=0, valid_until=MAX_TIME, epoch=epoch)

    @classmethod
    def unpack(cls, word: int) -> LaneTerms:
        """Decodes the on-chain word."""
        if not 0 <= word < 1 << 256:
            raise ValueError("terms must be a 256-bit unsigned integer")
        return cls(
            ceiling=word & MAX_AMOUNT,
            period_cap=(word >> 80) & MAX_AMOUNT,
            period_length=(word >> 160) & MAX_PERIOD_LENGTH,
            valid_until=(word >> 192) & MAX_TIME,
            epoch=word >> 232,
        )

    def pack(self) -> int:
        """Encodes the on-chain word."""
        return (
            self.ceiling
            | (self.period_cap << 80)
            | (self.period_length << 160)
            | (self.valid_until << 192)
            | (self.epoch << 232)
        )
