#!/usr/bin/env bash
# Builds Baton, starts the venue simulator (FIX broker + market feed, and a second feed as the
# backup) and a three-replica cluster on loopback that trades the MA crossover on it, shows who
# leads and what it trades, and stops everything cleanly on Ctrl-C. Data and logs go to
# cluster/local/data/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/opt/swift/usr/bin:$PATH"

deploy/install-build-deps.sh
echo "building…"
swift build --product batond >/dev/null
swift build --product batonctl >/dev/null
swift build --product baton-venue >/dev/null
bin="$(swift build --show-bin-path)"

# Every run starts afresh: the venue keeps its book and sessions in data/venue-state.jsonl (so it
# survives its own kill -9 within a run), and the journals must match that venue.
rm -rf cluster/local/data
mkdir -p cluster/local/data
export BATON_ADMIN_TOKEN="${BATON_ADMIN_TOKEN:-local-demo-token-change-me}"
pids=()
venue_pids=()
stop() {
    echo
    echo "stopping replicas (SIGTERM: a leader hands over first)…"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for pid in "${venue_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${venue_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    echo "stopped."
}
trap stop INT TERM

# The venue simulator: FIX 4.4 acceptor on 9878, market feed and inspection API on 9880; a
# second instance with the same seed serves the backup feed on 9881.
venue_args=(--seed 42 --symbols AAPL,MSFT,EURUSD --start-prices AAPL=187.25,MSFT=411.10,EURUSD=1.0842 --tick-rate 200)
"$bin/baton-venue" --fix-port 9878 --http-port 9880 --state-file cluster/local/data/venue-state.jsonl "${venue_args[@]}" \
    >cluster/local/data/venue.log 2>&1 &
venue_pids+=($!)
"$bin/baton-venue" --feed-only --http-port 9881 "${venue_args[@]}" >cluster/local/data/backup-feed.log 2>&1 &
venue_pids+=($!)
echo "venue: FIX 127.0.0.1:9878, feed ws://127.0.0.1:9880/feed (backup :9881), orders http://127.0.0.1:9880/orders"
for _ in $(seq 1 100); do
    curl -sf http://127.0.0.1:9880/healthz >/dev/null 2>&1 && break
    sleep 0.1
done

for n in 1 2 3; do
    "$bin/batond" --config "cluster/local/n$n.yaml" >"cluster/local/data/n$n.log" 2>&1 &
    pids+=($!)
    echo "replica n$n: pid ${pids[-1]}, admin http://127.0.0.1:720$n, log cluster/local/data/n$n.log"
done

echo "waiting for a leader…"
for _ in $(seq 1 100); do
    if "$bin/batonctl" status 2>/dev/null | grep -qE "^n[0-9]+ +leader "; then break; fi
    sleep 0.1
done
"$bin/batonctl" status || true
sleep 3
echo
"$bin/batonctl" trading || true
echo
"$bin/batonctl" orders --limit 5 || true
echo
"$bin/batonctl" positions || true
cat <<HINT

The leader trades the MA(10)/MA(30) crossover on AAPL and MSFT; followers shadow the feed.
Try, in another terminal (BATON_ADMIN_TOKEN=$BATON_ADMIN_TOKEN):
  $bin/batonctl status                 # who leads
  $bin/batonctl trading                # phase, broker session, feed source on every replica
  $bin/batonctl orders                 # the journal's orders; positions: batonctl positions
  curl -s http://127.0.0.1:9880/stats  # the venue's own record (duplicateAttempts stays 0)
  kill -9 <leader pid>                 # a new leader reconciles with the venue and trades on
  curl -s -XPOST http://127.0.0.1:9880/admin/feed/pause -d '{"seconds": 3}'   # feed fails over to the backup
  $bin/batonctl transfer-leadership
Ctrl-C stops everything.
HINT
wait "${pids[@]}"
