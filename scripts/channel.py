"""Everyday channel operations for integrators, against the contracts recorded in deployments/.

  ape run channel mint --network ethereum:local:foundry --account payer --to 0x… --amount 100000000   # mock only
  ape run channel open --network ethereum:local:foundry --account payer --payee 0x… --amount 5000000
  ape run channel grant --network … --account payer --salt 0x… --payee 0x… --key-file agent.key.json \\
      --total-cap 50000000 --period-cap 20000000 --period 3600 --valid-for 86400 --max-per-payment 1000000
  ape run channel status --network … --payer 0x… --payee 0x… --salt 0x…
  ape run channel voucher --network … --payer 0x… --payee 0x… --salt 0x… --key-file agent.key.json \\
      --amount 2500000 --out voucher.json
  ape run channel redeem --network … --account merchant --payee 0x… voucher.json [more.json …]

Amounts are token base units (5000000 = 5 U of a 6-decimal token). Key files are eth-account keystores
(scrypt-encrypted); their passphrase comes from $PB_KEY_PASSPHRASE. Contract addresses come from the deployment
record in deployments/ (or $PB_DEPLOYMENTS_DIR). Each command connects to the network given; on a local chain,
start anvil first (`anvil` in another terminal) so the commands share one chain — otherwise ape-foundry starts a
fresh anvil for each command and stops it afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path

import click
from ape import chain, project
from ape.cli import ConnectedProviderCommand, account_option
from ape.exceptions import ContractLogicError
from eth_account import Account
from protocolbanks.sdk import ChannelDomain, LaneTerms, Voucher, channel_id_of, pack_redemption_rows
from protocolbanks.sdk.contract_errors import decode_revert
from protocolbanks.sdk.deployments import DeploymentError, DeploymentRecord
from protocolbanks.sdk.transactions import revert_data
from protocolbanks.sdk.vouchers_file import SignedVoucher, VoucherFormatError

address = click.STRING
amount_option = click.option("--amount", type=click.IntRange(min=1), required=True, help="Token base units.")


def contracts(ecosystem, network):
    directory = Path(os.environ.get("PB_DEPLOYMENTS_DIR", "deployments"))
    path = DeploymentRecord.path_for(directory, ecosystem.name, network.name)
    try:
        record = DeploymentRecord.load(path)
    except DeploymentError as exc:
        raise click.ClickException(str(exc)) from exc
    channels = project.StreamChannels.at(record.address_of("StreamChannels"))
    token = record.contracts.get("MockUSDC")
    return channels, (token.address if token else None)


@contextlib.contextmanager
def named_reverts():
    """Turns a contract revert into a one-line error naming the custom error and its arguments."""
    try:
        yield
    except ContractLogicError as exc:
        data = revert_data(exc)
        decoded = decode_revert(data) if data else None
        raise click.ClickException(f"the contract refused: {decoded or type(exc).__name__ + ': ' + str(exc)}") \
            from exc


def passphrase() -> str:
    value = os.environ.get("PB_KEY_PASSPHRASE")
    if not value:
        raise click.ClickException("set PB_KEY_PASSPHRASE to the session key file's passphrase")
    return value


def load_key(path: Path) -> bytes:
    try:
        return bytes(Account.decrypt(json.loads(path.read_text()), passphrase()))
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot open key file {path}: {exc}") from exc


def salt_bytes(value: str) -> bytes:
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError as exc:
        raise click.BadParameter("salt must be hex") from exc
    if len(raw) > 32:
        raise click.BadParameter("salt is at most 32 bytes")
    return raw.rjust(32, b"\x00")


@click.group()
def cli():
    """Open channels, grant session keys, sign and redeem vouchers, inspect state."""


def reverts_named(command):
    """Decorator: every revert inside the command becomes a clear one-line error (exit code 1)."""
    import functools

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        with named_reverts():
            return command(*args, **kwargs)

    return wrapper


@cli.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--to", "recipient", type=address, required=True)
@amount_option
@reverts_named
def mint(ecosystem, network, account, recipient, amount):
    """Mint AMOUNT of the recorded MockUSDC to TO (a local or test chain's mock token: anyone may mint it)."""
    _, mock = contracts(ecosystem, network)
    if mock is None:
        raise click.ClickException("no MockUSDC is recorded for this network: only a mock token can be minted")
    project.MockUSDC.at(mock).mint(recipient, amount, sender=account)
    click.echo(f"minted {amount} base units of {mock} to {recipient}")


@cli.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--payee", type=address, required=True)
@click.option("--token", type=address, default=None, help="ERC-20 to deposit (default: the recorded MockUSDC).")
@amount_option
@click.option("--salt", default=None, help="Hex salt (default: random); needed later to name the channel.")
@reverts_named
def open(ecosystem, network, account, payee, token, amount, salt):
    """Open a channel from ACCOUNT to PAYEE with AMOUNT deposited (approves the exact amount first)."""
    channels, mock = contracts(ecosystem, network)
    token = token or mock
    if token is None:
        raise click.ClickException("no --token given and no MockUSDC recorded for this network")
    salt_value = salt_bytes(salt) if salt else secrets.token_bytes(32)
    erc20 = project.MockUSDC.at(token)
    erc20.approve(channels, amount, sender=account)
    tx = channels.open(payee, token, salt_value, amount, sender=account)
    event = tx.decode_logs(channels.ChannelOpened)[0]
    click.echo(f"channel {event.channelId.hex()} opened with {event.deposit} base units; salt 0x{salt_value.hex()}")


@cli.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--payee", type=address, required=True)
@click.option("--token", type=address, default=None)
@click.option("--salt", required=True)
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Keystore to create (new key) or reuse.")
@click.option("--total-cap", type=click.IntRange(min=1), required=True)
@click.option("--period-cap", type=click.IntRange(min=0), default=0)
@click.option("--period", "period_length", type=click.IntRange(min=0), default=0, help="Seconds; 0 = none.")
@click.option("--valid-for", type=click.IntRange(min=1), default=86_400, show_default=True, help="Seconds.")
@click.option("--max-per-payment", type=click.IntRange(min=0), default=0)
@reverts_named
def grant(ecosystem, network, account, payee, token, salt, key_file, total_cap, period_cap, period_length,
          valid_for, max_per_payment):
    """Grant (or rotate to) a session key on the channel; creates the encrypted key file if it is missing."""
    channels, mock = contracts(ecosystem, network)
    if key_file.exists():
        key = Account.from_key(load_key(key_file))
    else:
        key = Account.create()
        key_file.write_text(json.dumps(Account.encrypt(key.key, passphrase())))
        key_file.chmod(0o600)
    config = (account.address, payee, token or mock, salt_bytes(salt))
    policy = (total_cap, period_cap, period_length, chain.pending_timestamp + valid_for, max_per_payment)
    channels.grantSessionKey(config, key.address, policy, sender=account)
    click.echo(f"session key {key.address} granted; keystore {key_file}")


@cli.command(cls=ConnectedProviderCommand)
@click.option("--payer", type=address, required=True)
@click.option("--payee", type=address, required=True)
@click.option("--token", type=address, default=None)
@click.option("--salt", required=True)
@reverts_named
def status(ecosystem, network, payer, payee, token, salt):
    """Show a channel's state: signer, caps, deposit, redeemed, remaining."""
    channels, mock = contracts(ecosystem, network)
    state = channels.channelState((payer, payee, token or mock, salt_bytes(salt)))
    terms = LaneTerms.unpack(state.terms)
    click.echo(json.dumps({
        "open": state.open, "closing": state.closing, "frozen": state.frozen, "signer": state.signer,
        "deposit": str(state.deposit), "claimed": str(state.claimed), "remaining": str(state.remaining),
        "periodSpent": str(state.periodSpent), "maxPerPayment": str(state.maxPerPayment),
        "terms": {"ceiling": str(terms.ceiling), "periodCap": str(terms.period_cap),
                  "periodLength": terms.period_length, "validUntil": terms.valid_until, "epoch": terms.epoch},
    }, indent=2))


@cli.command(cls=ConnectedProviderCommand)
@click.option("--payer", type=address, required=True)
@click.option("--payee", type=address, required=True)
@click.option("--token", type=address, default=None)
@click.option("--salt", required=True)
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@amount_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@reverts_named
def voucher(ecosystem, network, payer, payee, token, salt, key_file, amount, out):
    """Sign a cumulative voucher for AMOUNT (total so far) with the session key, into a JSON file."""
    channels, mock = contracts(ecosystem, network)
    config = (payer, payee, token or mock, salt_bytes(salt))
    terms = LaneTerms.unpack(channels.channelState(config).terms)
    cid = channel_id_of(*config)
    signature = Voucher(cid, terms.epoch, amount).sign(ChannelDomain(chain.chain_id, channels.address),
                                                         load_key(key_file))
    out.write_text(SignedVoucher(cid, amount, terms, signature).to_json())
    click.echo(f"voucher for {amount} base units written to {out}")


@cli.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--payee", type=address, required=True)
@click.option("--token", type=address, default=None)
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@reverts_named
def redeem(ecosystem, network, account, payee, token, files):
    """Redeem voucher FILES for PAYEE in one transaction (rows that fail are skipped and reported)."""
    channels, mock = contracts(ecosystem, network)
    try:
        rows = pack_redemption_rows(SignedVoucher.from_json(path.read_text()).redemption() for path in files)
    except (VoucherFormatError, ValueError) as exc:  # a malformed file, or an amount no channel can hold
        raise click.ClickException(str(exc)) from exc
    tx = channels.redeemBatch(payee, token or mock, rows, sender=account)
    total = tx.decode_logs(channels.VouchersRedeemed)[0].total
    for skipped in tx.decode_logs(channels.RedemptionSkipped):
        reason = bytes(skipped.reason)
        named = decode_revert(reason)
        click.echo(f"skipped {skipped.channelId.hex()}: {named.name if named else '0x' + reason.hex()}")
    click.echo(f"redeemed {total} base units in {tx.txn_hash} (gas {tx.gas_used:,})")
