"""EIP-1559 fees of settlement transactions: the first offer and the same-nonce replacement of a stuck one.

Pure integer arithmetic in wei, no I/O. A replacement must raise both `maxFeePerGas` and `maxPriorityFeePerGas`
by at least `bump_bps` basis points (12.5 % by default: more than geth's 10 % rule, what most nodes accept),
and nothing is ever offered above the operator's cap: when the cap stops a bump, the caller keeps waiting.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_BUMP_BPS = 1_250  # 12.5 %
_BPS = 10_000


@dataclass(frozen=True)
class Fees:
    """What a type-2 transaction offers per unit of gas (wei)."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def __post_init__(self) -> None:
        if not 0 <= self.max_priority_fee_per_gas <= self.max_fee_per_gas:
            raise ValueError(f"invalid fees: {self}")


def initial_fees(base_fee: int, suggested_priority: int, cap: int | None) -> Fees | None:
    """The first offer: room for the base fee to double, plus the suggested tip; clipped to the cap.
    None when the cap is below the current base fee (the transaction could not be mined now)."""
    max_fee = 2 * base_fee + suggested_priority
    if cap is not None:
        if cap < base_fee:
            return None
        max_fee = min(max_fee, cap)
    return Fees(max_fee, min(suggested_priority, max_fee))


def minimum_replacement(previous: Fees, bump_bps: int = MIN_BUMP_BPS) -> Fees:
    """The smallest fees a node accepts as a replacement of `previous` (each raised by `bump_bps`, at least 1 wei)."""
    def raised(value: int) -> int:
        return max(-(-value * (_BPS + bump_bps) // _BPS), value + 1)

    return Fees(raised(previous.max_fee_per_gas), raised(previous.max_priority_fee_per_gas))


def bumped_fees(previous: Fees, base_fee: int, suggested_priority: int, cap: int | None,
                bump_bps: int = MIN_BUMP_BPS) -> Fees | None:
    """Fees for a same-nonce replacement: at least the minimum bump, more if the market moved (today's base fee
    and tip), never above `cap`. None when the cap leaves no room for a valid replacement."""
    if bump_bps < MIN_BUMP_BPS:
        raise ValueError(f"a replacement needs at least a {MIN_BUMP_BPS / 100} % bump, got {bump_bps / 100} %")
    floor = minimum_replacement(previous, bump_bps)
    tip = max(floor.max_priority_fee_per_gas, suggested_priority)
    max_fee = max(floor.max_fee_per_gas, 2 * base_fee + tip)
    if cap is not None and max_fee > cap:
        max_fee = cap
    tip = min(tip, max_fee)
    if max_fee < floor.max_fee_per_gas or tip < floor.max_priority_fee_per_gas:
        return None
    return Fees(max_fee, tip)
