// Exports the compiled contracts the Rust side binds to (ABI, creation and runtime bytecode) from forge's
// out/ into artifacts/*.json, which are committed so `cargo build` needs neither node nor solc.
//   node scripts/artifacts.mjs write   — write artifacts/
//   node scripts/artifacts.mjs check   — exit 1 if the committed artifacts differ from this build
import { readFileSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const CONTRACTS = ["USDC", "Multicall3", "SmartWallet"];

function exported(name) {
  const built = JSON.parse(readFileSync(join(root, "out", `${name}.sol`, `${name}.json`), "utf8"));
  const artifact = {
    abi: built.abi,
    bytecode: { object: built.bytecode.object },
    deployedBytecode: { object: built.deployedBytecode.object },
  };
  return JSON.stringify(artifact, null, 2) + "\n";
}

const mode = process.argv[2];
if (mode !== "write" && mode !== "check") {
  console.error("usage: node scripts/artifacts.mjs write|check");
  process.exit(2);
}
mkdirSync(join(root, "artifacts"), { recursive: true });
const stale = [];
for (const name of CONTRACTS) {
  const file = join(root, "artifacts", `${name}.json`);
  const fresh = exported(name);
  if (mode === "write") {
    writeFileSync(file, fresh);
  } else if (!existsSync(file) || readFileSync(file, "utf8") !== fresh) {
    stale.push(`artifacts/${name}.json`);
  }
}
if (stale.length > 0) {
  console.error(`stale compiled artifacts: ${stale.join(", ")}\nrun \`npm run build\` in contracts/ and commit them`);
  process.exit(1);
}
console.log(mode === "write" ? `wrote ${CONTRACTS.length} artifacts` : "artifacts are fresh");
