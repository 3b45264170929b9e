#!/usr/bin/env bash
# Build the page in release mode and serve it on http://127.0.0.1:8080 (Ctrl-C stops it).
#
#   ./scripts/demo.sh [WEIGHTS]
#
# With WEIGHTS (a SAM .pth or safetensors file), the file is served beside the page and the
# page loads it by itself on the first visit (then from browser storage).
set -euo pipefail
cd "$(dirname "$0")/.."
weights="${1:-}"
if [ -n "$weights" ] && [ ! -f "$weights" ]; then
  echo "demo: $weights is not a file; give the path of SAM weights (.pth or .safetensors)" >&2
  exit 2
fi
bash scripts/setup.sh
source scripts/env.sh
# trunk re-runs wasm-bindgen and wasm-opt (minutes) on every build: skip it when dist/ is
# newer than every source.
if [ -f dist/index.html ] && [ -z "$(find src www index.html Cargo.toml Cargo.lock Trunk.toml scripts/csp.py -newer dist/index.html -print -quit)" ]; then
  echo "dist/ is up to date with the sources: not rebuilding"
else
  trunk build --release
fi
rm -rf dist/weights
cp www/config.json dist/config.json
if [ -n "$weights" ]; then
  name="$(basename "$weights")"
  mkdir -p dist/weights
  ln -f "$weights" "dist/weights/$name" 2>/dev/null || cp "$weights" "dist/weights/$name"
  printf '{ "weights": "weights/%s" }\n' "$name" > dist/config.json
  echo "The page loads weights/$name by itself."
fi
echo
echo "Serving the page at http://127.0.0.1:8080/ (Ctrl-C to stop)"
python3 -m http.server 8080 --bind 127.0.0.1 --directory dist &
server=$!
# When the server stops (Ctrl-C, kill), dist/ goes back to serving no weights: a later
# server of dist/ must not load these by itself.
trap 'kill "$server" 2>/dev/null; rm -rf dist/weights; cp www/config.json dist/config.json' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
wait "$server"
