"""Sends a contract call as a signed transaction from a local key, with the protocol's errors named.

web3.py and eth-account only: an integrator's service needs no Ape to act on its channels. The call is
simulated first (`estimate_gas`), so a call that would revert fails before spending gas, with the custom error
decoded (`NotPayer(caller=…, payer=…)`), never a raw hex blob.
"""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from protocolbanks.sdk.contract_errors import DecodedError, decode_revert
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError


class ContractCallFailed(Exception):
    """A protocol call that reverted (or would revert): `error` is the decoded custom error when there is one."""

    def __init__(self, action: str, error: DecodedError | None, detail: str = "") -> None:
        self.action = action
        self.error = error
        shown = str(error) if error is not None else (detail or "reverted")
        super().__init__(f"{action} failed: {shown}")


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert data behind a failed call: web3's ContractLogicError/ContractCustomError carry it in
    `.data`; an in-process eth-tester chain keeps it in the chained exception's arguments."""
    seen: BaseException | None = exc
    while seen is not None:
        data = _as_bytes(getattr(seen, "data", None))
        if data is None:
            for arg in seen.args:
                data = _as_bytes(arg.args[0] if isinstance(arg, Exception) and arg.args else arg)
                if data is not None:
                    break
        if data is not None:
            return data
        seen = seen.__cause__ or seen.__context__
    return None


def _as_bytes(value: Any) -> bytes | None:
    if isinstance(value, dict):
        value = value.get("data")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str) and value.startswith("0x") and len(value) >= 10:
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            return None
    return None


class TransactionSender:
    def __init__(self, w3: Web3, account: LocalAccount, *, timeout_s: float = 120.0, gas_margin_pct: int = 25) -> None:
        self.w3 = w3
        self.account = account
        self.timeout_s = timeout_s
        self.gas_margin_pct = gas_margin_pct

    def send(self, action: str, call: Any) -> Any:
        """Simulates, signs, sends and waits for `call` (a web3 ContractFunction); returns the receipt."""
        sender = self.account.address
        try:
            gas = int(call.estimate_gas({"from": sender}))
        except Exception as exc:  # a revert (any provider's shape) is named; anything else (I/O) propagates
            data = revert_data(exc)
            if data is None and not isinstance(exc, (ContractCustomError, ContractLogicError)):
                raise
            raise ContractCallFailed(action, decode_revert(data) if data else None, str(exc)) from exc
        tx = call.build_transaction({
            "from": sender, "nonce": self.w3.eth.get_transaction_count(sender, "pending"),
            "gas": gas + gas * self.gas_margin_pct // 100,
        })
        tx_hash = self.w3.eth.send_raw_transaction(self.account.sign_transaction(tx).raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(HexBytes(tx_hash), timeout=self.timeout_s)
        if receipt["status"] != 1:
            raise ContractCallFailed(action, None, f"transaction 0x{bytes(tx_hash).hex()} reverted")
        return receipt
