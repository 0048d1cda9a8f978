#!/usr/bin/env bash
# Builds the libFuzzer targets and runs one of them (or each in turn) on its seed corpus.
#
#   Tests/Fuzz/run.sh                 # wire, 60 s (the peer frame decoder)
#   Tests/Fuzz/run.sh tick            # market-data line codec + feed monitor
#   Tests/Fuzz/run.sh fix             # FIX 4.4 decoder, session, typed messages, validation
#   Tests/Fuzz/run.sh config          # batond's configuration loader (YAML, environment, tokens file)
#   Tests/Fuzz/run.sh admin           # the admin plane's JSON request bodies and their checks
#   Tests/Fuzz/run.sh all             # each of them in turn, MAX_TOTAL_TIME seconds each
#   MAX_TOTAL_TIME=600 Tests/Fuzz/run.sh fix
#   Tests/Fuzz/run.sh tick -runs=100000   # extra arguments go to libFuzzer
#
# The modules are compiled with plain swiftc (no SwiftPM, no NIO), with coverage and
# AddressSanitizer instrumentation, into .build/fuzz/ (`config` also compiles swift-log and Yams,
# C part included, from the SwiftPM checkouts in .build/checkouts: `swift package resolve` first).
# New inputs found are written to .build/fuzz/corpus-<target> (the committed corpus in
# Tests/Fuzz/corpus/<target> is only read); a crash writes a <target>-crash-* file into
# .build/fuzz/ and makes the script exit non-zero (with `all`, after the remaining targets have
# had their turn, so one known crash does not hide others).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# FUZZ_ASAN=0 builds without AddressSanitizer, into .build/fuzz-fast/: Swift's own checks
# (overflow, bounds, unwrapping, preconditions) still trap and coverage still guides, at several
# times the executions per second, for long campaigns. ASan adds what only unsafe pointers and
# C (libyaml) can get wrong; the default build keeps it.
asan="${FUZZ_ASAN:-1}"
if [[ $asan == 0 ]]; then
    out="$root/.build/fuzz-fast"
    sanitizers=fuzzer
    c_sanitizers=fuzzer-no-link
else
    out="$root/.build/fuzz"
    sanitizers=fuzzer,address
    c_sanitizers=fuzzer-no-link,address
fi
max_total_time="${MAX_TOTAL_TIME:-60}"
targets=(wire tick fix config admin)

target=wire
if [[ $# -gt 0 && $1 != -* ]]; then
    target="$1"
    shift
fi
case "$target" in
    all) selected=("${targets[@]}") ;;
    wire | tick | fix | config | admin) selected=("$target") ;;
    *)
        echo "usage: $0 [wire|tick|fix|config|admin|all] [libFuzzer arguments…]" >&2
        exit 2
        ;;
esac
mkdir -p "$out"
# Before there were several targets the wire corpus was .build/fuzz/corpus: keep what it found.
if [[ -d "$out/corpus" && ! -e "$out/corpus-wire" ]]; then mv "$out/corpus" "$out/corpus-wire"; fi

flags=(-O -g -sanitize=$sanitizers -parse-as-library -swift-version 6
    -enable-upcoming-feature ExistentialAny -enable-upcoming-feature InternalImportsByDefault)
# Another `swift build` may be running on this machine: one compiler at a time.
lock=(flock /tmp/baton-swift-build.lock)
command -v flock >/dev/null || lock=()

cd "$out"

# module NAME FILE…: one Sources/ target (or the part of it the fuzzer needs) as a module.
declare -A built=()
module() {
    local name="$1"
    shift
    # With `all`, modules two targets share (RaftCore, BatonMarketData) are compiled once.
    [[ -n ${built[$name]:-} ]] && return
    built[$name]=1
    "${lock[@]}" swiftc "${flags[@]}" -module-name "$name" -I "$out" -emit-module -emit-module-path "$out/$name.swiftmodule" \
        -wmo -c "$@" -o "$out/$name.o"
}

# fuzzer NAME SOURCE OBJECT…: links a target against the modules it imports.
fuzzer() {
    local name="$1" source="$2"
    shift 2
    "${lock[@]}" swiftc "${flags[@]}" -module-name "$(basename "$source" .swift)" -I "$out" "$source" "$@" -o "$out/$name"
}

build_wire() {
    module RaftCore "$root"/Sources/RaftCore/*.swift
    module BatonWire "$root"/Sources/BatonWire/*.swift
    fuzzer wire-frame-fuzzer "$root/Tests/Fuzz/WireFrameFuzzer.swift" "$out/RaftCore.o" "$out/BatonWire.o"
}

build_tick() {
    module BatonMarketData "$root"/Sources/BatonMarketData/*.swift
    # BatonFeed without MarketFeedClient.swift, the WebSocket shell (Hummingbird, NIO): the
    # monitor it drives is a pure state machine, and the other files are plain Swift too.
    local feed=()
    for file in "$root"/Sources/BatonFeed/*.swift; do
        [[ "$(basename "$file")" == MarketFeedClient.swift ]] || feed+=("$file")
    done
    module BatonFeed "${feed[@]}"
    fuzzer tick-feed-fuzzer "$root/Tests/Fuzz/TickFeedFuzzer.swift" "$out/BatonMarketData.o" "$out/BatonFeed.o"
}

build_fix() {
    module_fix
    fuzzer fix-session-fuzzer "$root/Tests/Fuzz/FIXSessionFuzzer.swift" "$out/BatonFIX.o"
}

module_fix() {
    [[ -n ${built_fix:-} ]] && return
    built_fix=1
    # BatonFIX loads its FIX 4.4 dictionary through Bundle.module, which SwiftPM generates for a
    # target with resources. Generate the same accessor here, and lay the resources out next to
    # the executable the way SwiftPM does (<package>_<target>.resources), so Sources/ stays as is.
    rm -rf "$out/Baton_BatonFIX.resources"
    mkdir -p "$out/Baton_BatonFIX.resources"
    cp "$root"/Sources/BatonFIX/Resources/* "$out/Baton_BatonFIX.resources/"
    cat >"$out/BatonFIX_resource_bundle_accessor.swift" <<'EOF'
// Generated by Tests/Fuzz/run.sh: what SwiftPM would generate for BatonFIX's resources.
import Foundation

extension Foundation.Bundle {
    static let module: Bundle = {
        let url = Bundle.main.bundleURL.appendingPathComponent("Baton_BatonFIX.resources")
        guard let bundle = Bundle(url: url) else { fatalError("BatonFIX resources missing at \(url.path)") }
        return bundle
    }()
}
EOF
    module BatonFIX "$root"/Sources/BatonFIX/*.swift "$out/BatonFIX_resource_bundle_accessor.swift"
}

# dependency NAME SWIFT-VERSION FILE…: a package from .build/checkouts, in its own language mode.
dependency() {
    local name="$1" version="$2"
    shift 2
    "${lock[@]}" swiftc -O -g -sanitize=$sanitizers -parse-as-library -swift-version "$version" \
        -module-name "$name" -package-name "$name" -I "$out" -emit-module -emit-module-path "$out/$name.swiftmodule" \
        -wmo -c "$@" -o "$out/$name.o"
}

build_config() {
    local checkouts="$root/.build/checkouts"
    if [[ ! -d $checkouts/Yams/Sources/CYaml || ! -d $checkouts/swift-log/Sources/Logging ]]; then
        echo "config needs the Yams and swift-log checkouts: run \`swift package resolve\` first" >&2
        exit 2
    fi
    module RaftCore "$root"/Sources/RaftCore/*.swift
    module BatonMarketData "$root"/Sources/BatonMarketData/*.swift
    module_fix
    # The alert plane's values (QuietHours), Foundation only.
    module BatonAlerting "$root"/Sources/BatonAlerting/*.swift
    # BatonFIXNIO is the NIO shell of the FIX session; the loader only needs FIXTLSSettings,
    # declared in FIXInitiatorOptions.swift, which imports nothing but BatonFIX.
    module BatonFIXNIO "$root/Sources/BatonFIXNIO/FIXInitiatorOptions.swift"
    dependency Logging 6 "$checkouts"/swift-log/Sources/Logging/*.swift "$checkouts"/swift-log/Sources/Logging/Handlers/*.swift
    # Yams: libyaml (CYaml, C) instrumented like the rest, then its Swift layer.
    local cyaml="$checkouts/Yams/Sources/CYaml" cyaml_objects=()
    for file in "$cyaml"/src/*.c; do
        "${lock[@]}" clang -O1 -g -fsanitize=$c_sanitizers -DYAML_DECLARE_EXPORT -I "$cyaml/include" \
            -c "$file" -o "$out/CYaml-$(basename "$file" .c).o"
        cyaml_objects+=("$out/CYaml-$(basename "$file" .c).o")
    done
    dependency Yams 5 -D SWIFT_PACKAGE -I "$cyaml/include" "$checkouts"/Yams/Sources/Yams/*.swift
    # BatonDaemon as far as the loader goes: Configuration.swift, and from AdminAccess.swift the
    # declarations before AuthFailureLimiter (roles, credentials, the tokens file, SecretFile);
    # what follows is Hummingbird/NIO. Crypto's SHA256, which AdminCredential hashes tokens with,
    # is Tests/Fuzz/SHA256.swift (swift-crypto is BoringSSL underneath, a large C build).
    local access="$out/AdminAccess-credentials.swift"
    awk '
        /^public final class AuthFailureLimiter/ { found = 1; exit }
        /^(public )?import (Crypto|Hummingbird|NIOCore)$/ { next }
        { print }
        END { exit found ? 0 : 1 }
    ' "$root/Sources/BatonDaemon/AdminAccess.swift" >"$access" || {
        echo "AdminAccess.swift no longer has AuthFailureLimiter where build_config cuts it: update run.sh" >&2
        exit 2
    }
    module BatonDaemon "$root/Sources/BatonDaemon/Configuration.swift" "$access" "$root/Tests/Fuzz/SHA256.swift"
    fuzzer config-fuzzer "$root/Tests/Fuzz/ConfigFuzzer.swift" "$out/BatonDaemon.o" "$out/BatonAlerting.o" "$out/BatonFIXNIO.o" \
        "$out/BatonFIX.o" "$out/BatonMarketData.o" "$out/RaftCore.o" "$out/Logging.o" "$out/Yams.o" "${cyaml_objects[@]}"
}

build_admin() {
    # AdminRequestBodies.swift needs Foundation and BatonFIX's FIXDecimal: compiled with
    # FIXValues.swift into the harness's own module (BATON_FUZZ_ADMIN drops its `import
    # BatonFIX`), so the fuzzer sees its internal types as the routes do.
    fuzzer admin-bodies-fuzzer "$root/Tests/Fuzz/AdminBodiesFuzzer.swift" "$root/Sources/BatonDaemon/AdminRequestBodies.swift" \
        "$root/Sources/BatonFIX/FIXValues.swift" -D BATON_FUZZ_ADMIN
}

# run TARGET EXECUTABLE [libFuzzer arguments…]
run() {
    local name="$1" executable="$2"
    shift 2
    local extra=()
    # A dictionary of the format's tokens (tags, separators) saves the fuzzer from guessing them.
    [[ -f "$root/Tests/Fuzz/$name.dict" ]] && extra+=(-dict="$root/Tests/Fuzz/$name.dict")
    # The FIX dictionary (a static, built once) keeps its members in enums whose payload pointers
    # carry Swift's tag bits, which LeakSanitizer cannot follow: it reports the whole dictionary
    # as leaked on the first input. ARC leaves little else to leak, so LeakSanitizer is off there.
    local asan="${ASAN_OPTIONS:-}"
    [[ $name == fix ]] && asan="detect_leaks=0${asan:+:$asan}"
    mkdir -p "$out/corpus-$name"
    # Swift's own backtracer would read the crashed process's memory, which ASan reports as a
    # second, unrelated crash that hides the first; libFuzzer's stack trace says all we need.
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="$asan" "$out/$executable" "$out/corpus-$name" "$root/Tests/Fuzz/corpus/$name" \
        -max_total_time="$max_total_time" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/$name-" -print_final_stats=1 "${extra[@]}" "$@"
}

declare -A executables=([wire]=wire-frame-fuzzer [tick]=tick-feed-fuzzer [fix]=fix-session-fuzzer
    [config]=config-fuzzer [admin]=admin-bodies-fuzzer)
for name in "${selected[@]}"; do "build_$name"; done
failed=()
for name in "${selected[@]}"; do
    echo "=== $name: ${executables[$name]} for ${max_total_time} s" >&2
    run "$name" "${executables[$name]}" "$@" || failed+=("$name")
done
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "crashed: ${failed[*]} (see $out/<target>-crash-*)" >&2
    exit 1
fi
