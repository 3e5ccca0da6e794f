"""What a mined `redeemBatch` did, read from its receipt: which channels it redeemed and which rows it skipped.

`VouchersRedeemed` lists, per row that moved money, the channel and its new redeemed amount (zero for rows that
moved nothing); `RedemptionSkipped(channelId, reason)` names each refused row with its error selector. A row in
neither moved nothing without an error: its voucher was already redeemed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocolbanks.sdk.redeemed_rows import decode_redeemed_rows
from web3.contract import Contract
from web3.logs import DISCARD


@dataclass(frozen=True)
class RedemptionReport:
    total: int  # base units paid to the payee by this transaction
    redeemed: dict[bytes, int]  # channel id -> its redeemed amount after the transaction
    skipped: dict[bytes, bytes]  # channel id -> 4-byte error selector of the refused row


def read_redemptions(contract: Contract, receipt: Any) -> RedemptionReport:
    """The contract's redemption events in `receipt` (logs of other contracts, e.g. the token's, are ignored)."""
    total = 0
    redeemed: dict[bytes, int] = {}
    skipped: dict[bytes, bytes] = {}
    ours = contract.address.lower()
    for event in contract.events.VouchersRedeemed().process_receipt(receipt, errors=DISCARD):
        if str(event["address"]).lower() != ours:
            continue
        total += int(event["args"]["total"])
        for channel_id, amount in decode_redeemed_rows(event["args"]["redeemed"]):
            redeemed[channel_id] = amount
    for event in contract.events.RedemptionSkipped().process_receipt(receipt, errors=DISCARD):
        if str(event["address"]).lower() == ours:
            skipped[bytes(event["args"]["channelId"])] = bytes(event["args"]["reason"])
    return RedemptionReport(total, redeemed, skipped)
