#!/usr/bin/env bash
# Builds the libFuzzer target for the peer frame decoder and runs it on the seed corpus.
#
#   Tests/Fuzz/run.sh                 # 60 s
#   MAX_TOTAL_TIME=600 Tests/Fuzz/run.sh
#   Tests/Fuzz/run.sh -runs=100000    # extra arguments go to libFuzzer
#
# RaftCore and BatonWire are compiled as modules with plain swiftc (no SwiftPM, no NIO), with
# coverage and AddressSanitizer instrumentation, into .build/fuzz/. New inputs found are written to
# .build/fuzz/corpus (the committed seeds in Tests/Fuzz/corpus/wire are only read); a crash writes a
# crash-* file into .build/fuzz/ and exits non-zero.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$root/.build/fuzz"
max_total_time="${MAX_TOTAL_TIME:-60}"
mkdir -p "$out/corpus"

flags=(-O -g -sanitize=fuzzer,address -parse-as-library -swift-version 6
    -enable-upcoming-feature ExistentialAny -enable-upcoming-feature InternalImportsByDefault)
lock=(flock /tmp/baton-swift-build.lock)
command -v flock >/dev/null || lock=()

cd "$out"
"${lock[@]}" swiftc "${flags[@]}" -module-name RaftCore -emit-module -emit-module-path "$out/RaftCore.swiftmodule" \
    -wmo -c "$root"/Sources/RaftCore/*.swift -o "$out/RaftCore.o"
"${lock[@]}" swiftc "${flags[@]}" -module-name BatonWire -I "$out" -emit-module -emit-module-path "$out/BatonWire.swiftmodule" \
    -wmo -c "$root"/Sources/BatonWire/*.swift -o "$out/BatonWire.o"
"${lock[@]}" swiftc "${flags[@]}" -module-name WireFrameFuzzer -I "$out" \
    "$root/Tests/Fuzz/WireFrameFuzzer.swift" "$out/RaftCore.o" "$out/BatonWire.o" -o "$out/wire-frame-fuzzer"

exec "$out/wire-frame-fuzzer" "$out/corpus" "$root/Tests/Fuzz/corpus/wire" \
    -max_total_time="$max_total_time" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$out/" -print_final_stats=1 "$@"
