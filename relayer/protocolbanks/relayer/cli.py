"""`protocolbanks relayer …`: run the relayer and inspect it.

  protocolbanks relayer run --config relayer.toml      start intake + chain follower (Ctrl-C to stop)
  protocolbanks relayer check-config --config relayer.toml
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
from aiohttp import web
from eth_account import Account
from eth_account.signers.local import LocalAccount
from protocolbanks.relayer import inspection, sentinel_wiring
from protocolbanks.relayer.chain_cache import ChainCache
from protocolbanks.relayer.config import RelayerConfig
from protocolbanks.relayer.http_api import build_app
from protocolbanks.relayer.intake import VoucherIntake
from protocolbanks.relayer.metrics import RelayerMetrics
from protocolbanks.relayer.payer_cli import payer
from protocolbanks.relayer.sentinel import SentinelGuard
from protocolbanks.relayer.sentinel.resolution import FreezeResolutionWatcher
from protocolbanks.relayer.sentinel.responder import SentinelResponder
from protocolbanks.relayer.sentinel.trip_feed import SentinelTripFeed
from protocolbanks.relayer.settlement_policy import SettlementPolicy
from protocolbanks.relayer.settler import Settler, settler_options
from protocolbanks.relayer.store import VoucherStore
from protocolbanks.relayer.store.voucher_store import StoreError
from protocolbanks.relayer.workers import WorkerSupervisor, worker_command, worker_index
from protocolbanks.sdk import ChannelDomain
from pydantic import ValidationError
from web3 import Web3

log = logging.getLogger("protocolbanks.relayer")
config_option = click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                             default=None, help="TOML file; PB_RELAYER_* environment variables override it.")


def load_payee_account(config: RelayerConfig) -> LocalAccount | None:
    """The payee's signing key for settlements, or None (then the relayer only accepts vouchers)."""
    try:
        if config.payee_key_file is not None:
            if not config.payee_key_passphrase:
                raise click.ClickException("set PB_RELAYER_PAYEE_KEY_PASSPHRASE to open the payee key file")
            keystore = json.loads(config.payee_key_file.read_text())
            secret = config.payee_key_passphrase.get_secret_value()
            account: LocalAccount = Account.from_key(Account.decrypt(keystore, secret))
            return account
        if config.payee_private_key:
            local: LocalAccount = Account.from_key(config.payee_private_key.get_secret_value())
            return local
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot load the payee key: {exc}") from exc
    return None


def periodically(name: str, work: Callable[[], object], interval_s: float):  # type: ignore[no-untyped-def]
    """An aiohttp cleanup context running blocking `work` off the event loop every `interval_s` seconds."""
    async def context(_app: web.Application):  # type: ignore[no-untyped-def]
        async def loop() -> None:
            while True:
                try:
                    await asyncio.get_running_loop().run_in_executor(None, work)
                except Exception as exc:
                    log.warning("%s failed: %s", name, exc)
                await asyncio.sleep(interval_s)
        task = asyncio.create_task(loop())
        yield
        task.cancel()
    return context


def load_config(path: Path | None) -> RelayerConfig:
    try:
        return RelayerConfig.load(path)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise click.ClickException(f"invalid configuration: {problems}") from exc
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read configuration: {exc}") from exc


@click.group()
def main() -> None:
    """ProtocolBanks command line."""


@main.group()
def relayer() -> None:
    """The relayer: accepts vouchers, watches spending, settles on-chain at thresholds."""


@relayer.command("check-config")
@config_option
def check_config(config_path: Path | None) -> None:
    """Validate the configuration and print it as the relayer will use it."""
    click.echo(load_config(config_path).model_dump_json(indent=2))


def open_store(config: RelayerConfig) -> VoucherStore:
    try:
        return VoucherStore(config.database_url)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc


@relayer.command("channels")
@config_option
@click.option("--pending", is_flag=True, help="Only channels with accepted money not yet redeemed.")
def channels_command(config_path: Path | None, pending: bool) -> None:
    """List channels: accepted, settled and unsettled amounts (base units), newest activity first."""
    click.echo(json.dumps(inspection.channels(open_store(load_config(config_path)), pending_only=pending), indent=2))


@relayer.command("settlements")
@config_option
@click.option("--failed", is_flag=True,
              help="Only failed settlements and those with rows the contract refused for good, with the errors.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
def settlements_command(config_path: Path | None, failed: bool, limit: int) -> None:
    """List settlements, newest first: status, every transaction (same-nonce replacements too), each row's outcome."""
    store = open_store(load_config(config_path))
    click.echo(json.dumps(inspection.settlements(store, failed_only=failed, limit=limit), indent=2))


@relayer.command("sentinel-events")
@config_option
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
def sentinel_events_command(config_path: Path | None, limit: int) -> None:
    """List Sentinel trips: which key, which rule, what was done."""
    click.echo(json.dumps(inspection.sentinel_events(open_store(load_config(config_path)), limit=limit), indent=2))


@relayer.command()
@config_option
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait for the settlements to be confirmed before returning.")
def settle(config_path: Path | None, wait: bool) -> None:
    """Settle every channel with unsettled money now, whatever the thresholds (one transaction per token)."""
    config = load_config(config_path)
    w3 = connect(config)
    account = load_payee_account(config)
    if account is None:
        raise click.ClickException("settling needs the payee key (payee_key_file or PB_RELAYER_PAYEE_PRIVATE_KEY)")
    store = open_store(config)
    cache = ChainCache(w3, config.contract, from_block=config.from_block, reorg_depth=config.reorg_depth)
    cache.poll()
    settler = Settler(w3, config.contract, account, store, cache.get,
                      SettlementPolicy(threshold=1, interval_ms=1, max_batch=config.settlement.max_batch),
                      **settler_options(config))
    sent = 0
    deadline = time.time() + 120
    while True:  # a round confirms what is in flight (an earlier run's too), broadcasts again, replaces a stuck
        for outcome in settler.run_round().sent:  # transaction, retries a failed attempt, then sends what is due
            sent += 1
            click.echo(f"settlement {outcome.settlement_id}: {outcome.channels} channels, tx {outcome.tx_hash}")
        if not (wait and settler.ledger.in_flight() and time.time() < deadline):
            break
        time.sleep(1)
    if not sent:
        click.echo("nothing to settle")
    if wait and settler.ledger.in_flight():
        raise click.ClickException("settlements sent but not confirmed within 2 minutes; see `settlements`")


def connect(config: RelayerConfig) -> Web3:
    """A web3 connection to the configured RPC, checked to serve the configured chain."""
    w3 = Web3(Web3.HTTPProvider(config.rpc_url, request_kwargs={"timeout": 10}))
    try:
        chain_id = w3.eth.chain_id
    except Exception as exc:  # any transport error: tell the operator which URL failed
        raise click.ClickException(f"cannot reach the RPC at {config.rpc_url}: {exc}") from exc
    if config.chain_id is not None and config.chain_id != chain_id:
        raise click.ClickException(f"the RPC serves chain {chain_id}, the configuration says {config.chain_id}")
    return w3


@relayer.command()
@config_option
def run(config_path: Path | None) -> None:
    """Start the voucher intake (HTTP), the chain follower, the Sentinel's responses and settlement."""
    logging.basicConfig(level=logging.INFO, format='{"level":"%(levelname)s","logger":"%(name)s","msg":"%(message)s"}')
    config = load_config(config_path)
    index = worker_index()
    if config.workers > 1 and index is None:
        connect(config)  # fail here, once, if the RPC is unreachable
        open_store(config).close()  # migrate the schema once, before the workers open the database together
        log.info("starting %s workers on %s:%s", config.workers, config.listen_host, config.listen_port)
        sys.exit(WorkerSupervisor(worker_command(), config.workers).run())
    leader = index in (None, 0)  # settles and records payers' decisions; every worker accepts vouchers
    w3 = connect(config)
    chain_id = w3.eth.chain_id
    store = open_store(config)
    cache = ChainCache(w3, config.contract, from_block=config.from_block, reorg_depth=config.reorg_depth)
    guardian: LocalAccount | None = (Account.from_key(config.guardian_private_key.get_secret_value())
                                     if config.guardian_private_key else None)
    metrics = RelayerMetrics()
    try:
        payer_notifiers = sentinel_wiring.notifiers(config)
    except ValueError as exc:
        raise click.ClickException(f"invalid notification settings: {exc}") from exc
    responder = SentinelResponder(store, w3=w3, contract_address=config.contract, guardian=guardian,
                                  notifiers=payer_notifiers,
                                  on_trip_counted=lambda reason: metrics.sentinel_trips.labels(reason).inc())
    sentinel = SentinelGuard(sentinel_wiring.sentinel_policy(config), on_trip=responder.enqueue)
    cache.hooks.append(FreezeResolutionWatcher(sentinel, store, record=leader))
    trip_feed = SentinelTripFeed(store, sentinel)
    trip_feed.poll()  # trips recorded before this start (or by other workers) refuse their keys here too
    intake = VoucherIntake(store, cache.get, ChannelDomain(chain_id, config.contract), payee=config.payee,
                           sentinel=sentinel, chain_lag=cache.seconds_behind, max_chain_lag_s=config.max_chain_lag_s)
    # read from the database: the settler moves "settled" there, not in the intake's memory
    metrics.set_unsettled_source(lambda: sum(p.unsettled for p in store.progress(unsettled_only=True).values()))
    app = build_app(intake, metrics)

    interval = config.poll_interval_ms / 1000
    app.cleanup_ctx.append(periodically("chain poll", cache.poll, interval))
    app.cleanup_ctx.append(periodically("sentinel response", responder.handle_pending, interval))
    app.cleanup_ctx.append(periodically("sentinel trip feed", trip_feed.poll, interval))
    account = load_payee_account(config) if leader else None
    if not leader:
        log.info("worker %s: accepting vouchers; worker 0 settles", index)
    elif account is not None:
        if account.address.lower() != config.payee.lower():
            raise click.ClickException(f"the payee key is for {account.address}, the configuration names "
                                       f"{config.payee}")
        settler = Settler(w3, config.contract, account, store, cache.get,
                          SettlementPolicy(threshold=config.settlement.threshold,
                                           interval_ms=config.settlement.interval_s * 1000,
                                           max_batch=config.settlement.max_batch),
                          metrics=metrics, **settler_options(config))
        # A failed round backs off and is retried; cumulative vouchers make re-sending harmless.
        app.cleanup_ctx.append(periodically("settlement round", settler.run_round, interval))
    else:
        log.warning("no payee key configured: accepting vouchers, not settling")
    try:
        cache.poll()  # serve with a current view of the chain from the first request on
    except Exception as exc:
        raise click.ClickException(f"cannot read the contract's events from {config.rpc_url}: {exc}") from exc
    log.info("relayer for payee %s on chain %s listening on %s:%s", config.payee, chain_id, config.listen_host,
             config.listen_port)
    web.run_app(app, host=config.listen_host, port=config.listen_port, access_log=None, print=None,
                reuse_port=config.workers > 1)


main.add_command(payer)


if __name__ == "__main__":
    sys.exit(main())
