#!/usr/bin/env bash
# Runs every baton-bench benchmark in one go, as reported in doc/benchmarks.md:
#   the disk's fsync floor, commit throughput/latency for Baton and etcd (same run),
#   failover after kill -9 of the leader, and planned leadership transfer.
#
# Usage: cluster/bench/run.sh [--quick]
#   --quick            short levels and few rounds, to check that everything works (not for the doc)
#   BENCH_WORK_DIR     where scratch data dirs go (default /tmp; the fsync floor is measured there too)
#   BENCH_RESULTS      where the text and JSON results, the replica logs of the commit run and
#                      cpu-samples.txt (top every 5 s) go (default /tmp/baton-bench-results-<time>)
#
# The machine has few cores and is shared: builds and the measurement both hold
# /tmp/baton-swift-build.lock, so nobody compiles while the numbers are taken.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/opt/swift/usr/bin:$PATH"
lock=/tmp/baton-swift-build.lock

quick=false
[[ "${1:-}" == "--quick" ]] && quick=true

work="${BENCH_WORK_DIR:-/tmp}"
results="${BENCH_RESULTS:-/tmp/baton-bench-results-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$results"

if ! command -v etcd >/dev/null; then
    echo "etcd is missing: install Debian's etcd-server (apt-get install -y etcd-server)" >&2
    exit 1
fi

echo "building batond and baton-bench (release)…"
flock "$lock" swift build -c release --product batond >/dev/null
flock "$lock" swift build -c release --product baton-bench >/dev/null
bin="$(swift build -c release --show-bin-path)"

if $quick; then
    fsync=(--count 200)
    commit=(--rates 100,500 --clients 1,8 --seconds 2 --warmup 1)
    failover=(--kills 3)
    transfer=(--count 3)
else
    fsync=(--count 2000)
    commit=(--rates 100,500,1000,2000 --clients 1,8,32,64 --seconds 10 --warmup 2)
    failover=(--kills 50)
    transfer=(--count 50)
fi

# Hold the build lock for the whole measurement. The benchmarks run with fd 9 closed, so no
# replica they start can keep the lock after the script ends.
exec 9>"$lock"
echo "waiting for $lock (no Swift build may run during the measurement)…"
flock 9
# `swift test --skip-build` does not build, so it may run without the lock; wait (at most 10 min)
# until no test run is using the CPU.
for _ in $(seq 300); do
    pgrep -f '\.xctest|swift-test' >/dev/null || break
    echo "waiting for a running swift test to finish…"
    sleep 2
done
{
    changes="$(git diff --quiet HEAD -- Sources || echo '+changes')"
    echo "# baton-bench $(date -u +%Y-%m-%dT%H:%M:%SZ) at $(git rev-parse --short HEAD)$changes"
    echo "# $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(. /etc/os-release && echo "$PRETTY_NAME")," \
        "$(swift --version 2>/dev/null | head -1)"
    echo "# $(etcd --version | head -1), kernel $(uname -r)," \
        "$(df -T "$work" | awk 'NR==2 {print $2 " on " $1}') for $work"
} | tee "$results/summary.txt"

# What else used the CPU during the measurement (the machine is shared; a test run that does not
# take the lock shows up here). One top snapshot every 5 s.
sample_cpu() {
    while true; do
        { date -u +%T; top -b -n 1 -o %CPU | sed -n '7,13p' | cut -c1-120; } >>"$results/cpu-samples.txt"
        sleep 5
    done
}
sample_cpu 9>&- &
sampler=$!
trap 'kill "$sampler" 2>/dev/null || true' EXIT

"$bin/baton-bench" fsync --dir "$work" "${fsync[@]}" --json "$results/fsync.json" 9>&- | tee -a "$results/summary.txt"
"$bin/baton-bench" commit --target baton,etcd --batond "$bin/batond" --work-dir "$work" "${commit[@]}" \
    --json "$results/commit.json" --logs "$results/logs" 9>&- | tee -a "$results/summary.txt"
"$bin/baton-bench" failover --batond "$bin/batond" --work-dir "$work" "${failover[@]}" \
    --json "$results/failover.json" 9>&- | tee -a "$results/summary.txt"
"$bin/baton-bench" transfer --batond "$bin/batond" --work-dir "$work" "${transfer[@]}" \
    --json "$results/transfer.json" 9>&- | tee -a "$results/summary.txt"

echo "results in $results"
