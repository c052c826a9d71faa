// Official x402 buyer (TypeScript, @x402/fetch v2): GETs --url once, paying
// the 402 with the EVM exact scheme and a viem local account.
//
//   node "$CACHE/node/fetch_client.mjs" --url http://127.0.0.1:47102/... --private-key 0x...
//
// Prints ONE JSON line on stdout:
//   {"status":200,"body":"...","paymentResponse":{...}|null,"paymentSignature":"..."|null}
// paymentResponse is the decoded PAYMENT-RESPONSE (or X-PAYMENT-RESPONSE)
// header; paymentSignature is the raw PAYMENT-SIGNATURE header value that was
// actually sent on the paid retry (captured by wrapping the underlying fetch).
// Exit code: 0 when the final status is 2xx, 1 otherwise (the JSON line is
// still printed when a response was received), 2 on bad arguments.
import { parseArgs } from "node:util";
import { wrapFetchWithPayment, x402Client } from "@x402/fetch";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";

function die(code, message) {
  process.stderr.write(`fetch_client: ${message}\n`);
  process.exit(code);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      url: { type: "string" },
      "private-key": { type: "string" },
      "timeout-ms": { type: "string" },
    },
    strict: true,
  }));
} catch (err) {
  die(2, err.message);
}
if (!values.url) die(2, "missing --url");
if (!values["private-key"]) die(2, "missing --private-key");
const timeoutMs = Number.parseInt(values["timeout-ms"] ?? "60000", 10);

let account;
try {
  account = privateKeyToAccount(values["private-key"]);
} catch (err) {
  die(2, `bad --private-key: ${err.message}`);
}

const client = new x402Client();
// Any eip155 chain (the devnet has its own chain id).
client.register("eip155:*", new ExactEvmScheme(account));
// The SDK's spend controls only allow its built-in default assets (mainnet /
// testnet USDC); the devnet USDC is not one of them, so allow any asset.
client.setSpendControls({ allowedAssets: true });

// Wrap the transport so we see the headers really sent.
let paymentSignature = null;
const recordingFetch = async (input, init) => {
  const request = input instanceof Request ? input : new Request(input, init);
  const sig = request.headers.get("payment-signature") ?? request.headers.get("x-payment");
  if (sig !== null) paymentSignature = sig;
  return fetch(request, { signal: AbortSignal.timeout(timeoutMs) });
};

const payingFetch = wrapFetchWithPayment(recordingFetch, client);

let response;
try {
  response = await payingFetch(values.url, { method: "GET" });
} catch (err) {
  process.stderr.write(`fetch_client: request failed: ${err?.stack ?? err}\n`);
  if (err?.cause) process.stderr.write(`fetch_client: cause: ${err.cause?.stack ?? err.cause}\n`);
  process.exit(1);
}

const body = await response.text();
const rawReceipt =
  response.headers.get("payment-response") ?? response.headers.get("x-payment-response");
let paymentResponse = null;
if (rawReceipt !== null) {
  try {
    // Decoded as sent (base64 JSON), without the SDK's schema validation.
    paymentResponse = JSON.parse(Buffer.from(rawReceipt, "base64").toString("utf8"));
  } catch (err) {
    process.stderr.write(`fetch_client: undecodable PAYMENT-RESPONSE (${err.message}): ${rawReceipt}\n`);
  }
}
if (response.status === 402) {
  const required = response.headers.get("payment-required");
  if (required) process.stderr.write(`fetch_client: final 402 PAYMENT-REQUIRED: ${Buffer.from(required, "base64").toString("utf8")}\n`);
}

process.stdout.write(
  JSON.stringify({ status: response.status, body, paymentResponse, paymentSignature }) + "\n",
);
process.exitCode = response.status >= 200 && response.status < 300 ? 0 : 1;
