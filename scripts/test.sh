#!/usr/bin/env bash
# The whole test suite from a fresh machine: dependencies, type check and lint, a Docker engine with the
# locally built images, then unit tests (Pulumi mocks) and live tests (real containers), one file at a time.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npx tsc --noEmit
npx eslint .
bash scripts/prepare-machine.sh

results=$(mktemp -d)
status=0
npx vitest run --project unit --reporter=verbose --reporter=json --outputFile.json="$results/unit.json" || status=1
# Live tests must run here: a missing engine fails them instead of skipping them.
HADB_REQUIRE_LIVE=1 TESTCONTAINERS_RYUK_DISABLED=true \
  npx vitest run --project live --reporter=verbose --reporter=json --outputFile.json="$results/live.json" || status=1
node scripts/summarize-tests.mjs "$results"/*.json
exit $status
