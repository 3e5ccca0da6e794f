"""The whole story on a local chain: deploy; start the merchant's relayer; start a paid image API (0.1 U per image)
and a car-rental API (per minute, with a peak multiplier); an AI agent deposits 5 U, grants a 24 h / 50 U session
key and generates images silently; a rider rents a car; a runaway script spikes and the Sentinel freezes its key
and notifies; the relayer settles in batches; a summary of payments, settlements, gas and balances.

  ape run demo --network ethereum:local:foundry      (what `make demo` runs; anvil is started and stopped)

The story itself is `protocolbanks.devtools.demo_run.run_demo` (no Ape needed); this script deploys the
contracts with Ape and hands it the chain's URL, the addresses and the test accounts' keys.
"""

from __future__ import annotations

from pathlib import Path

import click
from ape import accounts, chain
from ape.cli import ConnectedProviderCommand
from protocolbanks.devtools.demo_config import DemoFailed, DemoSettings, DemoWorld, Narrator
from protocolbanks.devtools.demo_run import run_demo
from protocolbanks.devtools.demo_services import interrupt_on_signals
from protocolbanks.devtools.deploy import DeployPlan, deploy_contracts


@click.command(cls=ConnectedProviderCommand, short_help="Run the end-to-end demo on a local chain")
@click.option("--images", type=click.IntRange(1, 45), default=25, show_default=True,
              help="Images the AI agent generates (0.1 U each, from a 5 U deposit).")
@click.option("--ride-minutes", type=click.IntRange(2, 60), default=10, show_default=True,
              help="Demo minutes of the car ride (peak pricing starts half-way).")
@click.option("--minute-seconds", type=click.IntRange(1, 60), default=1, show_default=True,
              help="Seconds a demo minute lasts.")
def cli(ecosystem, network, images, ride_minutes, minute_seconds):
    """Agents and devices pay per request and per minute, silently; the relayer settles in batches."""
    say = Narrator(click.echo)
    test_accounts = accounts.test_accounts
    deployer, agent, merchant, guardian, rider, runaway = (test_accounts[i] for i in range(6))
    say(f"ProtocolBanks demo on local chain {chain.chain_id} ({chain.provider.uri})")
    record = deploy_contracts(DeployPlan(with_mock_token=True, out_dir=Path("deployments")), account=deployer,
                              ecosystem=ecosystem.name, network=network.name, log=lambda line: say(f"   {line}"))
    world = DemoWorld(rpc_url=chain.provider.uri, channels=record.address_of("StreamChannels"),
                      token=record.address_of("MockUSDC"), merchant_key=merchant.private_key,
                      guardian_key=guardian.private_key, agent_key=agent.private_key, rider_key=rider.private_key,
                      runaway_key=runaway.private_key)
    say(f"1. Contracts: StreamChannels {world.channels}, MockUSDC {world.token}")
    settings = DemoSettings(images=images, ride_minutes=ride_minutes, peak_from_minute=max(ride_minutes // 2, 1),
                            minute_seconds=minute_seconds)
    try:
        with interrupt_on_signals():
            report = run_demo(world, settings, say=say)
    except DemoFailed as exc:
        raise click.ClickException(f"the demo stopped: {exc}") from None
    except KeyboardInterrupt:
        click.echo("\ninterrupted: the relayer, the APIs and the listener were stopped", err=True)
        raise SystemExit(130) from None
    stopped = " and froze the runaway key on its own" if report.freezes else ""
    say(f"\nDone: {report.payments} payments were signed vouchers (no wallet pop-up, no transaction per request); "
        f"the relayer settled them in {len(report.settlements)} batch transactions{stopped}.")
