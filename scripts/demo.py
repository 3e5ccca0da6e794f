"""The end-to-end story on a local chain: deploy, open channels, subscribe session keys, stream vouchers,
batch-redeem them, and print what happened with the gas.

  ape run demo --network ethereum:local:foundry      (what `make demo` runs; anvil is started and stopped)
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand
from eth_account import Account
from protocolbanks.devtools.deploy import DeployPlan, deploy_contracts
from protocolbanks.sdk import ChannelDomain, LaneTerms, SessionKeyGrant, Voucher, channel_id_of
from protocolbanks.sdk.permit import sign_permit

UNIT = 10**6


def usd(amount: int) -> str:
    return f"{Decimal(amount) / UNIT:,.2f} U"


def permit_signature(token, owner, spender: str, value: int, deadline: int) -> tuple[int, bytes, bytes]:
    return sign_permit(owner.private_key, token_name="Mock USD Coin", chain_id=chain.chain_id, token=token.address,
                       spender=spender, value=value, nonce=token.nonces(owner), deadline=deadline)


@click.command(cls=ConnectedProviderCommand, short_help="Run the end-to-end demo on a local chain")
@click.option("--agents", type=click.IntRange(1, 8), default=8, show_default=True, help="AI agents paying.")
@click.option("--requests", type=click.IntRange(1, 10_000), default=25, show_default=True,
              help="Paid API requests per agent.")
@click.option("--price", type=click.IntRange(1, 10 * UNIT), default=UNIT // 10, show_default=True,
              help="Price per request in token base units (100000 = 0.1 U).")
def cli(ecosystem, network, agents, requests, price):
    """Deposit once, pay per request with signed vouchers, settle many customers in one transaction."""
    deployer, merchant = accounts.test_accounts[0], accounts.test_accounts[2]
    payers = [accounts.test_accounts[i] for i in (1, 3, 4, 5, 6, 7, 8, 9)][:agents]
    out = Path("deployments")
    record = deploy_contracts(DeployPlan(with_mock_token=True, out_dir=out), account=deployer,
                              ecosystem=ecosystem.name, network=network.name, log=lambda line: click.echo(f"  {line}"))
    channels = project.StreamChannels.at(record.address_of("StreamChannels"))
    token = project.MockUSDC.at(record.address_of("MockUSDC"))
    domain = ChannelDomain(chain.chain_id, channels.address)
    click.echo(f"\n1. Contracts on chain {chain.chain_id}: StreamChannels {channels.address}, MockUSDC {token.address}")

    deposit = 5 * UNIT
    gas: dict[str, int] = {}
    rows = []
    click.echo(f"2. {agents} AI agents each deposit {usd(deposit)} (EIP-2612 permit: no approval transaction) "
               "and subscribe a 24 h / 50 U session key with one off-chain signature")
    for n, payer in enumerate(payers):
        token.mint(payer, 100 * UNIT, sender=deployer)
        salt = chain.pending_timestamp.to_bytes(16, "big") + n.to_bytes(16, "big")
        deadline = chain.pending_timestamp + 600
        v, r, s = permit_signature(token, payer, channels.address, deposit, deadline)
        tx = channels.openWithPermit(merchant, token, salt, deposit, deadline, v, r, s, sender=payer)
        gas.setdefault("open channel (permit + deposit)", tx.gas_used)
        config = (payer.address, merchant.address, token.address, salt)
        cid = channel_id_of(*config)
        key = Account.create()
        now = chain.pending_timestamp
        grant = SessionKeyGrant(channel_id=cid, key=key.address, total_cap=50 * UNIT, period_cap=20 * UNIT,
                                period_length=3600, valid_until=now + 24 * 3600, max_per_payment=UNIT, epoch=1,
                                deadline=now + 600)
        tx = channels.grantSessionKeyBySig(config, key.address, grant.policy(), grant.deadline,
                                           grant.sign(domain, payer.private_key), sender=merchant)
        gas.setdefault("subscribe: grant key by signature (merchant pays)", tx.gas_used)
        terms = LaneTerms.unpack(channels.channelState(config).terms)
        cumulative = 0
        for _ in range(requests):  # each paid request: the key signs the next cumulative voucher, no chain step
            cumulative += price
            sig = Voucher(cid, terms.epoch, cumulative).sign(domain, key.key)
        rows.append((cid, cumulative, terms.pack(), sig.r, sig.vs))
        click.echo(f"   agent {n + 1} {payer.address[:10]}… channel {cid.hex()[:10]}… key {key.address[:10]}… "
                   f"signed {requests} vouchers, newest {usd(cumulative)}")

    payments = agents * requests
    click.echo(f"3. {payments} paid requests happened off-chain: {requests} per agent at {usd(price)} each")
    before = token.balanceOf(merchant)
    tx = channels.redeemBatch(merchant, token, rows, sender=merchant)
    received = token.balanceOf(merchant) - before
    gas[f"batch-redeem {agents} channels (one transfer)"] = tx.gas_used
    click.echo(f"4. The merchant settled all {agents} channels in one transaction {tx.txn_hash}: "
               f"received {usd(received)}")

    click.echo("\nGas (full transaction gasUsed on anvil):")
    for name, used in gas.items():
        click.echo(f"   {name:<52} {used:>10,}")
    click.echo(f"   {'gas per voucher in the batch':<52} {tx.gas_used // agents:>10,}")
    click.echo(f"   {'gas per paid request (settlement only)':<52} {tx.gas_used // payments:>10,}")
    click.echo(f"   {'an ERC-20 transfer per request would cost about':<52} {34_477:>10,}")
    assert received == agents * requests * price, "the merchant must receive exactly what was paid"
    click.echo("\nDone: every request was paid, no wallet pop-up, one settlement transaction.")
