"""Deploy (or reuse) the ProtocolBanks contracts and record them under deployments/.

Examples:
  ape run deploy --network ethereum:local:foundry            # local anvil, also deploys a mock USDC
  ape run deploy --network ethereum:sepolia:node --account deployer --redeem-window 3600 --dry-run

Re-running is idempotent: a contract already recorded for this chain, with code at its address, the same
constructor arguments and the same build (creation bytecode hash), is reused; otherwise the script says why and
deploys it afresh. `--dry-run` prints what would be deployed and writes nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
from ape.cli import ConnectedProviderCommand, account_option
from protocolbanks.devtools.deploy import DeployPlan, deploy_contracts

logger = logging.getLogger("protocolbanks.deploy")


@click.command(cls=ConnectedProviderCommand, short_help="Deploy or reuse the ProtocolBanks contracts")
@account_option()
@click.option("--redeem-window", type=click.IntRange(1, 30 * 24 * 3600), default=3600, show_default=True,
              help="Seconds a payee keeps to redeem after a close request, freeze, revoke or rotation.")
@click.option("--mock-token/--no-mock-token", default=None,
              help="Also deploy the 6-decimal MockUSDC test token (default: only on local networks).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("deployments"),
              show_default=True, help="Folder for the deployment record.")
@click.option("--dry-run", is_flag=True, help="Show what would be deployed; send nothing, write nothing.")
def cli(ecosystem, network, provider, account, redeem_window, mock_token, out_dir, dry_run):
    """Deploy StreamChannels (and, on local chains, MockUSDC); write deployments/<ecosystem>-<network>.json."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with_mock = network.name in ("local", "development") if mock_token is None else mock_token
    plan = DeployPlan(redeem_window=redeem_window, with_mock_token=with_mock, out_dir=out_dir, dry_run=dry_run)
    record = deploy_contracts(plan, account=account, ecosystem=ecosystem.name, network=network.name,
                              log=click.echo)
    for name, entry in sorted(record.contracts.items()):
        click.echo(f"{name}: {entry.address}")
