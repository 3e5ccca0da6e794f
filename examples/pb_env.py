"""Settings from the environment for the examples: clear errors instead of tracebacks, the chain, the addresses.

    PB_RPC_URL      the chain's JSON-RPC URL                      (default http://127.0.0.1:8545, a local anvil)
    PB_CONTRACT     the StreamChannels contract                   } default: read from the deployment record
    PB_TOKEN        the token merchants are paid in               } PB_DEPLOYMENT (deployments/ethereum-local.json)
    PB_DEPLOYMENT   the record `ape run deploy` wrote

Amounts are integers of token base units; the mock USDC of a local chain has 6 decimals (1 U = 1_000_000).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from protocolbanks.sdk.deployments import DeploymentError, DeploymentRecord
from protocolbanks.sdk.payer import WrongPassphrase, load_account_keystore
from protocolbanks.sdk.pricing import format_base_units, to_base_units
from web3 import Web3

DEFAULT_RPC_URL = "http://127.0.0.1:8545"
DEFAULT_RELAYER_URL = "http://127.0.0.1:8790"
DEFAULT_DEPLOYMENT = "deployments/ethereum-local.json"
DECIMALS = 6  # the mock USDC's; read a real token's with its decimals() call
UNIT = 10**DECIMALS


class SettingError(Exception):
    """A setting is missing or wrong; the message says which one and what to do. main() prints it, exits 2."""


def setting(name: str, default: str | None = None, *, what: str) -> str:
    """The environment variable `name`, else `default`; SettingError when neither is there."""
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if default is not None:
        return default
    raise SettingError(f"set {name}: {what}")


def address_setting(name: str, *, what: str, deployed_as: str | None = None) -> str:
    """An address from `name`, or (if `deployed_as`) from the deployment record; checksummed."""
    value = os.environ.get(name, "").strip()
    if not value and deployed_as is not None:
        record = Path(setting("PB_DEPLOYMENT", DEFAULT_DEPLOYMENT, what="the deployment record"))
        try:
            value = DeploymentRecord.load(record).address_of(deployed_as)
        except DeploymentError as exc:
            raise SettingError(f"set {name} ({what}) or deploy first: {exc} "
                               "(from the repository's root: ape run deploy --network ethereum:local:foundry)") from exc
    if not value:
        raise SettingError(f"set {name}: {what}")
    if not Web3.is_address(value):
        raise SettingError(f"{name}={value!r} is not an address ({what})")
    return Web3.to_checksum_address(value)


def connect(rpc_url: str, *contracts: str) -> Web3:
    """A web3 for `rpc_url`, checked: the node answers and every address in `contracts` holds code."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
    if not w3.is_connected():
        raise SettingError(f"cannot reach the chain at PB_RPC_URL={rpc_url} (is anvil running?)")
    for address in contracts:
        if not w3.eth.get_code(Web3.to_checksum_address(address)):
            raise SettingError(f"no contract at {address} on chain {w3.eth.chain_id}: deploy first "
                               "(ape run deploy --network ethereum:local:foundry) or fix the address")
    return w3


def payer_account(passphrase: str) -> LocalAccount:
    """The payer's own account: PB_PAYER_KEYSTORE (an eth-account keystore) or PB_PAYER_PRIVATE_KEY."""
    keystore = os.environ.get("PB_PAYER_KEYSTORE")
    if keystore:
        try:
            return load_account_keystore(keystore, os.environ.get("PB_PAYER_PASSPHRASE") or passphrase)
        except (OSError, WrongPassphrase) as exc:
            raise SettingError(f"PB_PAYER_KEYSTORE={keystore}: {exc}") from exc
    key = setting("PB_PAYER_PRIVATE_KEY", what="the payer's key (or PB_PAYER_KEYSTORE, a keystore file)")
    try:
        account: LocalAccount = Account.from_key(key)
    except ValueError as exc:
        raise SettingError("PB_PAYER_PRIVATE_KEY is not a private key") from exc
    return account


def u(amount: int) -> str:
    """Base units of the 6-decimal token as text: u(100_000) == "0.1"."""
    return format_base_units(amount, decimals=DECIMALS)


def units_of(text: str) -> int:
    """"0.5" U as base units, exactly (no float on the way; ValueError for more than 6 decimals)."""
    return to_base_units(text, decimals=DECIMALS)


def fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def port_setting(default: int) -> int:
    text = setting("PB_PORT", str(default), what="the port to listen on")
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise SettingError(f"PB_PORT={text!r} is not a port number")
    return int(text)
