#!/usr/bin/env bash
# All tests, from a fresh clone: installs the pinned chain toolchain (npm), builds and tests the Solidity,
# checks the committed artifacts are fresh, installs the pinned official x402 SDKs for the interop tests (into a
# cache outside the clone), then rustfmt, clippy and every Rust test.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nerdcabal/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s\n' "$*"; }

step "pinned toolchain: npm ci in contracts/ (anvil, forge, cast 1.7.1; solc 0.8.37)"
(cd contracts && npm ci --no-audit --no-fund --loglevel=error)

step "forge build + committed artifacts are fresh"
(cd contracts && npm run --silent check-artifacts)

step "forge test"
(cd contracts && npm test --silent)

step "official x402 SDKs for tests/interop.rs (npm @x402/*, PyPI x402; pinned, cached)"
bash tests/interop/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace"
cargo test --workspace
