"""Where a transaction's gas goes, measured from the node's opcode trace (`debug_traceTransaction`).

The parts add up to the receipt's `gasUsed` exactly: the last part ("execution") is what is left once the named
ones are taken out — stack and memory operations, jumps, ABI decoding, the loop.
"""

from __future__ import annotations

from typing import Any

PRECOMPILE_CALLS = ("STATICCALL", "CALL")


def _calldata_gas(data: bytes) -> int:
    zeros = data.count(0)
    return 4 * zeros + 16 * (len(data) - zeros)


def breakdown(w3: Any, tx_hash: Any) -> dict[str, int]:
    """The transaction's gas by part: base, calldata, signature recovery (precompile calls made by the contract
    itself), storage reads and writes, hashing, events, calls into other contracts (the token transfer), and the
    rest of the contract's execution."""
    tx = w3.eth.get_transaction(tx_hash)
    used = int(w3.eth.get_transaction_receipt(tx_hash)["gasUsed"])
    trace = w3.provider.make_request("debug_traceTransaction", [tx_hash, {
        "disableStorage": True, "disableMemory": True, "disableStack": True}])
    steps = trace["result"]["structLogs"]
    parts = {"base": 21_000, "calldata": _calldata_gas(bytes(tx["input"])), "signature recovery": 0,
             "storage (SLOAD, SSTORE)": 0, "hashing (KECCAK256)": 0, "events (LOG)": 0, "token calls": 0}
    for index, step in enumerate(steps):
        if step["depth"] != 1:
            continue
        op = step["op"]
        if op in PRECOMPILE_CALLS:
            after = next(s for s in steps[index + 1:] if s["depth"] == 1)  # first step back in this frame
            cost = int(step["gas"]) - int(after["gas"])
            is_precompile = steps[index + 1]["depth"] == 1  # a precompile opens no frame in the trace
            parts["signature recovery" if is_precompile else "token calls"] += cost
        elif op in ("SLOAD", "SSTORE"):
            parts["storage (SLOAD, SSTORE)"] += int(step["gasCost"])
        elif op == "KECCAK256":
            parts["hashing (KECCAK256)"] += int(step["gasCost"])
        elif op.startswith("LOG"):
            parts["events (LOG)"] += int(step["gasCost"])
    parts["execution (stack, memory, jumps, ABI)"] = used - sum(parts.values())
    return parts
