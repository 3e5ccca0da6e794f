"""The README's main command (`make demo`, `protocolbanks.devtools.demo_run.run_demo`) end to end with small
numbers, on the anvil of the test session: the relayer as a real process, two paid APIs on loopback, three payers,
a Sentinel freeze with its webhook, batch settlements; the summary's facts checked against the chain.

Runs in the anvil pass (`make test-anvil`): the relayer process needs an RPC URL. It reuses the session's anvil
and contracts (no second Ape-managed anvil).
"""

import os
import re
import threading
from decimal import Decimal

import pytest
from conftest import UNIT
from protocolbanks.devtools.demo_config import DemoSettings, DemoWorld
from protocolbanks.devtools.demo_merchant import IMAGES, RIDES
from protocolbanks.devtools.demo_run import run_demo

pytestmark = pytest.mark.skipif(os.environ.get("PB_ON_ANVIL") != "1", reason="needs anvil: make test-anvil")

SETTINGS = DemoSettings(images=6, ride_minutes=4, peak_from_minute=2, settle_threshold=UNIT // 2,
                        runaway_max_requests=12, fast_key_encryption=True)


def test_demo_story__payments_freeze_settlements_balances(chain, accounts, channels, token, payee, guardian):
    world = DemoWorld(rpc_url=chain.provider.uri, channels=channels.address, token=token.address,
                      merchant_key=payee.private_key, guardian_key=guardian.private_key,
                      agent_key=accounts[5].private_key, rider_key=accounts[7].private_key,
                      runaway_key=accounts[8].private_key)
    merchant_before = token.balanceOf(payee)
    lines: list[str] = []
    report = run_demo(world, SETTINGS, say=lambda line: (lines.append(line), print(line)))  # shown on a failure
    w3 = chain.provider.web3

    services = {line.service: line for line in report.services}
    assert set(services) == {IMAGES, RIDES}
    payers = {line.name: line for line in report.payers}
    image_price = int(Decimal(SETTINGS.image_price) * UNIT)
    assert payers["agent"].accepted == SETTINGS.images * image_price == payers["agent"].settled
    # every demo minute was paid, and the minutes after the merchant's rate change at the peak price
    base = SETTINGS.ride_minutes * SETTINGS.ride_price
    assert base < services[RIDES].amount == payers["rider"].accepted <= base * 3 // 2
    assert payers["rider"].settled == payers["rider"].accepted
    assert services[IMAGES].payments >= SETTINGS.images + 2  # the agent's and at least two of the runaway's

    [freeze] = report.freezes  # the runaway tripped the Sentinel; the ordinary agent and the rider did not
    assert (freeze.payer_name, freeze.reason, freeze.notified) == ("runaway", "sentinel_spike", True)
    assert w3.eth.get_transaction_receipt(freeze.freeze_tx)["status"] == 1
    # its later requests were refused by the gateway: held after the relayer's Sentinel refusal, then frozen
    assert {"pb_sentinel_hold", "channel_frozen"} & set(payers["runaway"].refusals)
    assert payers["runaway"].settled < payers["runaway"].accepted <= SETTINGS.runaway_deposit

    assert report.settlements and report.payments_settled > 0
    for settlement in report.settlements:
        receipt = w3.eth.get_transaction_receipt(settlement.tx_hash)
        assert receipt["status"] == 1 and receipt["gasUsed"] == settlement.gas_used > 0
    assert report.payments_settled + report.not_settled_payments == report.payments
    assert report.accepted - report.not_settled == report.settled == sum(p.settled for p in report.payers)
    assert report.merchant_received == report.settled == token.balanceOf(payee) - merchant_before
    for payer in report.payers:
        assert payer.left == payer.deposit - payer.settled
    assert "SUMMARY" in lines and any("gas per payment" in line for line in lines)

    # one process tree, stopped: the relayer process is gone, no server or gateway thread is left
    [pid] = [int(m.group(1)) for line in lines if (m := re.search(r"relayer started .*\(pid (\d+)\)", line, re.I))]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    leftovers = [t.name for t in threading.enumerate()
                 if t.name.startswith(("pb-demo", "pb-relayer-forwarder", "pb-chain-follower", "pb-metered"))]
    assert leftovers == []
