// Exports the compiled contracts the Rust side binds to (ABI, creation and runtime bytecode) from forge's
// out/ into artifacts/*.json, which are committed so `cargo build` needs neither node nor solc.
//   node scripts/artifacts.mjs write     — write artifacts/ from out/
//   node scripts/artifacts.mjs --check   — exit 1 if the committed artifacts differ from out/
// Run `forge build` first (the npm scripts do). The bytecode carries no metadata hash (foundry.toml), so the
// same sources give the same bytes on every machine.
import { readFileSync, writeFileSync, mkdirSync, existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// Every file solidity/src/Name.sol exports its contract Name (interfaces and libraries live under subfolders).
const CONTRACTS = readdirSync(join(root, "solidity", "src"))
  .filter((file) => file.endsWith(".sol"))
  .map((file) => file.slice(0, -".sol".length))
  .sort();

function fail(message, code = 1) {
  console.error(message);
  process.exit(code);
}

/// The artifact alloy's `sol!(Name, "artifacts/Name.json")` reads: exactly abi, bytecode, deployedBytecode.
function exported(name) {
  const file = join(root, "out", `${name}.sol`, `${name}.json`);
  if (!existsSync(file)) fail(`missing forge output ${file}: run \`forge build\` (or \`npm run build\`) first`);
  const built = JSON.parse(readFileSync(file, "utf8"));
  const creation = built.bytecode?.object;
  const runtime = built.deployedBytecode?.object;
  if (!Array.isArray(built.abi) || !/^0x[0-9a-f]+$/.test(creation ?? "") || !/^0x[0-9a-f]+$/.test(runtime ?? "")) {
    fail(`forge output ${file} has no ABI or no linked bytecode`);
  }
  const artifact = { abi: built.abi, bytecode: { object: creation }, deployedBytecode: { object: runtime } };
  return JSON.stringify(artifact, null, 2) + "\n";
}

/// Which part of an artifact differs, for the failure message.
function difference(committed, fresh) {
  let old;
  try {
    old = JSON.parse(committed);
  } catch {
    return "not valid JSON";
  }
  const now = JSON.parse(fresh);
  const parts = [];
  if (JSON.stringify(old.abi) !== JSON.stringify(now.abi)) parts.push("abi");
  if (old.bytecode?.object !== now.bytecode.object) parts.push("bytecode");
  if (old.deployedBytecode?.object !== now.deployedBytecode.object) parts.push("deployedBytecode");
  return parts.length > 0 ? `${parts.join(", ")} differ` : "formatting differs";
}

const mode = { write: "write", "--write": "write", check: "check", "--check": "check" }[process.argv[2]];
if (!mode) fail("usage: node scripts/artifacts.mjs write | --check", 2);

mkdirSync(join(root, "artifacts"), { recursive: true });
const stale = [];
for (const name of CONTRACTS) {
  const file = join(root, "artifacts", `${name}.json`);
  const fresh = exported(name);
  if (mode === "write") {
    writeFileSync(file, fresh);
  } else if (!existsSync(file)) {
    stale.push(`artifacts/${name}.json (missing)`);
  } else {
    const committed = readFileSync(file, "utf8");
    if (committed !== fresh) stale.push(`artifacts/${name}.json (${difference(committed, fresh)})`);
  }
}
if (stale.length > 0) {
  fail(
    "error: the committed artifacts differ from a fresh build of solidity/src:\n" +
      stale.map((line) => `  ${line}\n`).join("") +
      "run `npm run build` in contracts/ and commit artifacts/",
  );
}
console.log(mode === "write" ? `wrote ${CONTRACTS.length} artifacts to artifacts/` : "artifacts are fresh");
