#!/usr/bin/env bash
# Three "hosts" in network namespaces (ip netns, veth, a bridge), each running batond under its
# own address with mutual TLS between the peers, and the venue (FIX broker, market feed and the
# backup feed) on a fourth; the cluster trades, and stays up for --hold seconds (default 600)
# so it can be looked at with batonctl (the addresses and token are printed). Ctrl-C stops
# everything and removes the namespaces. Needs root (CAP_NET_ADMIN). Nothing leaves the bridge:
# the namespaces have no default route.
#
#   cluster/netns/run.sh [--hold SECONDS]
#
# The same harness runs the partitions: cluster/netns/nemesis.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/opt/swift/usr/bin:$PATH"
[ "$(id -u)" -eq 0 ] || { echo "error: network namespaces need root" >&2; exit 1; }
deploy/install-build-deps.sh
hold=600
if [ "${1:-}" = "--hold" ]; then hold="${2:?--hold needs seconds}"; fi
echo "building…"
swift build --product batond >/dev/null
swift build --product baton-venue >/dev/null
swift build --product batonctl >/dev/null
swift build --product baton-bench >/dev/null
bin="$(swift build --show-bin-path)"
exec "$bin/baton-bench" nemesis --scenarios none --hold "$hold"
