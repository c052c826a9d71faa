"""Official x402 buyer (Python, PyPI ``x402`` v2 httpx transport).

GETs ``--url`` once, paying a 402 with the EVM exact scheme and an eth-account
local account:

    $CACHE/venv/bin/python tests/interop/httpx_client.py --url URL --private-key 0x...

Prints ONE JSON line on stdout:
    {"status": 200, "body": "...", "paymentResponse": {...} | null, "paymentSignature": "..." | null}
``paymentResponse`` is the decoded PAYMENT-RESPONSE (or X-PAYMENT-RESPONSE)
header; ``paymentSignature`` is the raw PAYMENT-SIGNATURE header value actually
sent on the paid retry (captured by a recording transport under the SDK's).
Exit code: 0 when the final status is 2xx, 1 otherwise (the JSON line is still
printed when a response was received), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys

import httpx
from eth_account import Account

from x402 import x402Client
from x402.http.clients.httpx import x402_httpx_transport
from x402.mechanisms.evm.exact import register_exact_evm_client


class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes requests through and remembers the last payment header sent."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.payment_signature: str | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sig = request.headers.get("payment-signature") or request.headers.get("x-payment")
        if sig is not None:
            self.payment_signature = sig
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def decode_receipt(raw: str | None) -> object | None:
    if raw is None:
        return None
    try:
        return json.loads(base64.b64decode(raw, validate=True).decode("utf-8"))
    except Exception as e:  # noqa: BLE001
        print(f"httpx_client: undecodable PAYMENT-RESPONSE ({e!r}): {raw}", file=sys.stderr)
        return None


async def run(url: str, private_key: str, timeout: float) -> int:
    try:
        account = Account.from_key(private_key)
    except Exception as e:  # noqa: BLE001
        print(f"httpx_client: bad --private-key: {e!r}", file=sys.stderr)
        return 2

    client = x402Client()
    register_exact_evm_client(client, account)  # eip155:* (the devnet has its own id)
    # The SDK's spend controls only allow its built-in default assets; the devnet
    # USDC is not one of them, so allow any asset.
    client.set_spend_controls({"allowed_assets": True})

    recorder = RecordingTransport(httpx.AsyncHTTPTransport())
    transport = x402_httpx_transport(client, recorder)
    try:
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as http:
            response = await http.get(url)
            await response.aread()
    except Exception as e:  # noqa: BLE001
        print(f"httpx_client: request failed: {e!r}", file=sys.stderr)
        if e.__cause__ is not None:
            print(f"httpx_client: cause: {e.__cause__!r}", file=sys.stderr)
        return 1

    raw_receipt = response.headers.get("payment-response") or response.headers.get(
        "x-payment-response"
    )
    if response.status_code == 402:
        required = response.headers.get("payment-required")
        if required:
            try:
                decoded = base64.b64decode(required).decode("utf-8")
            except Exception:  # noqa: BLE001
                decoded = required
            print(f"httpx_client: final 402 PAYMENT-REQUIRED: {decoded}", file=sys.stderr)

    out = {
        "status": response.status_code,
        "body": response.text,
        "paymentResponse": decode_receipt(raw_receipt),
        "paymentSignature": recorder.payment_signature,
    }
    print(json.dumps(out), flush=True)
    return 0 if 200 <= response.status_code < 300 else 1


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--private-key", required=True)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request")
    args = p.parse_args(argv)
    return asyncio.run(run(args.url, args.private_key, args.timeout))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
