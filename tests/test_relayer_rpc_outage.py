"""The relayer as a process while its RPC goes away and comes back: it refuses (503, retryable) once its view of
the chain is too old to trust, loses nothing it acknowledged, and settles once the RPC is back."""

import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from conftest import UNIT
from eth_account import Account
from local_servers import SwitchableTcpProxy, free_port
from test_relayer_process_e2e import post, submission

pytestmark = pytest.mark.skipif(os.environ.get("PB_ON_ANVIL") != "1", reason="needs anvil: make test-anvil")


def health(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def wait_for(predicate, timeout_s, what):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_rpc_outage__refuses_while_blind_then_recovers_and_settles(chain, channels, open_channel, payee, token,
                                                                   tmp_path):
    channel = open_channel(10 * UNIT)
    key = Account.create().key
    channel.grant(key, total_cap=5 * UNIT, now=chain.pending_timestamp)
    rpc = urllib.parse.urlparse(chain.provider.uri)
    proxy = SwitchableTcpProxy(rpc.hostname, rpc.port)
    port = free_port()
    env = dict(os.environ, PB_RELAYER_RPC_URL=f"http://127.0.0.1:{proxy.port}", PB_RELAYER_CONTRACT=channels.address,
               PB_RELAYER_PAYEE=payee.address, PB_RELAYER_DATABASE_URL=f"sqlite:///{tmp_path / 'relayer.db'}",
               PB_RELAYER_LISTEN_PORT=str(port), PB_RELAYER_POLL_INTERVAL_MS="100", PB_RELAYER_MAX_CHAIN_LAG_S="2",
               PB_RELAYER_PAYEE_PRIVATE_KEY=payee.private_key, PB_RELAYER_SETTLEMENT__THRESHOLD=str(2 * UNIT),
               PB_RELAYER_SETTLEMENT__CONFIRMATIONS="0")
    log = open(tmp_path / "relayer.log", "ab")
    relayer = subprocess.Popen([sys.executable, "-m", "protocolbanks.relayer.cli", "relayer", "run"], env=env,
                               stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_for(lambda: health(port) == 200, 20, "the relayer to start")
        assert post(port, submission(channel, key, UNIT))[1]["status"] == "accepted"
        before = token.balanceOf(payee)

        proxy.down()
        wait_for(lambda: health(port) == 503, 10, "the relayer to notice the outage")
        status, answer = post(port, submission(channel, key, 2 * UNIT))
        assert (status, answer["reason"]) == (503, "chain_unavailable")  # retryable, nothing acknowledged
        assert relayer.poll() is None  # still running

        proxy.up()
        wait_for(lambda: health(port) == 200, 20, "the relayer to recover")
        status, answer = post(port, submission(channel, key, 2 * UNIT + UNIT // 2))
        assert (status, answer["payment"]) == (200, str(UNIT + UNIT // 2))  # over the 1 U acknowledged before
        wait_for(lambda: channel.state().claimed == 2 * UNIT + UNIT // 2, 30, "the threshold settlement")
        assert token.balanceOf(payee) - before == 2 * UNIT + UNIT // 2  # paid once, exactly what was accepted
    finally:
        relayer.kill()
        relayer.wait(timeout=10)
        proxy.down()
        log.close()
    assert "Traceback" not in (tmp_path / "relayer.log").read_text()
