#!/usr/bin/env bash
# Load harness: builds and runs internal/loadbench, which builds the daemon
# (pure Go and, when libssl-dev is installed, -tags openssl), measures it
# against a bare net/http baseline and the raw RSA decrypt rate on
# 127.0.0.1, and writes BENCHMARKS.md. Nothing leaves this machine.
#
#   scripts/load.sh                          # medians of 5 runs of 10 s (about 45 minutes)
#   scripts/load.sh -duration 5s             # 5 runs of 5 s (about 25 minutes)
#   scripts/load.sh -runs 1 -duration 2s     # short mode: a quick check (about 3 minutes)
#   scripts/load.sh -scenarios rich2048-100  # one scenario; -help lists the flags
#   scripts/load.sh -json runs.json          # also keep every run's numbers;
#   scripts/load.sh -from-json runs.json     # ... and re-render BENCHMARKS.md from them
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/loadbench" ./internal/loadbench
"$bin/loadbench" "$@"
