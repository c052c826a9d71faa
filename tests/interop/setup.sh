#!/usr/bin/env bash
# Installs the official x402 SDKs used by the interop suite (tests/interop.rs)
# into a cache OUTSIDE the clone, so the work tree stays clean:
#
#   CACHE=${NERDCABAL_INTEROP_CACHE:-$HOME/.cache/nerdcabal/interop}
#   $CACHE/node/   package.json + package-lock.json, node_modules (npm ci),
#                  and a COPY of every tests/interop/*.mjs script
#   $CACHE/venv/   python venv with requirements.txt installed
#
# How the scripts are run (one approach, no NODE_PATH, no symlink in the clone):
#   node   "$CACHE/node/express_server.mjs" ...   # ESM resolves node_modules
#   node   "$CACHE/node/fetch_client.mjs" ...     # next to the copied script
#   "$CACHE/venv/bin/python" tests/interop/fastapi_server.py ...
#   "$CACHE/venv/bin/python" tests/interop/httpx_client.py ...
#
# Idempotent: npm ci runs only when package-lock.json's hash changed, pip only
# when requirements.txt's hash (or the python version) changed. The .mjs copies
# are refreshed on every run (cheap), so edits to the scripts are picked up.
# Concurrent runs are serialised with flock when it is available.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${NERDCABAL_INTEROP_CACHE:-$HOME/.cache/nerdcabal/interop}"
NODE_DIR="$CACHE/node"
VENV="$CACHE/venv"

log() { printf 'interop-setup: %s\n' "$*" >&2; }

for tool in node npm python3 sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || { log "missing required tool: $tool"; exit 1; }
done

mkdir -p "$NODE_DIR"

if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.setup.lock"
  flock 9
fi

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# --- node: official @x402/* packages --------------------------------------
node_hash="$(hash_of "$HERE/package.json" "$HERE/package-lock.json")"
node_stamp="$NODE_DIR/.installed-lock-sha256"
if [[ -d "$NODE_DIR/node_modules" && -f "$node_stamp" && "$(cat "$node_stamp")" == "$node_hash" ]]; then
  log "node packages up to date ($NODE_DIR)"
else
  log "installing node packages into $NODE_DIR (npm ci)"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$NODE_DIR/"
  rm -f "$node_stamp"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
  printf '%s\n' "$node_hash" >"$node_stamp"
  log "node packages installed"
fi
# Copy the ESM scripts next to node_modules (ESM ignores NODE_PATH).
for f in "$HERE"/*.mjs; do
  [[ -e "$f" ]] || continue
  dest="$NODE_DIR/$(basename "$f")"
  cmp -s "$f" "$dest" 2>/dev/null || cp "$f" "$dest"
done

# --- python: official x402 package ----------------------------------------
py_hash="$( { cat "$HERE/requirements.txt"; python3 -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
py_stamp="$VENV/.installed-requirements-sha256"
if [[ -x "$VENV/bin/python" && -f "$py_stamp" && "$(cat "$py_stamp")" == "$py_hash" ]]; then
  log "python venv up to date ($VENV)"
else
  if [[ -x "$VENV/bin/python" ]] && [[ "$("$VENV/bin/python" -c 'import sys; print(sys.version)')" != "$(python3 -c 'import sys; print(sys.version)')" ]]; then
    log "python3 changed; recreating $VENV"
    rm -rf "$VENV"
  fi
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating venv $VENV"
    python3 -m venv "$VENV"
  fi
  rm -f "$py_stamp"
  log "installing python packages into $VENV (pip install -r requirements.txt)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt" >&2
  printf '%s\n' "$py_hash" >"$py_stamp"
  log "python packages installed"
fi

log "ready: node scripts in $NODE_DIR, python at $VENV/bin/python"
