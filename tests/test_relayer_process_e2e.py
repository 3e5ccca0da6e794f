"""The relayer as a real process against anvil: follows the chain, accepts over HTTP, survives SIGKILL (also
mid-settlement, with its transaction sent but not mined).

Runs in the anvil pass of the suite (`make test-anvil`, part of `make test`); the in-process EVM has no RPC URL
for a second process to reach.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import UNIT
from eth_account import Account
from protocolbanks.devtools.thread_server import free_port
from protocolbanks.relayer import inspection
from protocolbanks.relayer.store import VoucherStore
from relayer_process import post, relayer_env, start_relayer, submission, wait_for
from web3.exceptions import TransactionNotFound

pytestmark = pytest.mark.skipif(os.environ.get("PB_ON_ANVIL") != "1", reason="needs anvil: make test-anvil")


def test_relayer_process__accepts_and_survives_sigkill(chain, channels, open_channel, payee, token, tmp_path):
    channel = open_channel(10 * UNIT)
    key = Account.create().key
    channel.grant(key, total_cap=5 * UNIT, max_per_payment=UNIT, now=chain.pending_timestamp)
    chain.mine()
    port = free_port()
    relayer = start_relayer(chain, channels, payee, tmp_path, port)
    try:
        deadline = time.time() + 10
        status, answer = post(port, submission(channel, key, UNIT // 2))
        while answer.get("reason") == "unknown_channel" and time.time() < deadline:  # the follower catches up
            time.sleep(0.2)
            status, answer = post(port, submission(channel, key, UNIT // 2))
        assert (status, answer["status"]) == (200, "accepted")
        assert post(port, submission(channel, key, 3 * UNIT))[1]["reason"] == "exceeds_max_per_payment"
        relayer.send_signal(signal.SIGKILL)  # no shutdown hook runs: only what was committed survives
        relayer.wait(timeout=10)
        relayer = start_relayer(chain, channels, payee, tmp_path, port)
        status, answer = post(port, submission(channel, key, UNIT // 2))
        while answer.get("reason") == "unknown_channel" and time.time() < deadline + 10:
            time.sleep(0.2)
            status, answer = post(port, submission(channel, key, UNIT // 2))
        assert answer["status"] == "duplicate"  # the acknowledged voucher is still there after SIGKILL
        before = token.balanceOf(payee)
        assert post(port, submission(channel, key, UNIT))[1]["payment"] == str(UNIT // 2)
        # 1 U unsettled reaches the threshold: the relayer settles it on-chain by itself.
        while channel.state().claimed < UNIT and time.time() < deadline + 30:
            time.sleep(0.2)
        assert channel.state().claimed == UNIT and token.balanceOf(payee) - before == UNIT
        # Below the threshold nothing moves by itself; the operator's manual settle does it at once.
        assert post(port, submission(channel, key, UNIT + UNIT // 4))[1]["status"] == "accepted"
    finally:
        relayer.kill()
        relayer.wait(timeout=10)
    env = relayer_env(chain, channels, payee, tmp_path, port)
    settled = subprocess.run([sys.executable, "-m", "protocolbanks.relayer.cli", "relayer", "settle"], env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert settled.returncode == 0, settled.stderr
    assert "1 channels" in settled.stdout and channel.state().claimed == UNIT + UNIT // 4


def settlements_in(tmp_path):
    store = VoucherStore(f"sqlite:///{tmp_path / 'relayer.db'}")
    try:
        return inspection.settlements(store)
    finally:
        store.close()


def test_relayer_process__sigkill_mid_settlement__restart_completes_it__paid_once(chain, channels, open_channel,
                                                                                  payee, token, tmp_path):
    """Killed after its settlement transaction went out, before it was mined (mining is off); the node then loses
    the transaction too. The restarted relayer finds it in its ledger and broadcasts the same signed bytes (same
    nonce, same hash); once mined, the payee has exactly what was accepted."""
    channel = open_channel(10 * UNIT)
    key = Account.create().key
    channel.grant(key, total_cap=5 * UNIT, now=chain.pending_timestamp)
    chain.mine()
    port = free_port()
    no_replacement = {"PB_RELAYER_SETTLEMENT__STUCK_AFTER_S": "600"}
    relayer = start_relayer(chain, channels, payee, tmp_path, port, **no_replacement)
    w3 = chain.provider.web3
    before = token.balanceOf(payee)
    try:
        wait_for(lambda: post(port, submission(channel, key, UNIT // 2))[1].get("reason") != "unknown_channel", 10,
                 "the chain follower to see the channel")
        chain.provider.auto_mine = False
        assert post(port, submission(channel, key, 2 * UNIT))[1]["status"] == "accepted"  # due: 2 U >= 1 U
        sent = wait_for(lambda: [s for s in settlements_in(tmp_path) if s["status"] == "sent"], 20,
                        "the settlement to be sent")[0]
        tx_hash = sent["txHash"]
        assert w3.eth.get_transaction(tx_hash)["blockNumber"] is None  # in the pool, not mined
        relayer.send_signal(signal.SIGKILL)
        relayer.wait(timeout=10)
        chain.provider.make_request("anvil_dropTransaction", [tx_hash])  # and the node forgets it
        with pytest.raises(TransactionNotFound):
            w3.eth.get_transaction(tx_hash)

        relayer = start_relayer(chain, channels, payee, tmp_path, port, **no_replacement)
        wait_for(lambda: _known(w3, tx_hash), 20, "the restarted relayer to broadcast the recorded transaction")
        chain.provider.auto_mine = True
        chain.mine()
        wait_for(lambda: [s for s in settlements_in(tmp_path) if s["status"] == "confirmed"], 20,
                 "the settlement to be confirmed")
    finally:
        chain.provider.auto_mine = True
        relayer.kill()
        relayer.wait(timeout=10)
    [settlement] = settlements_in(tmp_path)  # one settlement, one transaction: nothing was sent twice
    assert (settlement["status"], settlement["txHash"], settlement["nonce"]) == ("confirmed", tx_hash, sent["nonce"])
    assert [t["txHash"] for t in settlement["transactions"]] == [tx_hash]
    assert channel.state().claimed == 2 * UNIT and token.balanceOf(payee) - before == 2 * UNIT


def _known(w3, tx_hash):
    try:
        return w3.eth.get_transaction(tx_hash) is not None
    except TransactionNotFound:
        return False
