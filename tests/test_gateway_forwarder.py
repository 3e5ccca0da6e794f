"""The gateway hands committed vouchers to a relayer off the request path: the real relayer intake over HTTP
(coalesced to the newest voucher per channel), retries with backoff against a relayer that fails, refusals not
retried; and a restarted gateway starts a channel from the relayer's accepted cumulative."""

import asyncio
import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiohttp import web
from gateway_harness import IMAGE_PRICE, make_env
from local_servers import send_json
from protocolbanks.devtools.thread_server import serve_in_thread
from protocolbanks.relayer.http_api import build_app
from protocolbanks.relayer.intake import VoucherIntake
from protocolbanks.relayer.store import VoucherStore
from protocolbanks.sdk.gateway import RelayerChannelLookup, RelayerForwarder, VoucherRefused
from protocolbanks.sdk.typed_data import Voucher
from protocolbanks.sdk.x402.wire import VoucherPayload


@contextmanager
def relayer_intake(tmp_path, env):
    """The relayer's own HTTP app (aiohttp) in a thread with its event loop; yields (url, store)."""
    store = VoucherStore(f"sqlite:///{tmp_path / 'relayer.db'}")
    intake = VoucherIntake(store, env.cache.get, env.channel.domain, payee=env.channel.payee.address)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(build_app(intake))
    ready = threading.Event()
    port = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port["value"] = site._server.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield f"http://127.0.0.1:{port['value']}", store
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        store.close()


@contextmanager
def stand_in_relayer(answers):
    """A relayer stand-in: POSTs are recorded and answered from `answers` (status, body) in turn (the last one
    repeats); GET /v1/channels/<id> answers from `answers` too."""
    posts, gets = [], []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            status, body = answers[min(len(posts) + len(gets) - 1, len(answers) - 1)]
            send_json(self, status, body)

        def do_POST(self):
            posts.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self._answer()

        def do_GET(self):
            gets.append(self.path)
            self._answer()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with serve_in_thread(server):
        yield f"http://127.0.0.1:{server.server_port}", posts, gets


def pay(env, times: int) -> None:
    """`times` paid requests through the book: reserve, handler ok, commit."""
    for _ in range(times):
        base = env.accepted()
        signature = Voucher(env.channel.id, env.channel.terms.epoch, base + IMAGE_PRICE).sign(env.channel.domain,
                                                                                             env.key)
        voucher = VoucherPayload(env.channel.id, base + IMAGE_PRICE, env.channel.terms, signature)
        env.book.commit(env.book.reserve(voucher, IMAGE_PRICE))


def test_forwarder__newest_voucher_per_channel_reaches_the_real_relayer_intake(chain, channels, open_channel,
                                                                                tmp_path):
    env = make_env(chain, channels, open_channel)
    with relayer_intake(tmp_path, env) as (url, store):
        forwarder = RelayerForwarder(url, env.channel.domain.chain_id)
        env.book.on_commit = forwarder.submit
        pay(env, 5)  # committed before the thread runs: one POST carries all five
        forwarder.start()
        assert forwarder.flush(10)
        assert store.progress()[env.channel.id].accepted_cumulative == 5 * IMAGE_PRICE
        stats = forwarder.stats
        assert (stats.submitted, stats.coalesced, stats.delivered, stats.rejected) == (5, 4, 1, 0)
        pay(env, 2)
        assert forwarder.stop(10)
        assert store.progress()[env.channel.id].accepted_cumulative == 7 * IMAGE_PRICE
        assert forwarder.stats.submitted == 7 and forwarder.pending() == 0


def test_forwarder__relayer_failing__retried_with_backoff_until_delivered(chain, channels, open_channel):
    env = make_env(chain, channels, open_channel)
    answers = [(503, {"status": "unavailable"}), (503, {"status": "unavailable"}), (200, {"status": "accepted"})]
    with stand_in_relayer(answers) as (url, posts, _):
        forwarder = RelayerForwarder(url, env.channel.domain.chain_id, initial_backoff=0.01, max_backoff=0.05)
        env.book.on_commit = forwarder.submit
        forwarder.start()
        pay(env, 1)
        assert forwarder.flush(10)
        assert len(posts) == 3 and forwarder.stats.retries == 2 and forwarder.stats.delivered == 1
        body = posts[-1]
        assert body["cumulativeAmount"] == str(IMAGE_PRICE) and body["chainId"] == env.channel.domain.chain_id
        assert body["channelId"] == "0x" + env.channel.id.hex() and "type" not in body
        forwarder.stop(5)


def test_forwarder__refusal_is_reported_not_retried(chain, channels, open_channel):
    env = make_env(chain, channels, open_channel)
    refused = []
    with stand_in_relayer([(409, {"status": "rejected", "reason": "channel_frozen"})]) as (url, posts, _):
        forwarder = RelayerForwarder(url, env.channel.domain.chain_id,
                                     on_rejected=lambda voucher, status, answer: refused.append(
                                         (voucher.cumulative, status, answer["reason"])))
        env.book.on_commit = forwarder.submit
        forwarder.start()
        pay(env, 1)
        assert forwarder.flush(10)
        assert refused == [(IMAGE_PRICE, 409, "channel_frozen")] and len(posts) == 1
        assert forwarder.stats.rejected == 1 and forwarder.stats.retries == 0
        forwarder.stop(5)


def test_restarted_gateway__starts_a_channel_from_the_relayer(chain, channels, open_channel):
    answer = {"channelId": "0x", "acceptedCumulative": str(3 * IMAGE_PRICE), "settledCumulative": "0",
              "unsettled": str(3 * IMAGE_PRICE)}
    with stand_in_relayer([(200, answer)]) as (url, _, gets):
        env = make_env(chain, channels, open_channel, accepted_lookup=RelayerChannelLookup(url))
        assert env.accepted() == 3 * IMAGE_PRICE and gets == [f"/v1/channels/0x{env.channel.id.hex()}"]
        with pytest.raises(VoucherRefused) as mismatch:
            signature = Voucher(env.channel.id, env.channel.terms.epoch, IMAGE_PRICE).sign(env.channel.domain,
                                                                                          env.key)
            env.book.reserve(VoucherPayload(env.channel.id, IMAGE_PRICE, env.channel.terms, signature), IMAGE_PRICE)
        assert mismatch.value.code == "pb_cumulative_mismatch" and mismatch.value.accepted == 3 * IMAGE_PRICE
        pay(env, 1)
        assert env.accepted() == 4 * IMAGE_PRICE and len(gets) == 1  # looked up once

    with stand_in_relayer([(404, {"status": "rejected", "reason": "unknown_channel"})]) as (url, _, gets):
        assert RelayerChannelLookup(url)(env.channel.id) is None  # unknown to the relayer: the book starts at 0
    with stand_in_relayer([(500, {})]) as (url, _, _gets):
        env = make_env(chain, channels, open_channel, accepted_lookup=RelayerChannelLookup(url))
        with pytest.raises(VoucherRefused) as unavailable:
            env.accepted()
        assert unavailable.value.code == "pb_state_unavailable"


def test_forwarder__a_burst_over_many_channels_goes_out_as_one_batch(chain, channels, open_channel, tmp_path):
    from types import SimpleNamespace

    from protocolbanks.sdk.chain_view import ChainCache

    envs = [make_env(chain, channels, open_channel) for _ in range(3)]
    cache = ChainCache(chain.provider.web3, channels.address, reorg_depth=0)
    cache.poll()
    posted = []
    with relayer_intake(tmp_path, SimpleNamespace(cache=cache, channel=envs[0].channel)) as (url, store):
        forwarder = RelayerForwarder(url, envs[0].channel.domain.chain_id, linger=0.2)
        original = forwarder._client.post
        forwarder._client.post = lambda path, **kw: (posted.append(path), original(path, **kw))[1]
        for env in envs:
            env.book.on_commit = forwarder.submit
        forwarder.start()
        for env in envs:
            pay(env, 2)  # within the linger: one request carries the newest voucher of each channel
        assert forwarder.flush(10)
        assert [p.rsplit("/", 1)[-1] for p in posted] == ["batch"]
        progress = store.progress()
        assert [progress[env.channel.id].accepted_cumulative for env in envs] == [2 * IMAGE_PRICE] * 3
        assert (forwarder.stats.delivered, forwarder.stats.coalesced) == (3, 3)
        forwarder.stop(5)
