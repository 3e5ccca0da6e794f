"""Test money on a local chain: mints the mock USDC (anyone may mint it) to an address. Local chains only.

    python examples/local_faucet.py 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 100      # 100 U to anvil's account 1

Settings: PB_RPC_URL, PB_TOKEN (default: MockUSDC from the deployment record), PB_FAUCET_PRIVATE_KEY (who sends the
mint transaction; default: anvil's first well-known test account, which holds ether on a fresh anvil).
"""

from __future__ import annotations

import argparse
import sys

from eth_account import Account
from pb_env import DEFAULT_RPC_URL, SettingError, address_setting, connect, fail, setting, u, units_of
from protocolbanks.sdk.erc20 import erc20
from protocolbanks.sdk.transactions import ContractCallFailed, TransactionSender
from web3 import Web3

ANVIL_ACCOUNT_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # public test key
LOCAL_CHAINS = {31337, 1337}
MINT_ABI = [{"type": "function", "name": "mint", "stateMutability": "nonpayable", "outputs": [],
             "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}]}]


def mint(w3: Web3, token: str, to: str, amount: int, sender_key: str) -> int:
    """Mints `amount` base units to `to`; returns its new balance."""
    contract = w3.eth.contract(address=Web3.to_checksum_address(token), abi=MINT_ABI)
    TransactionSender(w3, Account.from_key(sender_key)).send("mint", contract.functions.mint(
        Web3.to_checksum_address(to), amount))
    balance: int = erc20(w3, token).functions.balanceOf(Web3.to_checksum_address(to)).call()
    return balance


def main() -> int:
    parser = argparse.ArgumentParser(description="Mint mock USDC on a local chain.")
    parser.add_argument("to", help="the address to fund")
    parser.add_argument("amount", nargs="?", default="100", help="whole tokens (default 100)")
    options = parser.parse_args()
    try:
        if not Web3.is_address(options.to):
            raise SettingError(f"{options.to!r} is not an address")
        token = address_setting("PB_TOKEN", what="the mock token", deployed_as="MockUSDC")
        w3 = connect(setting("PB_RPC_URL", DEFAULT_RPC_URL, what="the chain's JSON-RPC URL"), token)
        if w3.eth.chain_id not in LOCAL_CHAINS:
            raise SettingError(f"chain {w3.eth.chain_id} is not a local chain: this faucet is for anvil only")
        balance = mint(w3, token, options.to, units_of(options.amount),
                       setting("PB_FAUCET_PRIVATE_KEY", ANVIL_ACCOUNT_0, what="the key sending the mint"))
    except SettingError as exc:
        return fail(str(exc), 2)
    except (ContractCallFailed, ValueError) as exc:
        return fail(str(exc))
    print(f"{options.to} now holds {u(balance)} U")
    return 0


if __name__ == "__main__":
    sys.exit(main())
