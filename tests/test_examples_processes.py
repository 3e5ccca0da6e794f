"""The examples as an integrator runs them: separate processes on anvil, configured only through the environment.
The faucet funds a payer; the relayer (`protocolbanks relayer run`) and merchant_fastapi.py run as servers;
agent_pays_per_request.py pays silently, asks for a settlement and the relayer redeems on-chain; the Django merchant
and the car rental (rider_metered.py) are paid the same way; payer_answers_a_freeze.py reads the channels back.

Anvil pass only (`make test-anvil`): the in-process EVM has no RPC URL for other processes.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import UNIT
from eth_account import Account
from protocolbanks.devtools.thread_server import free_port
from protocolbanks.sdk.payer_channels import PayerChannels
from relayer_process import start_relayer, wait_for

pytestmark = pytest.mark.skipif(os.environ.get("PB_ON_ANVIL") != "1", reason="needs anvil: make test-anvil")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example_env(chain, channels, token, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PB_")}
    env.update(PB_RPC_URL=chain.provider.uri, PB_CONTRACT=channels.address, PB_TOKEN=token.address, **settings)
    return env


def run_example(name: str, env: dict[str, str], *args: str, timeout: float = 120) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0 and "Traceback" not in done.stderr, (name, done.stdout, done.stderr)
    return done.stdout


class Server:
    """An example server as a process; `stop()` sends SIGINT (Ctrl-C) and expects a clean exit."""

    def __init__(self, name: str, env: dict[str, str], log: Path, probe: str = "/health") -> None:
        self.port = free_port()
        self.probe = probe
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process = subprocess.Popen([sys.executable, str(EXAMPLES / name)], env={**env, "PB_PORT": str(self.port)},
                                        stdout=subprocess.DEVNULL, stderr=open(log, "ab"))
        wait_for(self.ready, 30, f"{name} to serve")

    def ready(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(self.url + self.probe).is_success
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            assert self.process.wait(timeout=20) == 0, self.log.read_text()
        assert "Traceback" not in self.log.read_text(), self.log.read_text()


def test_examples_as_processes__pay__settle_on_chain__three_merchants(chain, channels, token, payee, accounts,
                                                                      deployer, tmp_path):
    payer = Account.create()
    deployer.transfer(payer.address, 10**18)
    faucet = example_env(chain, channels, token, PB_FAUCET_PRIVATE_KEY=deployer.private_key)
    funded = run_example("local_faucet.py", faucet, payer.address, "20")
    assert funded.strip() == f"{payer.address} now holds 20 U"
    relayer_port = free_port()
    relayer = start_relayer(chain, channels, payee, tmp_path, relayer_port)
    relayer_url = f"http://127.0.0.1:{relayer_port}"
    servers: list[Server] = []
    try:
        images = Server("merchant_fastapi.py", example_env(chain, channels, token, PB_PAYEE=payee.address,
                                                           PB_RELAYER_URL=relayer_url), tmp_path / "fastapi.log")
        servers.append(images)
        state = tmp_path / "payer-state"
        payer_env = example_env(chain, channels, token, PB_PAYER_PRIVATE_KEY=payer.key.hex(), PB_STATE_DIR=str(state),
                                PB_KEY_PASSPHRASE="change-me", PB_RELAYER_URL=relayer_url)
        out = run_example("agent_pays_per_request.py", {**payer_env, "PB_MERCHANT_URL": images.url}, "--images", "3")
        assert "the merchant asks 0.1 U per image" in out and "3 payments; remaining balance 4.7 U" in out, out
        assert "refused by the client's own budget guard: over_max_per_request" in out
        assert "settle: {'status': 'queued'" in out, out  # below the relayer's threshold: settled on request
        channel_id = bytes.fromhex(json.loads((state / "channels.json").read_text())[payee.address.lower()][2:])
        payer_chain = PayerChannels(chain.provider.web3, channels.address, payer)
        config = payer_chain.find_config(channel_id)
        wait_for(lambda: payer_chain.state(config).claimed == 3 * UNIT // 10, 60,
                 "the relayer to redeem the agent's vouchers on-chain")

        other = accounts[5]  # the Django merchant and the car rental are paid without a relayer
        django_shop = Server("merchant_django", example_env(chain, channels, token, PB_PAYEE=other.address,
                                                            PB_RELAYER_URL="off"), tmp_path / "django.log")
        servers.append(django_shop)
        unsettled = {**payer_env, "PB_RELAYER_URL": f"http://127.0.0.1:{free_port()}"}
        out = run_example("agent_pays_per_request.py", {**unsettled, "PB_MERCHANT_URL": django_shop.url},
                          "--images", "2")
        assert "2 payments; remaining balance 4.8 U" in out and "not settled" in out, out

        cars_env = example_env(chain, channels, token, PB_PAYEE=accounts[6].address, PB_RELAYER_URL="off",
                               PB_UNIT_SECONDS="2", PB_RATE_API_TOKEN="s3cret")
        cars = Server("merchant_rates.py", cars_env, tmp_path / "rates.log", probe="/rates")
        servers.append(cars)
        changed = run_example("merchant_rates.py", {**payer_env, "PB_MERCHANT_URL": cars.url,
                                                    "PB_RATE_API_TOKEN": "s3cret"}, "set", "rides", "surge", "2")
        assert changed.startswith("rides surge: 1 -> 2 from "), changed
        out = run_example("rider_metered.py", {**unsettled, "PB_MERCHANT_URL": cars.url}, "--seconds", "3")
        assert "unlocked: {'car': 'car-7', 'unlocked': True" in out and "  minute 1: paid " in out, out
        assert "ride over: 2 unit(s) billed" in out, out

        status = run_example("payer_answers_a_freeze.py", payer_env, "status")
        assert status.count(": open, signer ") == 3 and "FROZEN" not in status, status
        for server in servers:
            server.stop()
    finally:
        for server in servers:
            if server.process.poll() is None:
                server.process.kill()
        relayer.kill()
        relayer.wait(timeout=10)

