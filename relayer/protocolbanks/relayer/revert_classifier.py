"""What a settlement failure means for what the settler does next. Pure: exceptions and revert data in, a class out.

- `transient`: try again later, with backoff — the RPC is unreachable or timed out, the nonce was taken, the fee
  was too low for the pool, the account lacks gas money, or a row's period cap is spent until the next period.
- `stale_terms`: `UnknownLane` — the row named lane terms the contract does not know; refresh them from the chain
  cache and send again (if the cache knows no fresher terms for the voucher's epoch, the lane is gone: permanent).
- `nothing_due`: the voucher is already redeemed (an equal or higher one is on-chain): it moves nothing, and the
  channel counts as settled up to it.
- `permanent`: the contract will never accept this voucher (bad signature, closed channel, expired key, above the
  deposit or cap, an unknown revert): the item is marked failed with its error and not retried.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from enum import StrEnum

from protocolbanks.sdk.contract_errors import decode_revert


class FailureClass(StrEnum):
    TRANSIENT = "transient"
    STALE_TERMS = "stale_terms"
    NOTHING_DUE = "nothing_due"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Classified:
    failure_class: FailureClass
    reason: str  # stable code: a contract error's name (`UnknownLane`) or an RPC condition (`nonce_too_low`)
    detail: str  # for people: the decoded error with its arguments, or the RPC's message

    def __str__(self) -> str:
        return f"{self.failure_class}: {self.detail}"


# RPC conditions (reason codes), all transient.
RPC_UNAVAILABLE = "rpc_unavailable"
NONCE_TOO_LOW = "nonce_too_low"
REPLACEMENT_UNDERPRICED = "replacement_underpriced"
UNDERPRICED = "underpriced"
ALREADY_KNOWN = "already_known"
INSUFFICIENT_FUNDS = "insufficient_funds"
RPC_ERROR = "rpc_error"

_TRANSIENT_ERRORS = frozenset({
    "PeriodCapExceeded",  # the next period has room again
    "SafeERC20FailedOperation",  # the token refused the payout (paused?): the whole batch, not one row
    "ReentrancyGuardReentrantCall",
})
_STALE_TERMS_ERRORS = frozenset({"UnknownLane"})

# Node messages, lower case, as geth, anvil, reth and eth-tester word them; the first match wins.
_RPC_MESSAGES: tuple[tuple[str, str], ...] = (
    ("replacement transaction underpriced", REPLACEMENT_UNDERPRICED),
    ("replacement underpriced", REPLACEMENT_UNDERPRICED),
    ("nonce too low", NONCE_TOO_LOW),
    ("invalid transaction nonce", NONCE_TOO_LOW),  # eth-tester
    ("already known", ALREADY_KNOWN),
    ("already imported", ALREADY_KNOWN),  # anvil: "transaction already imported"
    ("transaction underpriced", UNDERPRICED),
    ("less than block base fee", UNDERPRICED),  # "max fee per gas less than block base fee"
    ("fee cap less than", UNDERPRICED),
    ("insufficient funds", INSUFFICIENT_FUNDS),
)
# Transport failures by class name (requests, aiohttp and web3 each have their own): the RPC is unreachable.
_TRANSPORT_ERRORS = frozenset({"ConnectionError", "Timeout", "ReadTimeout", "ConnectTimeout",
                               "ProviderConnectionError", "TimeExhausted", "ClientConnectionError",
                               "ServerDisconnectedError", "HTTPError"})


def classify_contract_error(name: str, detail: str | None = None) -> Classified:
    """A StreamChannels custom error, by name."""
    if name in _STALE_TERMS_ERRORS:
        failure_class = FailureClass.STALE_TERMS
    elif name in _TRANSIENT_ERRORS:
        failure_class = FailureClass.TRANSIENT
    else:
        failure_class = FailureClass.PERMANENT
    return Classified(failure_class, name, detail or name)


def classify_revert_data(data: bytes) -> Classified:
    """Raw revert data (or a bare 4-byte selector, as `RedemptionSkipped` reports it)."""
    decoded = decode_revert(data) if len(data) >= 4 else None
    if decoded is None:
        shown = "0x" + data.hex() if data else "no data"
        return Classified(FailureClass.PERMANENT, "unknown_revert", f"reverted ({shown})")
    return classify_contract_error(decoded.name, str(decoded) if decoded.args else decoded.name)


def classify_redemption(moved: bool, error: bytes | None) -> Classified | None:
    """One voucher's fate in a batch (from a receipt) or a simulation: None when it moved money."""
    if moved:
        return None
    if error is None or error == b"\x00" * 4:
        return Classified(FailureClass.NOTHING_DUE, "already_redeemed", "already redeemed: moves nothing")
    return classify_revert_data(error)


def revert_data_of(exc: BaseException) -> bytes | None:
    """The revert data carried by an exception from web3 (`ContractLogicError.data`) or eth-tester
    (`execution reverted: b'…'`), or None if the exception is not a revert."""
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str) and re.fullmatch(r"0x([0-9a-fA-F]{2})*", data):
        return bytes.fromhex(data[2:])
    message = str(exc.args[0]) if exc.args else ""
    match = re.search(r"execution reverted: (b'.*'|b\".*\")$", message, re.DOTALL)
    if match:
        literal = ast.literal_eval(match.group(1))
        return bytes(literal) if isinstance(literal, bytes) else None
    if type(exc).__name__ in ("ContractLogicError", "TransactionFailed") or message.startswith("execution reverted"):
        return b""
    return None


def classify_exception(exc: BaseException) -> Classified:
    """An exception raised while simulating, estimating or sending a settlement."""
    data = revert_data_of(exc)
    if data is not None:
        return classify_revert_data(data)
    message = " ".join(str(a) for a in exc.args) if exc.args else str(exc)
    lowered = message.lower()
    names = {t.__name__ for t in type(exc).__mro__}
    if isinstance(exc, (OSError, TimeoutError)) or names & _TRANSPORT_ERRORS:
        return Classified(FailureClass.TRANSIENT, RPC_UNAVAILABLE, message[:500] or type(exc).__name__)
    for needle, reason in _RPC_MESSAGES:
        if needle in lowered:
            return Classified(FailureClass.TRANSIENT, reason, message[:500])
    # Anything else the node said: retried with backoff rather than declared hopeless (vouchers are never dropped
    # on a guess); the operator sees it in `settlements`.
    return Classified(FailureClass.TRANSIENT, RPC_ERROR, f"{type(exc).__name__}: {message[:500]}")
