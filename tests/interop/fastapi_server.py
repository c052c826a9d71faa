"""Official x402 seller (Python, PyPI ``x402`` v2 FastAPI middleware).

Protects ``GET /paid`` and settles through the facilitator given by
``--facilitator`` (ours, in the tests). ``GET /health`` is free.

    $CACHE/venv/bin/python tests/interop/fastapi_server.py --port 47111 \
        --facilitator http://127.0.0.1:47101 --network eip155:5042002 \
        --asset 0x3600000000000000000000000000000000000000 --amount 1000 \
        --pay-to 0x... --name USDC --version 2

Prints exactly one line ``listening <port>`` on stdout once the facilitator's
/supported has been fetched, the routes validated and the socket bound. Errors
go to stderr; a start-up failure exits non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import socket
import sys

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from x402 import x402ResourceServer
from x402.http import FacilitatorConfig, HTTPFacilitatorClient, x402HTTPResourceServer
from x402.http.middleware.fastapi import payment_middleware
from x402.http.types import PaymentOption, RouteConfig
from x402.mechanisms.evm.exact import ExactEvmServerScheme

log = logging.getLogger("fastapi_server")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--facilitator", required=True, help="facilitator base URL")
    p.add_argument("--network", required=True, help="CAIP-2, e.g. eip155:5042002")
    p.add_argument("--asset", required=True, help="token contract address")
    p.add_argument("--amount", required=True, help="price in atomic units")
    p.add_argument("--pay-to", required=True, help="recipient, used verbatim")
    p.add_argument("--name", required=True, help="EIP-712 domain name of the token")
    p.add_argument("--version", required=True, help="EIP-712 domain version of the token")
    p.add_argument("--max-timeout-seconds", type=int, default=None)
    args = p.parse_args(argv)
    if not re.fullmatch(r"\d+", args.amount):
        p.error(f"--amount must be atomic units, got {args.amount}")
    return args


def build_app(args: argparse.Namespace) -> FastAPI:
    facilitator = HTTPFacilitatorClient(FacilitatorConfig(url=args.facilitator))
    server = x402ResourceServer(facilitator)
    server.register(args.network, ExactEvmServerScheme())

    def on_verify_failure(ctx):  # noqa: ANN001
        print(f"fastapi_server: verify failure: {ctx.error!r}", file=sys.stderr, flush=True)

    def on_settle_failure(ctx):  # noqa: ANN001
        print(f"fastapi_server: settle failure: {ctx.error!r}", file=sys.stderr, flush=True)

    server.on_verify_failure(on_verify_failure)
    server.on_settle_failure(on_settle_failure)

    routes = {
        "GET /paid": RouteConfig(
            accepts=PaymentOption(
                scheme="exact",
                # payTo is used verbatim: the offer carries the address as given.
                pay_to=args.pay_to,
                # No default asset on the devnet: explicit AssetAmount price.
                price={
                    "amount": args.amount,
                    "asset": args.asset,
                    "extra": {"name": args.name, "version": args.version},
                },
                network=args.network,
                max_timeout_seconds=args.max_timeout_seconds,
            ),
            description="NerdCabal interop test resource (fastapi)",
            mime_type="application/json",
        )
    }

    # Fetch /supported and validate the routes now (raises on failure), so the
    # "listening" line means ready. The middleware then needs no start-up sync
    # (its own sync prints warnings on stdout, which would break the protocol).
    x402HTTPResourceServer(server, routes).initialize()
    x402_mw = payment_middleware(routes, server, sync_facilitator_on_start=False)

    app = FastAPI()

    @app.middleware("http")
    async def x402_middleware(request, call_next):  # noqa: ANN001, ANN202
        return await x402_mw(request, call_next)

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"ok": True, "server": "fastapi"})

    @app.get("/paid")
    async def paid() -> JSONResponse:
        return JSONResponse({"paid": True, "server": "fastapi"})

    return app


async def serve(app: FastAPI, port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    bound = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before starting")
        await asyncio.sleep(0.02)
    print(f"listening {bound}", flush=True)
    await task


def _exit_cleanly(signum, _frame):  # noqa: ANN001
    # uvicorn shuts down gracefully, then re-raises the signal it caught; end
    # with status 0 then (as express_server.mjs does) rather than 143.
    sys.exit(0)


def main(argv: list[str]) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    args = parse_args(argv)
    try:
        app = build_app(args)
    except Exception as e:  # noqa: BLE001
        print(f"fastapi_server: initialisation failed: {e!r}", file=sys.stderr, flush=True)
        return 1
    try:
        asyncio.run(serve(app, args.port))
    except KeyboardInterrupt:
        pass
    except Exception as e:  # noqa: BLE001
        print(f"fastapi_server: server failed: {e!r}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
