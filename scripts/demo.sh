#!/usr/bin/env bash
# Build the page in release mode and serve it on http://127.0.0.1:8080 (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
trunk build --release
echo
echo "Serving the page at http://127.0.0.1:8080/ (Ctrl-C to stop)"
exec python3 -m http.server 8080 --bind 127.0.0.1 --directory dist
