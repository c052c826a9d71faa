// Official x402 seller (TypeScript, @x402/express v2) protecting GET /paid and
// settling through the facilitator given by --facilitator (ours, in the tests).
//
// Run from the install cache (see setup.sh), where node_modules sits next to it:
//   node "$CACHE/node/express_server.mjs" --port 47110 \
//     --facilitator http://127.0.0.1:47101 --network eip155:5042002 \
//     --asset 0x3600000000000000000000000000000000000000 --amount 1000 \
//     --pay-to 0x... --name USDC --version 2
//
// Prints exactly one line "listening <port>" on stdout once the facilitator's
// /supported has been fetched and the route configuration validated; errors go
// to stderr (and a start-up failure exits non-zero).
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import express from "express";
import {
  paymentMiddlewareFromHTTPServer,
  x402HTTPResourceServer,
  x402ResourceServer,
} from "@x402/express";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { ExactEvmScheme } from "@x402/evm/exact/server";

const REQUIRED = ["port", "facilitator", "network", "asset", "amount", "pay-to", "name", "version"];

function die(message) {
  process.stderr.write(`express_server: ${message}\n`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      port: { type: "string" },
      facilitator: { type: "string" },
      network: { type: "string" },
      asset: { type: "string" },
      amount: { type: "string" },
      "pay-to": { type: "string" },
      name: { type: "string" },
      version: { type: "string" },
      "max-timeout-seconds": { type: "string" },
    },
    strict: true,
  }));
} catch (err) {
  die(err.message);
}
for (const key of REQUIRED) {
  if (!values[key]) die(`missing --${key}`);
}
const port = Number.parseInt(values.port, 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) die(`bad --port ${values.port}`);
if (!/^\d+$/.test(values.amount)) die(`--amount must be atomic units, got ${values.amount}`);

const accept = {
  scheme: "exact",
  network: values.network,
  // payTo is used verbatim: the offer carries the address in the given case.
  payTo: values["pay-to"],
  // A chain without a default asset needs an explicit AssetAmount price.
  price: {
    amount: values.amount,
    asset: values.asset,
    extra: { name: values.name, version: values.version },
  },
};
if (values["max-timeout-seconds"]) {
  accept.maxTimeoutSeconds = Number.parseInt(values["max-timeout-seconds"], 10);
}

const routes = {
  "GET /paid": {
    accepts: [accept],
    description: "NerdCabal interop test resource (express)",
    mimeType: "application/json",
  },
};

const facilitator = new HTTPFacilitatorClient({ url: values.facilitator });
const resourceServer = new x402ResourceServer(facilitator).register(
  values.network,
  new ExactEvmScheme(),
);
const httpServer = new x402HTTPResourceServer(resourceServer, routes);

resourceServer.onVerifyFailure(async (ctx) => {
  process.stderr.write(`express_server: verify failure: ${errText(ctx.error ?? ctx)}\n`);
});
resourceServer.onSettleFailure(async (ctx) => {
  process.stderr.write(`express_server: settle failure: ${errText(ctx.error ?? ctx)}\n`);
});

function errText(e) {
  if (e instanceof Error) return e.stack || e.message;
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
}

// Fetch /supported and validate the routes now, so "listening" means ready.
try {
  await httpServer.initialize();
} catch (err) {
  process.stderr.write(`express_server: initialisation failed: ${errText(err)}\n`);
  if (err?.cause) process.stderr.write(`express_server: cause: ${errText(err.cause)}\n`);
  process.exit(1);
}

const app = express();
app.get("/health", (_req, res) => {
  res.status(200).json({ ok: true, server: "express" });
});
// Already initialised above, so no second /supported sync on start.
app.use(paymentMiddlewareFromHTTPServer(httpServer, undefined, undefined, false));
app.get("/paid", (_req, res) => {
  res.status(200).json({ paid: true, server: "express" });
});
app.use((err, _req, res, _next) => {
  process.stderr.write(`express_server: request error: ${errText(err)}\n`);
  res.status(500).json({ error: String(err?.message ?? err) });
});

const server = createServer(app);
server.on("error", (err) => {
  process.stderr.write(`express_server: listen failed: ${errText(err)}\n`);
  process.exit(1);
});
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
