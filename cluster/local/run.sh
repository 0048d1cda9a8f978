#!/usr/bin/env bash
# Builds Baton, starts a three-replica cluster on loopback, shows who leads, and stops every
# replica cleanly on Ctrl-C. Data and logs go to cluster/local/data/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/opt/swift/usr/bin:$PATH"

deploy/install-build-deps.sh
echo "building…"
swift build --product batond >/dev/null
swift build --product batonctl >/dev/null
bin="$(swift build --show-bin-path)"

mkdir -p cluster/local/data
export BATON_ADMIN_TOKEN="${BATON_ADMIN_TOKEN:-local-demo-token-change-me}"
pids=()
stop() {
    echo
    echo "stopping replicas (SIGTERM: a leader hands over first)…"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    echo "stopped."
}
trap stop INT TERM

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
cat <<HINT

Try, in another terminal (BATON_ADMIN_TOKEN=$BATON_ADMIN_TOKEN):
  $bin/batonctl status
  $bin/batonctl propose --count 100
  $bin/batonctl transfer-leadership
  kill -9 <leader pid>     # and watch 'batonctl status' show a new leader within a second
Ctrl-C stops all three.
HINT
wait
