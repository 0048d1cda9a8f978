#!/usr/bin/env bash
# Renders every kustomization under k8s/ and validates each object it renders, offline: no
# cluster is needed or contacted. Prints one line per object checked; exits 0 when all pass,
# 1 naming the file, object and field of each failure, 2 when a tool is missing.
#
#   k8s/validate.sh            (from anywhere; it works from the repository's root)
#
# What it runs:
# 1. k8s/monitoring/generate-prometheusrule.sh --check: the PrometheusRule is what the script
#    generates from deploy/prometheus/baton-rules.yml today.
# 2. kustomize on k8s/overlays/three, k8s/overlays/five, k8s/cert-manager and k8s/monitoring.
#    The real kustomize: the `kustomize` binary if there is one, else the copy built into
#    kubectl (`kubectl kustomize`; kustomize v5 since kubectl 1.27). No YAML merging is done
#    by hand here. Debian bookworm packages neither a kustomize nor a kubectl recent enough
#    (its kubernetes-client is 1.20, with kustomize v2, which does not read these files), and
#    PyPI's "kustomize" is an unrelated Python project; this project's machines come with
#    kubectl 1.32 (kustomize v5.5). Without either, the script says so and stops.
# 3. k8s/validate_manifests.py on every rendered object and on k8s/examples/*.yaml:
#    built-in kinds with kubernetes-validate --strict semantics against Kubernetes
#    $KUBERNETES_VERSION; cert-manager and Prometheus Operator kinds (CRDs, for which
#    kubernetes-validate has no schema and only prints a warning) against subset schemas kept
#    in that script; any other kind fails. Then the cross-object checks no schema can make
#    (replicas = members = certificates, the names each certificate carries).
#
# kubernetes-validate is pinned (KUBERNETES_VALIDATE_VERSION, the same pin as
# deploy/install-build-deps.sh, which installs it with BATON_TEST_DEPS=1).
set -euo pipefail
cd "$(dirname "$0")/.."

# The oldest Kubernetes these manifests are meant for: every field used exists there
# (appArmorProfile needs 1.30, StatefulSet PVC retention 1.32 GA). Validating against the
# oldest supported version catches a field that only a newer API server would accept.
KUBERNETES_VERSION=1.33.0
KUBERNETES_VALIDATE_VERSION=1.37.0

fail_tool() {
    echo "error: $1" >&2
    exit 2
}

if command -v kustomize >/dev/null 2>&1; then
    render() { kustomize build "$1"; }
    renderer="kustomize $(kustomize version 2>/dev/null | head -1)"
elif command -v kubectl >/dev/null 2>&1 && kubectl version --client 2>/dev/null | grep -q 'Kustomize Version: v[5-9]'; then
    render() { kubectl kustomize "$1"; }
    renderer="kubectl kustomize ($(kubectl version --client 2>/dev/null | grep 'Kustomize Version' | sed 's/.*: //'))"
else
    fail_tool "no kustomize v5: install the kustomize binary or kubectl 1.27 or newer (kubectl kustomize)"
fi

installed=$(python3 -c 'import kubernetes_validate; print(kubernetes_validate.__version__)' 2>/dev/null) ||
    fail_tool "kubernetes-validate is not installed: BATON_TEST_DEPS=1 deploy/install-build-deps.sh"
[ "$installed" = "$KUBERNETES_VALIDATE_VERSION" ] ||
    fail_tool "kubernetes-validate $installed is installed, this script is pinned to $KUBERNETES_VALIDATE_VERSION: BATON_TEST_DEPS=1 deploy/install-build-deps.sh"

echo "validating k8s/ with $renderer and kubernetes-validate $installed against Kubernetes $KUBERNETES_VERSION"

k8s/monitoring/generate-prometheusrule.sh --check
echo "ok    k8s/monitoring             prometheusrule.yaml                            up to date with deploy/prometheus/baton-rules.yml"

rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT

inputs=()
for dir in k8s/overlays/three k8s/overlays/five k8s/cert-manager k8s/monitoring; do
    out="$rendered/$(basename "$dir").yaml"
    if ! render "$dir" >"$out" 2>"$out.err"; then
        echo "FAIL  $dir: kustomize could not render it:" >&2
        cat "$out.err" >&2
        exit 1
    fi
    inputs+=("$dir=$out")
done
for file in k8s/examples/*.yaml; do
    inputs+=("$file=$file")
done

python3 k8s/validate_manifests.py --kubernetes-version "$KUBERNETES_VERSION" "${inputs[@]}"
