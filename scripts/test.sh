#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up (idempotent), then every test under coverage
# (c8; summary printed, HTML report in coverage/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$(pwd)/tools/bin:$(pwd)/bin:$PATH"
rm -f .test-summary
status=0
# The linter and the formatter first: a finding fails the run, after the tests have run too.
npm run --silent lint || status=$?
npm run --silent coverage || status=$?
# Repeat mocha's closing line last, after the coverage summary.
[ -f .test-summary ] && cat .test-summary
exit $status
