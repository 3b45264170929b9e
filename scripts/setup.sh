#!/usr/bin/env bash
# Installs everything the demo and the tests need, pinned and idempotently.
# Only package registries are used: crates.io, npm, Debian; plus rustup's target.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen crate in Cargo.lock
WASM_PACK_VERSION=0.15.1
TRUNK_VERSION=0.21.14
BINARYEN_VERSION=132.0.0       # npm package; Debian's binaryen 108 breaks the externref table

say() { echo "[setup] $*"; }

have_version() { # binary, expected substring of --version
  command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -qF "$2"
}

apt_packages=(chromium chromium-driver mesa-vulkan-drivers libvulkan1 pkg-config)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "rustup: adding wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

if ! have_version wasm-bindgen "$WASM_BINDGEN_VERSION"; then
  # --locked fails: one locked dependency version is no longer served.
  say "cargo: installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 3 min)"
  cargo install -q --force wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION"
fi

if ! have_version wasm-pack "$WASM_PACK_VERSION"; then
  say "cargo: installing wasm-pack $WASM_PACK_VERSION (about 2 min)"
  cargo install -q --force --locked wasm-pack --version "=$WASM_PACK_VERSION"
fi

if ! have_version trunk "$TRUNK_VERSION"; then
  say "cargo: installing trunk $TRUNK_VERSION (about 7 min)"
  cargo install -q --force --locked trunk --version "=$TRUNK_VERSION"
fi

tools=.tools
if [ ! -x "$tools/node_modules/.bin/wasm-opt" ] \
  || ! grep -q "\"version\": \"$BINARYEN_VERSION\"" "$tools/node_modules/binaryen/package.json"; then
  say "npm: installing binaryen $BINARYEN_VERSION (wasm-opt)"
  mkdir -p "$tools"
  npm install --silent --no-audit --no-fund --prefix "$tools" "binaryen@$BINARYEN_VERSION" >/dev/null
fi
if [ ! -d tests/e2e/node_modules/playwright-core ]; then
  say "npm: installing the end-to-end test driver (playwright-core, no browser download)"
  (cd tests/e2e && npm ci --silent --no-audit --no-fund >/dev/null)
fi
say "ready"
