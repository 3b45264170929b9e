#!/usr/bin/env bash
# Every test of the project: formatting, lints on both targets, the native tests, the wasm
# tests in headless Chromium with WebGPU, and the end-to-end tests of the built page.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh

step() { echo; echo "==> $*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (native)"
cargo clippy --all-targets -- -D warnings

step "clippy (wasm32)"
cargo clippy --all-targets --target wasm32-unknown-unknown -- -D warnings

step "native tests"
cargo test --no-fail-fast

step "wasm tests in headless Chromium (WebGPU on SwiftShader)"
wasm-pack test --headless --chrome --mode no-install

step "build the page (trunk, release)"
trunk build --release

step "end-to-end tests of the page in headless Chromium"
(cd tests/e2e && node --test --test-reporter=spec ./*.test.mjs)
echo
echo "All tests passed."
