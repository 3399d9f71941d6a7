#!/usr/bin/env bash
# Load harness: builds cmd/receiver, cmd/graphsim and examples/nethttp,
# starts them on 127.0.0.1, and drives them with `graphsim load`, REPEAT
# times per scenario, printing medians and ratios. Everything stops by
# itself; nothing leaves this machine.
#
#   scripts/load.sh                 # 3 repeats of 10 s
#   REPEAT=5 DURATION=20s scripts/load.sh
#
# Scenarios:
#   core      examples/nethttp: the receiver core with a no-op sink (baseline)
#   daemon    cmd/receiver: the same batches, published to embedded
#             JetStream and acknowledged before 202
#   rich      cmd/receiver: encrypted batches with validationTokens
#             (RSA-2048 key, tokens checked against graphsim's JWKS)
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-3}
DURATION=${DURATION:-10s}
CONC=${CONC:-4}
BATCH=${BATCH:-10}
RICH_BATCH=${RICH_BATCH:-100}
RICH_CONC=${RICH_CONC:-4}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

wait_http() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not up: $1" >&2; exit 1; }

echo "building..."
go build -o "$work/receiver" ./cmd/receiver
go build -o "$work/graphsim" ./cmd/graphsim
go build -o "$work/nethttp" ./examples/nethttp

p_core=$((21000 + RANDOM % 1000)); p_recv=$((p_core + 1)); p_nats=$((p_core + 2)); p_sim=$((p_core + 3))
app=5f6b5c4e-1d1f-4a4e-9c7d-7a6f2b0c9e11

GRAPH_CLIENT_STATE=load-secret "$work/nethttp" -listen 127.0.0.1:$p_core >/dev/null 2>&1 & pids+=($!)
"$work/graphsim" serve --listen 127.0.0.1:$p_sim >"$work/sim.log" 2>&1 & pids+=($!)
"$work/receiver" keygen --out "$work/keys" --id key-1 >/dev/null
wait_http "http://127.0.0.1:$p_sim/common/discovery/v2.0/keys"
"$work/receiver" --listen 127.0.0.1:$p_recv --embedded-nats-listen 127.0.0.1:$p_nats --data-dir "$work/data" \
  --client-state load-secret --key "$work/keys/key.pem,id=key-1" --app-id $app \
  --jwks-url "http://127.0.0.1:$p_sim/common/discovery/v2.0/keys" --log-level error >"$work/recv.log" 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$p_recv/readyz"
wait_http "http://127.0.0.1:$p_core/"

field() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" | head -1; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

run() { # name, then graphsim load arguments
  local name=$1; shift
  : >"$work/$name.rate"; : >"$work/$name.p99"; : >"$work/$name.err"
  for _ in $(seq "$REPEAT"); do
    "$work/graphsim" load --client-state load-secret --duration "$DURATION" --json "$@" >"$work/out.json"
    field notificationsPerSecond <"$work/out.json" >>"$work/$name.rate"
    field p99Ms <"$work/out.json" >>"$work/$name.p99"
    field errors <"$work/out.json" >>"$work/$name.err"
  done
  printf '%-8s median %10.0f notifications/s   p99 %8.2f ms   errors %s\n' "$name" \
    "$(median <"$work/$name.rate")" "$(median <"$work/$name.p99")" "$(awk "{s+=\$1} END {print s+0}" "$work/$name.err")"
}

echo "scenario: $REPEAT x $DURATION each, basic: concurrency $CONC batch $BATCH; rich: concurrency $RICH_CONC batch $RICH_BATCH"
run core   --url "http://127.0.0.1:$p_core/notifications" --concurrency "$CONC" --batch "$BATCH"
run daemon --url "http://127.0.0.1:$p_recv/notifications" --concurrency "$CONC" --batch "$BATCH"
run rich   --sim "http://127.0.0.1:$p_sim" --url "http://127.0.0.1:$p_recv/notifications" --app-id $app \
           --rich --cert "$work/keys/key.pem" --cert-id key-1 --concurrency "$RICH_CONC" --batch "$RICH_BATCH"
awk -v d="$(median <"$work/daemon.rate")" -v c="$(median <"$work/core.rate")" \
  'BEGIN { printf "daemon/core throughput ratio: %.2f (the cost of JetStream acks before 202)\n", d / c }'
