"""`protocolbanks payer …`: a payer's answers to its channels' events, from a terminal (no Ape needed).

  protocolbanks payer status 0x<channel id>           deposit, redeemed, signer, caps, frozen/closing
  protocolbanks payer lift-freeze 0x<channel id>      the Sentinel's trip was your own spending: unfreeze
  protocolbanks payer confirm-freeze 0x<channel id>   it was not: revoke the session key for good
  protocolbanks payer set-guardian 0x<address>        name the relayer's guardian account as your Sentinel

The payer's key: an eth-account keystore (--key-file, passphrase from PB_PAYER_KEY_PASSPHRASE or a prompt) or,
for local development, PB_PAYER_PRIVATE_KEY.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from eth_account import Account
from eth_account.signers.local import LocalAccount
from protocolbanks.sdk.payer_channels import ChannelConfig, PayerChannels
from protocolbanks.sdk.transactions import ContractCallFailed
from web3 import Web3


def _load_key(key_file: Path | None) -> LocalAccount:
    try:
        if key_file is not None:
            passphrase = os.environ.get("PB_PAYER_KEY_PASSPHRASE")
            if passphrase is None:
                passphrase = click.prompt(f"passphrase for {key_file}", hide_input=True)
            account: LocalAccount = Account.from_key(Account.decrypt(json.loads(key_file.read_text()), passphrase))
            return account
        secret = os.environ.get("PB_PAYER_PRIVATE_KEY")
        if secret:
            local: LocalAccount = Account.from_key(secret)
            return local
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot load the payer key: {exc}") from exc
    raise click.ClickException("no payer key: pass --key-file (keystore) or set PB_PAYER_PRIVATE_KEY")


def _channel_id(value: str) -> bytes:
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise click.BadParameter(f"{value!r} is not a 32-byte hex channel id")
    return raw


@click.group()
@click.option("--rpc-url", envvar="PB_RPC_URL", default="http://127.0.0.1:8545", show_default=True,
              help="JSON-RPC endpoint (env PB_RPC_URL).")
@click.option("--contract", envvar="PB_CONTRACT", required=True,
              help="StreamChannels address (env PB_CONTRACT; see deployments/<network>.json).")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Payer keystore (passphrase: PB_PAYER_KEY_PASSPHRASE or prompt). Else PB_PAYER_PRIVATE_KEY.")
@click.pass_context
def payer(ctx: click.Context, rpc_url: str, contract: str, key_file: Path | None) -> None:
    """A payer's own channels: status, and the human answer to a Sentinel freeze (lift or confirm)."""
    if not Web3.is_address(contract):
        raise click.BadParameter(f"{contract!r} is not an address", param_hint="--contract")
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 15}))
    try:
        w3.eth.chain_id  # noqa: B018 - fail early with the URL in the message
    except Exception as exc:
        raise click.ClickException(f"cannot reach the RPC at {rpc_url}: {exc}") from exc
    ctx.obj = (w3, contract, key_file)


def _payer_channels(ctx: click.Context) -> PayerChannels:
    w3, contract, key_file = ctx.obj
    return PayerChannels(w3, contract, _load_key(key_file))


def _config(channels: PayerChannels, channel_id: bytes) -> ChannelConfig:
    config = channels.find_config(channel_id)
    if config is None:
        raise click.ClickException(f"no channel 0x{channel_id.hex()} on contract {channels.contract.address}")
    return config


def _act(what: str, action: Any) -> None:
    try:
        receipt = action()
    except ContractCallFailed as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{what}: tx 0x{bytes(receipt['transactionHash']).hex()} (block {receipt['blockNumber']}, "
               f"gas {receipt['gasUsed']})")


@payer.command()
@click.argument("channel_id")
@click.pass_context
def status(ctx: click.Context, channel_id: str) -> None:
    """Print a channel's state as JSON (amounts in token base units, times in unix seconds)."""
    w3, contract, _ = ctx.obj
    channels = PayerChannels(w3, contract, Account.create())  # reading needs no key
    config = _config(channels, _channel_id(channel_id))
    state = channels.state(config)
    shown = {k: (asdict(v) if k == "terms" else v) for k, v in state.__dict__.items()}
    click.echo(json.dumps({"channelId": channel_id, "payer": config.payer, "payee": config.payee,
                           "token": config.token, **shown}, indent=2, default=str))


@payer.command("lift-freeze")
@click.argument("channel_id")
@click.pass_context
def lift_freeze(ctx: click.Context, channel_id: str) -> None:
    """The Sentinel stopped your own spending: unfreeze the channel (the key works again until its expiry)."""
    channels = _payer_channels(ctx)
    config = _config(channels, _channel_id(channel_id))
    _act("freeze lifted", lambda: channels.lift_freeze(config))


@payer.command("confirm-freeze")
@click.argument("channel_id")
@click.pass_context
def confirm_freeze(ctx: click.Context, channel_id: str) -> None:
    """The Sentinel was right: revoke the session key for good (the deposit stays yours: grant a new key or
    close the channel)."""
    channels = _payer_channels(ctx)
    config = _config(channels, _channel_id(channel_id))
    _act("session key revoked", lambda: channels.confirm_freeze(config))


@payer.command("set-guardian")
@click.argument("guardian")
@click.pass_context
def set_guardian(ctx: click.Context, guardian: str) -> None:
    """Name GUARDIAN as the Sentinel that may freeze your channels.

    GUARDIAN is usually the merchant relayer's guardian account. It can only brake: only you lift a freeze."""
    if not Web3.is_address(guardian):
        raise click.BadParameter(f"{guardian!r} is not an address")
    channels = _payer_channels(ctx)
    _act("guardian set", lambda: channels.set_guardian(guardian))
