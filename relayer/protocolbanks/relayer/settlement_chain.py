"""What the settler asks of the chain, through web3: simulate a batch, estimate gas, read fees and nonces, sign
type-2 transactions locally (also same-nonce replacements of a signed one), broadcast, and read receipts.

Every call raises what web3 raises; the settler classifies it (`revert_classifier`) and decides what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from hexbytes import HexBytes
from protocolbanks.relayer.fee_policy import Fees
from protocolbanks.relayer.revert_classifier import ALREADY_KNOWN, classify_exception
from protocolbanks.sdk.batch_rows import pack_redemption_rows, unpack_redemption_rows
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import TransactionNotFound

Row = tuple[bytes, int, int, bytes, bytes]  # Redemption(channelId, cumulativeAmount, terms, r, vs)
GAS_MARGIN_PERCENT = 25  # rows skipped or redeemed differently at mining time change the gas a little


@dataclass(frozen=True)
class SignedSettlementTx:
    tx_hash: bytes
    raw: bytes
    nonce: int
    fees: Fees


class SettlementChain:
    def __init__(self, w3: Web3, contract: Contract, account: LocalAccount) -> None:
        self.w3 = w3
        self.contract = contract
        self.account = account
        self._chain_id: int | None = None

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def _batch(self, token: str, rows: list[Row]) -> Any:
        return self.contract.functions.redeemBatch(self.account.address, Web3.to_checksum_address(token),
                                                   pack_redemption_rows(rows))

    def simulate(self, token: str, rows: list[Row]) -> int:
        """What the batch would pay now (eth_call); raises with the revert data if it would revert as a whole."""
        return int(self._batch(token, rows).call({"from": self.account.address}))

    def simulate_row(self, token: str, row: Row) -> int:
        """One row through the strict `redeem` (eth_call): what it would pay, or a revert naming the exact error."""
        call = self.contract.functions.redeem(self.account.address, Web3.to_checksum_address(token), row)
        return int(call.call({"from": self.account.address}))

    def gas_limit(self, token: str, rows: list[Row]) -> int:
        estimate = int(self._batch(token, rows).estimate_gas({"from": self.account.address}))
        return estimate + estimate * GAS_MARGIN_PERCENT // 100

    def calldata(self, token: str, rows: list[Row]) -> bytes:
        encoded = self.contract.encode_abi("redeemBatch", args=[self.account.address,
                                                                Web3.to_checksum_address(token),
                                                                pack_redemption_rows(rows)])
        return bytes(HexBytes(encoded))

    def market(self) -> tuple[int, int]:
        """(base fee of the newest block, suggested priority fee), in wei."""
        base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
        return base_fee, int(self.w3.eth.max_priority_fee)

    def nonce(self, block: str) -> int:
        """The account's transaction count at `latest` (mined) or `pending` (including the node's pool)."""
        return int(self.w3.eth.get_transaction_count(self.account.address, block))  # type: ignore[arg-type]

    def sign(self, *, nonce: int, data: bytes, gas: int, fees: Fees) -> SignedSettlementTx:
        tx: dict[str, Any] = {
            "type": 2, "chainId": self.chain_id, "nonce": nonce, "to": self.contract.address, "value": 0,
            "data": data, "gas": gas, "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas}
        signed = self.account.sign_transaction(tx)
        return SignedSettlementTx(bytes(signed.hash), bytes(signed.raw_transaction), nonce, fees)

    def resign(self, raw: bytes, fees: Fees) -> SignedSettlementTx:
        """A replacement of the signed transaction `raw`: same nonce, recipient, calldata and gas; new fees."""
        previous = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
        return self.sign(nonce=int(previous["nonce"]), data=bytes(previous["data"]), gas=int(previous["gas"]),
                         fees=fees)

    def sent_terms(self, raw: bytes) -> dict[bytes, int]:
        """Channel id -> lane terms of each row in the signed `redeemBatch` transaction `raw`."""
        data = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()["data"]
        _function, arguments = self.contract.decode_function_input(HexBytes(data))
        return {channel_id: terms for channel_id, _amount, terms, _r, _vs in unpack_redemption_rows(arguments["rows"])}

    def broadcast(self, raw: bytes) -> None:
        """Hands the signed transaction to the node; a node that already has it counts as success."""
        try:
            self.w3.eth.send_raw_transaction(raw)
        except Exception as exc:
            if classify_exception(exc).reason != ALREADY_KNOWN:
                raise

    def receipt(self, tx_hash: bytes) -> Any | None:
        try:
            return self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return None

    def known(self, tx_hash: bytes) -> bool:
        """Whether the node has the transaction (in its pool or mined)."""
        try:
            self.w3.eth.get_transaction(HexBytes(tx_hash))
        except TransactionNotFound:
            return False
        return True

    def head(self) -> int:
        return int(self.w3.eth.block_number)
