"""The relayer as a process while its RPC goes away and comes back: it refuses (503, retryable) once its view of
the chain is too old to trust, loses nothing it acknowledged, and settles once the RPC is back."""

import os
import urllib.parse

import pytest
from conftest import UNIT
from eth_account import Account
from local_servers import SwitchableTcpProxy, free_port
from relayer_process import health, post, relayer_env, spawn_relayer, submission, wait_for

pytestmark = pytest.mark.skipif(os.environ.get("PB_ON_ANVIL") != "1", reason="needs anvil: make test-anvil")


def test_rpc_outage__refuses_while_blind_then_recovers_and_settles(chain, channels, open_channel, payee, token,
                                                                   tmp_path):
    channel = open_channel(10 * UNIT)
    key = Account.create().key
    channel.grant(key, total_cap=5 * UNIT, now=chain.pending_timestamp)
    rpc = urllib.parse.urlparse(chain.provider.uri)
    proxy = SwitchableTcpProxy(rpc.hostname, rpc.port)
    port = free_port()
    env = relayer_env(chain, channels, payee, tmp_path, port, PB_RELAYER_RPC_URL=f"http://127.0.0.1:{proxy.port}",
                      PB_RELAYER_MAX_CHAIN_LAG_S="2", PB_RELAYER_SETTLEMENT__THRESHOLD=str(2 * UNIT))
    relayer = spawn_relayer(env, tmp_path)
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
    assert "Traceback" not in (tmp_path / "relayer.log").read_text()
