#!/usr/bin/env bash
# Jepsen-style partitions on the network-namespace cluster (cluster/netns/run.sh's hosts) while
# orders flow: the leader cut off from its peers, from the broker, split 1|2 and 2|1, a one-way
# cut, flapping; each healed, then the chaos audit (every intent's fate at the venue, duplicates,
# positions, journals). Prints each scenario's figures and PASS or FAIL; bounded: about
# (cut + 3 s) per scenario and round, plus the audit. Needs root. Release build.
#
#   cluster/netns/nemesis.sh [--rounds N] [--cut SECONDS] [--scenarios a,b,…]
#
# A reduced set runs in CI (NemesisProcessTests). Loss and delay (tc netem) are not part of it:
# this machine kind's kernel has no sch_netem (doc/deployment.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/opt/swift/usr/bin:$PATH"
[ "$(id -u)" -eq 0 ] || { echo "error: network namespaces need root" >&2; exit 1; }
deploy/install-build-deps.sh
echo "building (release)…"
swift build -c release --product batond >/dev/null
swift build -c release --product baton-venue >/dev/null
swift build -c release --product baton-bench >/dev/null
exec "$(swift build -c release --show-bin-path)/baton-bench" nemesis "$@"
