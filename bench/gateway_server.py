"""The merchant side of the gateway benchmark, as its own process: one FastAPI endpoint paid with the SDK's `paid`
dependency (0.1 U per image), the same endpoint let through unpaid by the skip predicate (header
`X-Bench-Unpaid: 1`), vouchers checked locally against a chain view kept fresh by a ChainFollower, and committed
vouchers forwarded off the request path to a stand-in relayer.

  python bench/gateway_server.py RPC_URL CONTRACT PAYEE TOKEN PORT RELAYER_URL

(No `from __future__ import annotations` here: FastAPI must see the `Depends` of a locally built dependency.)
"""

import sys
from typing import Annotated

import uvicorn
from fastapi import Depends, FastAPI
from protocolbanks.sdk.chain_view import ChainCache
from protocolbanks.sdk.gateway import (
    ChainFollower,
    GatewayChannelBook,
    MerchantGateway,
    PaymentReceipt,
    RelayerForwarder,
)
from protocolbanks.sdk.gateway.fastapi import paid, use_gateway
from protocolbanks.sdk.typed_data import ChannelDomain
from web3 import Web3

PRICE = 100_000  # 0.1 U


def build(rpc: str, contract: str, payee: str, token: str, relayer: str) -> FastAPI:
    w3 = Web3(Web3.HTTPProvider(rpc))
    cache = ChainCache(w3, contract, reorg_depth=0)
    cache.poll()
    ChainFollower(cache, interval=0.5).start()
    book = GatewayChannelBook(ChannelDomain(w3.eth.chain_id, contract), cache.get, payee=payee, token=token)
    forwarder = RelayerForwarder(relayer, w3.eth.chain_id).start()
    app = FastAPI()
    use_gateway(app, MerchantGateway(book, forwarder=forwarder))
    image = paid(price=PRICE, skip_payment=lambda request: request.headers.get("x-bench-unpaid") == "1")

    @app.get("/image")
    async def generate(receipt: Annotated[PaymentReceipt | None, Depends(image)]) -> dict[str, str]:
        return {"image": "a small cat", "paid": str(receipt.amount) if receipt else "0"}

    return app


if __name__ == "__main__":
    rpc, contract, payee, token, port, relayer = sys.argv[1:7]
    uvicorn.run(build(rpc, contract, payee, token, relayer), host="127.0.0.1", port=int(port), log_level="warning",
                access_log=False)
