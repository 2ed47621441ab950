#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up (idempotent), then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$(pwd)/tools/bin:$(pwd)/bin:$PATH"
npx mocha
