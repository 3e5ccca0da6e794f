"""examples/ stays honest: every program is small, documented, compiles, imports without side effects and explains a
missing setting without a traceback; and the examples really pay each other on the in-process chain — the FastAPI
and Flask merchants charge the agent, the car rental charges the rider per minute after a rate change, the payer
answers a freeze. The Django merchant is checked in a subprocess (Django's settings are per process); the examples
as processes against a relayer on anvil: tests/test_examples_processes.py."""

import ast
import importlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from conftest import UNIT
from eth_account import Account
from gateway_harness import serve_asgi, serve_wsgi
from local_servers import send_json
from protocolbanks.devtools.thread_server import serve_in_thread
from protocolbanks.sdk.payer import FAST_TEST_KDF, BudgetPolicy
from protocolbanks.sdk.payer_channels import PayerChannels
from protocolbanks.sdk.x402.wire import VoucherPayload

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))
PROGRAMS = ["agent_pays_per_request", "local_faucet", "merchant_fastapi", "merchant_flask", "merchant_rates",
            "payer_answers_a_freeze", "rider_metered"]
MODULES = [*PROGRAMS, "pb_env", "merchant_setup", "payer_setup", "merchant_django", "merchant_django.settings",
           "merchant_django.payments", "merchant_django.views", "merchant_django.urls"]
IMAGE = UNIT // 10


def example(name):
    return importlib.import_module(name)


def test_every_example_is_small_documented_and_runs_only_as_a_program():
    files = sorted(EXAMPLES.rglob("*.py"))
    assert len(files) >= len(MODULES) + 1
    for path in files:
        text = path.read_text()
        assert len(text.splitlines()) < 120, path
        assert ast.get_docstring(ast.parse(text, str(path))) or path.name == "urls.py", path
    for name in [*PROGRAMS, "merchant_django/__main__"]:
        text = (EXAMPLES / f"{name}.py").read_text()
        assert 'if __name__ == "__main__":' in text and "def main(" in text, name


def test_importing_the_examples_does_nothing(capsys, monkeypatch):
    for variable in [v for v in os.environ if v.startswith(("PB_", "DJANGO_"))]:
        monkeypatch.delenv(variable)
    threads = threading.active_count()
    for name in MODULES:
        module = example(name)
        assert module.__doc__ or name == "merchant_django.urls", name
    assert threading.active_count() == threads  # no server, follower or forwarder started
    assert capsys.readouterr() == ("", "")
    assert "DJANGO_SETTINGS_MODULE" not in os.environ


def test_a_missing_setting_is_named_without_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PB_")}
    args = {"payer_answers_a_freeze": ["status"], "local_faucet": [Account.create().address]}
    runs = {name: subprocess.Popen([sys.executable, str(EXAMPLES / name), *args.get(name.removesuffix(".py"), [])],
                                   cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name in [f"{p}.py" for p in PROGRAMS] + ["merchant_django"]}
    for name, run in runs.items():
        out, err = run.communicate(timeout=120)
        assert run.returncode == 2, (name, out, err)
        assert err.startswith("error: set PB_") and "Traceback" not in err, (name, err)


class StandInRelayer(ThreadingHTTPServer):
    """The relayer's three endpoints the examples use, recording what the gateway forwards."""

    def __init__(self) -> None:
        self.vouchers: list[dict] = []
        self.settle_requests: list[str] = []
        super().__init__(("127.0.0.1", 0), RelayerHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def accepted(self, channel: str) -> int | None:
        amounts = [int(v["cumulativeAmount"]) for v in self.vouchers if v["channelId"] == channel]
        return max(amounts) if amounts else None


class RelayerHandler(BaseHTTPRequestHandler):
    server: StandInRelayer

    def answer(self, status: int, body: dict) -> None:
        send_json(self, status, body)

    def do_GET(self) -> None:  # /v1/channels/{id}
        accepted = self.server.accepted(self.path.rsplit("/", 1)[-1])
        if accepted is None:
            self.answer(404, {"status": "rejected", "reason": "unknown_channel"})
        else:
            self.answer(200, {"acceptedCumulative": str(accepted), "settledCumulative": "0", "unsettled": "0"})

    def do_POST(self) -> None:  # /v1/vouchers, /v1/channels/{id}/settle
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if self.path == "/v1/vouchers":
            self.server.vouchers.append(body)
            self.answer(200, {"status": "accepted"})
        else:
            self.server.settle_requests.append(self.path)
            self.answer(200, {"status": "queued"})

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def stand_in_relayer() -> Iterator[StandInRelayer]:
    server = StandInRelayer()
    with serve_in_thread(server):
        yield server


@pytest.fixture
def merchant(chain, channels, token, payee):
    """Starts the examples' gateway (merchant_setup.start_gateway) on the in-process chain; stops it after."""
    started = []

    def start(relayer_url=None):
        started.append(example("merchant_setup").start_gateway(
            chain.provider.web3, contract=channels.address, token=token.address, payee=payee.address,
            relayer_url=relayer_url, poll_interval=0.2))
        return started[-1]

    yield start
    for running in started:
        running.stop()


def payer_settings(tmp_path, channels, agent, relayer_url="http://127.0.0.1:9"):
    return example("payer_setup").PayerSettings(rpc_url="unused", contract=channels.address, payer=agent,
                                                passphrase="pw", state_dir=tmp_path / "state",
                                                relayer_url=relayer_url)


def agent_client(url, settings, chain, offer, **options):
    agent_example = example("agent_pays_per_request")
    return example("payer_setup").payer_client(
        url, settings, pay_to=offer.pay_to, asset=offer.asset, deposit=5 * UNIT, key_cap=50 * UNIT,
        max_per_payment=UNIT, budget=agent_example.budget_for(offer, url), w3=chain.provider.web3,
        kdf=FAST_TEST_KDF, **options)


def test_agent_pays_the_fastapi_merchant__vouchers_reach_the_relayer_and_redeem(chain, channels, token, payee, agent,
                                                                                 merchant, tmp_path):
    agent_example = example("agent_pays_per_request")
    with stand_in_relayer() as relayer:
        running = merchant(relayer.url)
        app = example("merchant_fastapi").build_app(running.gateway, bypass_token="test-only")
        with serve_asgi(app) as url:
            offer = agent_example.what_it_asks(f"{url}/images")
            assert (offer.amount, offer.pay_to, offer.asset) == (str(IMAGE), payee.address, token.address)
            settings = payer_settings(tmp_path, channels, agent, relayer.url)
            lines: list[str] = []
            with agent_client(url, settings, chain, offer) as client:
                assert token.allowance(agent.address, channels) == 0  # opened with a permit
                key = client.account.refresh().signer
                assert key != agent.address and client.account.key_store.addresses() == [key]
                forbidden = partial(client.get, "/images", params={"prompt": "forbidden"})
                assert example("payer_setup").patiently(forbidden).status_code == 422  # paid, handler failed: released
                assert running.gateway.book.accepted(client.channel_id) == 0
                paid = agent_example.run(client, images=6, out=lines.append)
                assert [event.amount for event in paid] == [IMAGE] * 6
                assert sum("low balance: 4.4 U left" in line for line in lines) == 1
                assert lines[-1] == "8 images refused by the client's own budget guard: over_max_per_request"
                assert client.remaining_balance() == 5 * UNIT - 6 * IMAGE
                assert client.fetch_json("GET", "/captions")["paymentId"]  # the fixed price: 0.01 U
                total = 6 * IMAGE + UNIT // 100
                assert running.gateway.book.accepted(client.channel_id) == total
                channel = "0x" + client.channel_id.hex()
                agent_example.wait_for_relayer(relayer.url, client.channel_id, total)
                assert client.settle() == {"status": "queued"}
                assert relayer.settle_requests == [f"/v1/channels/{channel}/settle"]
            free = httpx.get(f"{url}/images", headers={"X-Test-Bypass": "test-only"})
            assert free.status_code == 200 and "x-payment-id" not in free.headers
            balance = token.balanceOf(agent.address)
            with agent_client(url, settings, chain, offer) as again:  # the next run: same channel, same key
                assert again.channel_id == client.channel_id and again.account.refresh().signer == key
                assert again.fetch_json("GET", "/captions")["paymentId"]  # resumes from the ledger: no resync
            assert token.balanceOf(agent.address) == balance  # no second deposit
        assert running.stop()  # the forwarder delivered everything
    newest = VoucherPayload.from_dict({**relayer.vouchers[-1], "type": "voucher"})
    assert newest.cumulative == total + UNIT // 100
    channels.redeem(payee, token, (newest.channel_id, newest.cumulative, newest.terms.pack(), newest.signature.r,
                                   newest.signature.vs), sender=payee)
    assert channels.channelState(client.account.config.as_tuple()).claimed == newest.cumulative


def test_agent_pays_the_flask_merchant(chain, channels, agent, merchant, tmp_path):
    agent_example = example("agent_pays_per_request")
    running = merchant()
    with serve_wsgi(example("merchant_flask").build_app(running.gateway)) as url:
        offer = agent_example.what_it_asks(f"{url}/images")
        with agent_client(url, payer_settings(tmp_path, channels, agent), chain, offer) as client:
            refused = example("payer_setup").patiently(partial(client.get, "/images", params={"prompt": "forbidden"}))
            assert refused.status_code == 422 and running.gateway.book.accepted(client.channel_id) == 0
            three = client.fetch_json("GET", "/images", params={"n": 3})
            assert len(three["images"]) == 3 and running.gateway.book.accepted(client.channel_id) == 3 * IMAGE
            paid = agent_example.run(client, images=2, out=lambda line: None)
            assert [event.amount for event in paid] == [IMAGE, IMAGE]
            assert running.gateway.book.accepted(client.channel_id) == 5 * IMAGE


def test_django_merchant_charges_in_a_process_of_its_own():
    run = subprocess.run([sys.executable, str(Path(__file__).parent / "example_django_round_trip.py")],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    *printed, last = run.stdout.strip().splitlines()
    result = json.loads(last)
    assert result["health"] == 200 and result["bypass"] == 200
    assert result["unpaid"] == [402, str(3 * IMAGE), True]
    assert result["paid"] == [200, 3, str(3 * IMAGE), str(10**7 - 3 * IMAGE)]
    assert result["forbidden"] == 422  # the view answered >= 400: released
    assert result["caption"] == str(UNIT // 100)
    assert result["accepted"] == 3 * IMAGE + UNIT // 100
    assert [line.split(" by ")[0] for line in printed] == ["paid 0.3 U", "paid 0.01 U"]  # PB_ON_PAYMENT_SUCCESS


def test_rider_pays_per_minute_after_the_merchant_raises_a_multiplier(chain, channels, agent, merchant, tmp_path):
    rates, rider, payer_setup = example("merchant_rates"), example("rider_metered"), example("payer_setup")
    running = merchant()
    with serve_asgi(rates.build_app(running.gateway, rates.rate_cards(), unit_seconds=2, rate_token="tok")) as url:
        with pytest.raises(ValueError, match="401"):
            rates.change_multiplier(url, "rides", "surge", "2", token="wrong")
        change = rates.change_multiplier(url, "rides", "surge", "2", token="tok")
        assert (change["change"]["old"], change["change"]["new"], change["rate"]["multipliers"]) == (
            "1", "2", {"surge": "2"})
        assert [c["new"] for c in httpx.get(f"{url}/rates/rides/history").json()["changes"]] == ["2"]
        terms = httpx.get(f"{url}/meter").json()
        assert terms["unitSeconds"] == 2 and terms["extra"]["rate"]["multipliers"] == {"surge": "2"}
        with payer_setup.payer_client(url, payer_settings(tmp_path, channels, agent), pay_to=terms["payTo"],
                                      asset=terms["asset"], deposit=5 * UNIT, key_cap=20 * UNIT, max_per_payment=UNIT,
                                      budget=rider.budget_for(terms), w3=chain.provider.web3,
                                      kdf=FAST_TEST_KDF) as client:
            unlocked = payer_setup.patiently(partial(client.fetch_json, "POST", "/cars/car-7/unlock"))
            assert unlocked["unlocked"] and running.gateway.book.accepted(client.channel_id) == UNIT // 20
            lines: list[str] = []
            session = rider.ride(client, f"{url}/meter", seconds=5, out=lines.append)
            assert session.error is None and 3 <= session.billed_units <= 4, lines
            assert lines[0].startswith("  minute 1: paid ")
            assert all(tick.amount >= 2 * 20_000 * tick.units for tick in session.ticks)  # surge x2 applied
            assert session.billed_amount == sum(tick.amount for tick in session.ticks)
            assert running.gateway.book.accepted(client.channel_id) == UNIT // 20 + session.billed_amount


def test_payer_answers_a_freeze__lift_then_confirm(chain, channels, token, payee, guardian, agent, tmp_path):
    answering, payer_setup = example("payer_answers_a_freeze"), example("payer_setup")
    settings = payer_settings(tmp_path, channels, agent)

    def client():
        return payer_setup.payer_client("http://127.0.0.1:9", settings, pay_to=payee.address, asset=token.address,
                                        deposit=UNIT, key_cap=UNIT, max_per_payment=0, budget=BudgetPolicy(),
                                        w3=chain.provider.web3, kdf=FAST_TEST_KDF)

    key = client().account.refresh().signer
    payer_chain = PayerChannels(chain.provider.web3, channels.address, agent)
    payer_chain.set_guardian(guardian.address)  # what `payer_answers_a_freeze.py guardian 0x...` does
    [config] = answering.channels_to_answer(payer_chain, None, settings.state_dir)  # the remembered channel
    lines: list[str] = []
    assert not answering.answer(payer_chain, config, "lift", lines.append).frozen
    assert lines[-1].startswith("not frozen, nothing to answer")
    before = payer_chain.state(config)
    channels.freeze(config.as_tuple(), sender=guardian)  # the Sentinel's trip
    assert answering.answer(payer_chain, config, "status", lines.append).frozen and ": FROZEN," in lines[-1]
    lifted = answering.answer(payer_chain, config, "lift", lines.append)
    assert (lifted.frozen, lifted.signer, lifted.terms) == (False, key, before.terms)  # the key works again, as before
    channels.freeze(config.as_tuple(), sender=guardian)
    confirmed = answering.answer(payer_chain, config, "confirm", lines.append)
    assert (confirmed.frozen, confirmed.signer, confirmed.deposit) == (False, agent.address, UNIT)  # key revoked
    again = client()  # the next run keeps the channel and grants a new key
    assert again.channel_id == config.channel_id and again.account.refresh().signer not in (key, agent.address)
