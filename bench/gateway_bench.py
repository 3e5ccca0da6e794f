"""Gateway benchmark: what a paid request costs over the same request unpaid, and on-chain gas per payment
against x402's "exact" scheme (one EIP-3009 transferWithAuthorization per request).

Overhead: the merchant (bench/gateway_server.py, its own process: FastAPI + the SDK's `paid` dependency, vouchers
checked locally, forwarding to a stand-in relayer) serves GET /image; the same endpoint is let through unpaid by
the skip predicate. The agent is the SDK's PBStreamClient (session key, budget guard, pre-emptive payment: one
round trip per paid request, in-memory ledger); the unpaid client is plain httpx. Requests alternate, one at a
time, after a warm-up; overhead = paid percentile - unpaid percentile, client-observed (so it includes signing).

Gas: settlement is `redeemBatch` of N channels (N = 100, each voucher signed by its own session key with caps
enforced on-chain); each redeemed voucher carries every payment of its channel up to the settlement threshold,
so gas per payment = gas per redeemed voucher / (threshold / price). Writes bench/results/gateway.{json,md}.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from ape import accounts, chain, networks, project
from eth_account import Account
from exact_payment import sign_transfer_authorization
from gas_report import Bench
from protocolbanks.sdk import pack_redemption_rows
from protocolbanks.sdk.payer import FAST_TEST_KDF, BudgetPolicy, PBStreamClient, SessionKeyStore
from protocolbanks.sdk.payer_channels import SessionKeyPolicy

UNIT = 10**6
PRICE = UNIT // 10  # the demo's image: 0.1 U
THRESHOLD = 10 * UNIT  # the relayer's default settlement threshold (the seed's 10 U), used by the demo
REQUESTS, WARMUP = 2_000, 200
RESULTS = Path(__file__).resolve().parent / "results"


class StandInRelayer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the relayer

    def do_POST(self) -> None:
        sent = json.loads(self.rfile.read(int(self.headers["content-length"])))
        answer = {"status": "accepted", "httpStatus": 200}
        body = json.dumps({"results": [answer] * len(sent["vouchers"])} if "vouchers" in sent else answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def overhead(rpc: str, channels: str, token: str, payee: str, deployer) -> dict:
    relayer = ThreadingHTTPServer(("127.0.0.1", 0), StandInRelayer)
    threading.Thread(target=relayer.serve_forever, daemon=True).start()
    port = 18999
    server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("gateway_server.py")), rpc, channels,
                               payee, token, str(port), f"http://127.0.0.1:{relayer.server_port}"])
    url = f"http://127.0.0.1:{port}"
    try:
        agent = Account.create()
        deployer.transfer(agent.address, 10**18)
        project.MockUSDC.at(token).mint(agent.address, 1_000 * UNIT, sender=deployer)
        with tempfile.TemporaryDirectory() as keys:
            client = PBStreamClient(url, w3=rpc, contract=channels, payer=agent,
                                    key_store=SessionKeyStore(Path(keys), kdf=FAST_TEST_KDF), passphrase="bench",
                                    budget=BudgetPolicy(max_per_request=UNIT))
            client.open_channel(payee, token, 500 * UNIT)
            client.grant_session_key(SessionKeyPolicy(total_cap=500 * UNIT,
                                                      valid_until=chain.pending_timestamp + 86_400))
            plain = httpx.Client(base_url=url, headers={"X-Bench-Unpaid": "1"})
            deadline = time.time() + 30
            while time.time() < deadline:
                try:
                    if plain.get("/image").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            time.sleep(1.5)  # the merchant's chain follower sees the new channel and key
            paid_ms, free_ms = [], []
            for i in range(WARMUP + REQUESTS):
                for request, sink in ((lambda: client.get("/image"), paid_ms), (lambda: plain.get("/image"), free_ms)):
                    start = time.perf_counter()
                    response = request()
                    elapsed = (time.perf_counter() - start) * 1000
                    if response.status_code != 200:
                        raise SystemExit(f"request {i} answered {response.status_code}: {response.text[:200]}")
                    if i >= WARMUP:
                        sink.append(elapsed)
            remaining = client.remaining_balance()
            client.close_http()
    finally:
        server.terminate()
        server.wait(timeout=10)
        relayer.shutdown()
    result = {"requests": REQUESTS, "paid_p50_ms": percentile(paid_ms, 0.5), "paid_p99_ms": percentile(paid_ms, 0.99),
              "unpaid_p50_ms": percentile(free_ms, 0.5), "unpaid_p99_ms": percentile(free_ms, 0.99),
              "paid_mean_ms": statistics.fmean(paid_ms), "unpaid_mean_ms": statistics.fmean(free_ms),
              "paid_total": (WARMUP + REQUESTS) * PRICE, "remaining_after": remaining}
    result["overhead_p50_ms"] = round(result["paid_p50_ms"] - result["unpaid_p50_ms"], 3)
    result["overhead_p99_ms"] = round(result["paid_p99_ms"] - result["unpaid_p99_ms"], 3)
    return result


def gas(bench: Bench) -> dict:
    payer, payee = bench.payers[0], bench.payee
    exact = []
    for _ in range(5):  # steady state: payer and payee already hold the token; each authorization nonce is new
        args = sign_transfer_authorization(payer.private_key, token=bench.token.address, chain_id=chain.chain_id,
                                           to=payee.address, value=PRICE, valid_before=chain.pending_timestamp + 600)
        exact.append(bench.token.transferWithAuthorization(*args, sender=payee).gas_used)
    rows = bench.keyed_channels(100)
    batch = bench.channels.redeemBatch(payee, bench.token, pack_redemption_rows(rows), sender=payee).gas_used
    per_voucher = batch / 100
    exact_gas = statistics.median(exact)
    table = {}
    cases = ((PRICE, THRESHOLD), (PRICE, 25 * UNIT), (UNIT // 100, THRESHOLD), (UNIT // 1000, THRESHOLD))
    for price, threshold in cases:
        payments = threshold // price
        per_payment = per_voucher / payments
        table[f"{price}@{threshold}"] = {"price": price, "threshold": threshold, "payments_per_voucher": payments,
                                         "gas_per_payment": round(per_payment, 1),
                                         "times_less_than_exact": round(exact_gas / per_payment)}
    demo = table[f"{PRICE}@{THRESHOLD}"]
    return {"gas_per_payment": demo["gas_per_payment"], "exact_gas_per_payment": exact_gas,
            "times_less": demo["times_less_than_exact"], "batch_100_gas": batch,
            "per_redeemed_voucher": round(per_voucher), "by_price_and_threshold": table}


def markdown(result: dict) -> str:
    o, g = result["overhead"], result["gas"]
    lines = ["# Gateway benchmark", "",
             (f"{o['requests']:,} paid and {o['requests']:,} unpaid requests to the same endpoint on the same server "
              "(FastAPI + `paid`, its own process), alternating, one at a time, client-observed, loopback, 2-core "
              "machine. Goal: p99 overhead <= 2 ms."), "",
             "| | p50 ms | p99 ms |", "|---|---:|---:|",
             f"| unpaid (skip predicate) | {o['unpaid_p50_ms']:.2f} | {o['unpaid_p99_ms']:.2f} |",
             (f"| paid (voucher signed by the client, verified by the gateway) | {o['paid_p50_ms']:.2f} | "
              f"{o['paid_p99_ms']:.2f} |"),
             f"| **overhead** | **{result['overhead_p50_ms']:.2f}** | **{result['overhead_p99_ms']:.2f}** |", "",
             (f"On-chain gas per payment: x402 \"exact\" pays each request with one EIP-3009 transferWithAuthorization "
              f"({g['exact_gas_per_payment']:,.0f} gas, median of 5, steady state). ProtocolBanks settles with one "
              f"redeemBatch of 100 channels ({g['batch_100_gas']:,} gas, {g['per_redeemed_voucher']:,} per redeemed "
              "voucher); a voucher carries every payment of its channel up to the settlement threshold. "
              "Goal: >= 1,000x less."), "",
             "| price | settlement threshold | payments per voucher | gas per payment | times less than exact |",
             "|---:|---:|---:|---:|---:|"]
    for row in g["by_price_and_threshold"].values():
        lines.append(f"| {row['price'] / UNIT:g} U | {row['threshold'] / UNIT:g} U | {row['payments_per_voucher']:,} | "
                     f"{row['gas_per_payment']:,} | {row['times_less_than_exact']:,}x |")
    lines += ["", ("The first row is the demo's image API (0.1 U) at the relayer's default threshold (10 U): "
                   f"{g['times_less']:,}x. The ratio grows with the payments a voucher carries: 1,000x needs about "
                   f"{g['per_redeemed_voucher'] * 1000 / g['exact_gas_per_payment']:,.0f} payments per redeemed "
                   "voucher (e.g. 0.1 U payments with a 25 U threshold, or 0.01 U payments with the 10 U "
                   "default)."), ""]
    return "\n".join(lines)


def main() -> int:
    with networks.parse_network_choice("ethereum:local:foundry") as provider:
        bench = Bench()
        print("gas: exact-scheme transfers and a 100-channel settlement ...", file=sys.stderr)
        gas_result = gas(bench)
        print(f"overhead: {REQUESTS:,} paid and unpaid requests ...", file=sys.stderr)
        over = overhead(provider.uri, bench.channels.address, bench.token.address, bench.payee.address,
                        accounts.test_accounts[0])
    result = {"overhead_p50_ms": over["overhead_p50_ms"], "overhead_p99_ms": over["overhead_p99_ms"],
              "gas_per_payment": gas_result["gas_per_payment"],
              "exact_gas_per_payment": gas_result["exact_gas_per_payment"], "overhead": over, "gas": gas_result}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gateway.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "gateway.md").write_text(markdown(result))
    print((RESULTS / "gateway.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
