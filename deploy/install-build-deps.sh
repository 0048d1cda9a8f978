#!/usr/bin/env bash
# Installs the Debian packages Baton needs to build and test, if they are missing. Idempotent;
# used by the README's commands and by .ci/run. Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(pkg-config libsqlite3-dev libsystemd-dev libssl-dev)
if [ "${BATON_TEST_DEPS:-0}" = "1" ]; then
    # Test-only tools: systemd-analyze verifies the unit file; QuickFIX's executor example (a
    # real FIX 4.4 engine, from libquickfix-doc, running on libquickfix from -dev) is the
    # counterparty of the FIX conformance tests; gzip unpacks it; promtool (from prometheus)
    # checks and unit-tests the rules in deploy/prometheus/.
    packages+=(systemd libquickfix-dev libquickfix-doc gzip prometheus)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${BATON_TEST_DEPS:-0}" = "1" ]; then
    # kubernetes-validate (PyPI; Debian has no package) checks the rendered k8s/ manifests
    # against the Kubernetes API's schemas, offline (k8s/validate.sh). Pinned: the same version
    # as KUBERNETES_VALIDATE_VERSION in k8s/validate.sh. Installed into python3's own
    # environment, the one k8s/validate.sh runs.
    kubernetes_validate=1.37.0
    if [ "$(python3 -c 'import kubernetes_validate; print(kubernetes_validate.__version__)' 2>/dev/null)" != "$kubernetes_validate" ]; then
        echo "installing: kubernetes-validate==$kubernetes_validate (pip)"
        PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
            "kubernetes-validate==$kubernetes_validate"
    fi
fi

if ! command -v swift >/dev/null 2>&1; then
    if [ -x /opt/swift/usr/bin/swift ]; then
        echo "note: add /opt/swift/usr/bin to PATH" >&2
    else
        echo "error: no Swift 6 toolchain found (expected on PATH or in /opt/swift)" >&2
        exit 1
    fi
fi
