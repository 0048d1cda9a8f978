#!/usr/bin/env python3
"""Validates rendered Kubernetes manifests; k8s/validate.sh calls it, nothing else needs to.

    validate_manifests.py --kubernetes-version 1.33.0 LABEL=FILE [LABEL=FILE …]

FILE is read; LABEL is what every line names as the source (the kustomization directory that
FILE was rendered from, or the file itself).

Each object in each FILE (a multi-document YAML stream, as `kubectl kustomize` prints it) is
checked by one of two means, and one line per object says which:

* Built-in kinds (apps/v1 StatefulSet, v1 Service, …) by kubernetes-validate's schemas for that
  Kubernetes version, strict: a key the API does not know is an error, as `kubectl apply
  --validate=strict` would report it.
* The CRD kinds these manifests use (cert-manager's Issuer, ClusterIssuer and Certificate, the
  Prometheus Operator's ServiceMonitor and PrometheusRule). kubernetes-validate has no schema
  for a CRD and only warns that it found none (exit 0), and it has no option to make that an
  error, so those kinds never reach it. They are checked here against the schemas below:
  subsets of the CRDs' openAPIV3Schema, written from the cert-manager v1 and Prometheus
  Operator v1 API references, closed (additionalProperties: false) at every level they
  describe. A misspelt field fails; a real field these manifests do not use yet fails too,
  until it is added to its schema here.

Any other kind fails: nothing passes unchecked.

Then, for each LABEL whose file holds the StatefulSet, the checks no schema can make: replicas,
BATON_CLUSTER_MEMBERS, the certificate volumes and the Certificates agree, each certificate
names node-<ordinal + 1> and the pod's stable DNS name, and batond's config has the keys the
pod layout relies on. A PrometheusRule's groups must equal deploy/prometheus/baton-rules.yml's.

Exit status: 0 when everything passed, 1 when anything failed (each failure names the source,
the object and the field), 2 on a usage or environment error.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from pathlib import Path

try:
    import jsonschema
    import kubernetes_validate
    import yaml
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, VersionNotSupportedError
except ImportError as error:  # pragma: no cover - environment problem, reported plainly
    print(
        f"error: {error}: install kubernetes-validate (BATON_TEST_DEPS=1 deploy/install-build-deps.sh)",
        file=sys.stderr,
    )
    sys.exit(2)

REPO = Path(__file__).resolve().parent.parent

# --- schemas of the CRD kinds ------------------------------------------------------------

GO_DURATION = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
PROM_DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def closed(properties: dict, required: list[str] | None = None) -> dict:
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


STRING = {"type": "string"}
STRINGS = {"type": "array", "items": STRING}
STRING_MAP = {"type": "object", "additionalProperties": STRING}
BOOLEAN = {"type": "boolean"}
INTEGER = {"type": "integer"}

METADATA = closed(
    {
        "name": {"type": "string", "pattern": DNS_SUBDOMAIN, "maxLength": 253},
        "namespace": {"type": "string", "pattern": DNS_SUBDOMAIN, "maxLength": 63},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
    required=["name"],
)
LABEL_SELECTOR = closed(
    {
        "matchLabels": STRING_MAP,
        "matchExpressions": {
            "type": "array",
            "items": closed(
                {"key": STRING, "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]}, "values": STRINGS},
                required=["key", "operator"],
            ),
        },
    }
)
SECRET_KEY = closed({"name": STRING, "key": STRING, "optional": BOOLEAN}, required=["key"])

# cert-manager.io/v1 (cert-manager 1.x). The issuer types used here: selfSigned and ca.
ISSUER_SPEC = {
    **closed(
        {
            "selfSigned": closed({"crlDistributionPoints": STRINGS}),
            "ca": closed(
                {
                    "secretName": STRING,
                    "crlDistributionPoints": STRINGS,
                    "ocspServers": STRINGS,
                    "issuingCertificateURLs": STRINGS,
                },
                required=["secretName"],
            ),
        }
    ),
    "minProperties": 1,
    "maxProperties": 1,
}
KEY_USAGES = [
    "signing", "digital signature", "content commitment", "key encipherment", "key agreement",
    "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
    "server auth", "client auth", "code signing", "email protection", "s/mime", "ipsec end system",
    "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc",
]  # fmt: skip
CERTIFICATE_SPEC = closed(
    {
        "secretName": STRING,
        "secretTemplate": closed({"labels": STRING_MAP, "annotations": STRING_MAP}),
        "commonName": {"type": "string", "maxLength": 64},
        "literalSubject": STRING,
        "subject": closed(
            {
                key: STRINGS
                for key in (
                    "organizations", "countries", "organizationalUnits", "localities", "provinces",
                    "streetAddresses", "postalCodes",
                )
            }
            | {"serialNumber": STRING}
        ),
        "dnsNames": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "ipAddresses": STRINGS,
        "uris": STRINGS,
        "emailAddresses": STRINGS,
        "otherNames": {"type": "array", "items": closed({"oid": STRING, "utf8Value": STRING})},
        "duration": {"type": "string", "pattern": GO_DURATION},
        "renewBefore": {"type": "string", "pattern": GO_DURATION},
        "renewBeforePercentage": INTEGER,
        "isCA": BOOLEAN,
        "usages": {"type": "array", "items": {"enum": KEY_USAGES}},
        "encodeUsagesInRequest": BOOLEAN,
        "revisionHistoryLimit": INTEGER,
        "privateKey": closed(
            {
                "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                "size": INTEGER,
                "encoding": {"enum": ["PKCS1", "PKCS8"]},
                "rotationPolicy": {"enum": ["Never", "Always"]},
            }
        ),
        "issuerRef": closed({"name": STRING, "kind": {"enum": ["Issuer", "ClusterIssuer"]}, "group": STRING}, ["name"]),
        "keystores": {"type": "object"},
        "nameConstraints": {"type": "object"},
        "additionalOutputFormats": {"type": "array"},
    },
    required=["secretName", "issuerRef"],
)

# monitoring.coreos.com/v1 (Prometheus Operator).
RELABEL = closed(
    {
        "action": STRING,
        "modulus": INTEGER,
        "regex": STRING,
        "replacement": STRING,
        "separator": STRING,
        "sourceLabels": {"type": "array", "items": {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"}},
        "targetLabel": STRING,
    }
)
ENDPOINT = closed(
    {
        "port": STRING,
        "targetPort": {"type": ["integer", "string"]},
        "path": STRING,
        "scheme": {"enum": ["http", "https"]},
        "params": {"type": "object"},
        "interval": {"type": "string", "pattern": PROM_DURATION},
        "scrapeTimeout": {"type": "string", "pattern": PROM_DURATION},
        "honorLabels": BOOLEAN,
        "honorTimestamps": BOOLEAN,
        "trackTimestampsStaleness": BOOLEAN,
        "enableHttp2": BOOLEAN,
        "filterRunning": BOOLEAN,
        "followRedirects": BOOLEAN,
        "proxyUrl": {"type": "string", "pattern": r"^(http|https|socks5)://.+$"},
        "authorization": closed({"type": STRING, "credentials": SECRET_KEY}),
        "basicAuth": closed({"username": SECRET_KEY, "password": SECRET_KEY}),
        "bearerTokenSecret": SECRET_KEY,
        "tlsConfig": closed(
            {
                "ca": closed({"secret": SECRET_KEY, "configMap": SECRET_KEY}),
                "cert": closed({"secret": SECRET_KEY, "configMap": SECRET_KEY}),
                "keySecret": SECRET_KEY,
                "caFile": STRING,
                "certFile": STRING,
                "keyFile": STRING,
                "serverName": STRING,
                "insecureSkipVerify": BOOLEAN,
                "minVersion": {"enum": ["TLS10", "TLS11", "TLS12", "TLS13"]},
                "maxVersion": {"enum": ["TLS10", "TLS11", "TLS12", "TLS13"]},
            }
        ),
        "relabelings": {"type": "array", "items": RELABEL},
        "metricRelabelings": {"type": "array", "items": RELABEL},
    }
)
SERVICE_MONITOR_SPEC = closed(
    {
        "selector": LABEL_SELECTOR,
        "namespaceSelector": closed({"any": BOOLEAN, "matchNames": STRINGS}),
        "endpoints": {"type": "array", "minItems": 1, "items": ENDPOINT},
        "jobLabel": STRING,
        "targetLabels": STRINGS,
        "podTargetLabels": STRINGS,
        "sampleLimit": INTEGER,
        "targetLimit": INTEGER,
    },
    required=["endpoints", "selector"],
)
RULE = {
    **closed(
        {
            "record": STRING,
            "alert": STRING,
            "expr": {"type": ["string", "integer"]},
            "for": {"type": "string", "pattern": PROM_DURATION},
            "keep_firing_for": {"type": "string", "pattern": PROM_DURATION, "minLength": 1},
            "labels": STRING_MAP,
            "annotations": STRING_MAP,
        },
        required=["expr"],
    ),
    # Exactly one of record and alert (the operator's admission webhook refuses both or neither).
    "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
}
PROMETHEUS_RULE_SPEC = closed(
    {
        "groups": {
            "type": "array",
            "items": closed(
                {
                    "name": {"type": "string", "minLength": 1},
                    "interval": {"type": "string", "pattern": PROM_DURATION},
                    "query_offset": {"type": "string", "pattern": PROM_DURATION},
                    "limit": INTEGER,
                    "labels": STRING_MAP,
                    "partial_response_strategy": STRING,
                    "rules": {"type": "array", "items": RULE},
                },
                required=["name"],
            ),
        }
    }
)


def object_schema(api_version: str, kind: str, spec: dict, namespaced: bool = True) -> dict:
    metadata = dict(METADATA)
    if namespaced:
        metadata = {**METADATA, "required": ["name", "namespace"]}
    return closed(
        {"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": metadata, "spec": spec},
        required=["apiVersion", "kind", "metadata", "spec"],
    )


CRD_SCHEMAS = {
    ("cert-manager.io/v1", "Issuer"): object_schema("cert-manager.io/v1", "Issuer", ISSUER_SPEC),
    ("cert-manager.io/v1", "ClusterIssuer"): object_schema(
        "cert-manager.io/v1", "ClusterIssuer", ISSUER_SPEC, namespaced=False
    ),
    ("cert-manager.io/v1", "Certificate"): object_schema("cert-manager.io/v1", "Certificate", CERTIFICATE_SPEC),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): object_schema(
        "monitoring.coreos.com/v1", "ServiceMonitor", SERVICE_MONITOR_SPEC
    ),
    ("monitoring.coreos.com/v1", "PrometheusRule"): object_schema(
        "monitoring.coreos.com/v1", "PrometheusRule", PROMETHEUS_RULE_SPEC
    ),
}

# --- validation --------------------------------------------------------------------------


class Report:
    def __init__(self) -> None:
        self.failures = 0

    def ok(self, label: str, what: str, how: str) -> None:
        print(f"ok    {label:<26} {what:<46} {how}")

    def fail(self, label: str, what: str, message: str) -> None:
        self.failures += 1
        print(f"FAIL  {label}: {what}: {message}")


def describe(resource: dict) -> str:
    metadata = resource.get("metadata") or {}
    name = metadata.get("name", "?")
    namespace = metadata.get("namespace")
    return f"{resource.get('kind', '?')} {namespace + '/' if namespace else ''}{name}"


def schema_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"


def validate_object(resource: dict, label: str, version: str, report: Report) -> None:
    what = describe(resource)
    key = (resource.get("apiVersion"), resource.get("kind"))
    if key in CRD_SCHEMAS:
        validator = jsonschema.Draft202012Validator(CRD_SCHEMAS[key])
        errors = sorted(validator.iter_errors(resource), key=lambda e: list(e.absolute_path))
        for error in errors:
            report.fail(label, what, f"{schema_path(error)}: {error.message}")
        if not errors:
            report.ok(label, what, f"{key[0]} subset schema (validate_manifests.py)")
        return
    try:
        checked = kubernetes_validate.validate(resource, version, strict=True)
        report.ok(label, what, f"kubernetes-validate {checked} strict")
    except ValidationError as error:
        report.fail(label, what, f"{schema_path(error)}: {error.message} (Kubernetes {error.version}, strict)")
    except SchemaNotFoundError:
        report.fail(
            label,
            what,
            f"no schema for {key[0]} {key[1]}: not a built-in kind of Kubernetes {version}, and not one of "
            f"the CRD kinds validate_manifests.py checks ({', '.join(k for _, k in CRD_SCHEMAS)}); "
            "add a schema for it there",
        )


# --- what no schema can check ---------------------------------------------------------------


def find(resources: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [r for r in resources if r.get("kind") == kind and (name is None or r["metadata"].get("name") == name)]


def env_value(container: dict, name: str) -> str | None:
    for item in container.get("env", []):
        if item.get("name") == name:
            return item.get("value")
    return None


def check_cluster_layout(resources: list[dict], label: str, report: Report) -> None:
    """replicas, members, certificate volumes, Certificates and batond's config must agree."""
    statefulsets = find(resources, "StatefulSet", "baton")
    if not statefulsets:
        return
    sts = statefulsets[0]
    what = describe(sts)
    problems: list[str] = []
    namespace = sts["metadata"].get("namespace", "default")
    service = sts["spec"]["serviceName"]
    replicas = sts["spec"]["replicas"]
    pod = sts["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    inits = {c["name"]: c for c in pod.get("initContainers", [])}
    batond = containers.get("batond")
    if batond is None:
        report.fail(label, what, "no container named batond")
        return

    # Members: ids 1…replicas, node N+1 at pod baton-N's stable name.
    members_text = env_value(batond, "BATON_CLUSTER_MEMBERS") or ""
    members: dict[int, str] = {}
    for item in filter(None, members_text.split(",")):
        node, _, address = item.partition("=")
        members[int(node)] = address
    if sorted(members) != list(range(1, replicas + 1)):
        problems.append(f"BATON_CLUSTER_MEMBERS lists nodes {sorted(members)}, replicas is {replicas}")
    pattern = re.compile(rf"^baton-(\d+)\.{re.escape(service)}\.{re.escape(namespace)}\.svc(\.[a-z0-9.-]+)?:7100$")
    for node, address in sorted(members.items()):
        match = pattern.match(address)
        if not match or int(match.group(1)) != node - 1:
            problems.append(
                f"member {node} is {address!r}: expected baton-{node - 1}.{service}.{namespace}.svc.<domain>:7100"
            )
    voters = [int(v) for v in (env_value(batond, "BATON_CLUSTER_VOTERS") or "").split(",") if v]
    if not voters or not set(voters) <= set(members):
        problems.append(f"BATON_CLUSTER_VOTERS {voters} must be a non-empty subset of the members {sorted(members)}")

    # One certificate volume per replica, mounted by the init container under the pod's name.
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["name"]: m["mountPath"] for m in inits.get("install-secrets", {}).get("volumeMounts", [])}
    for ordinal in range(replicas):
        volume = volumes.get(f"peer-tls-{ordinal}")
        secret = (volume or {}).get("secret", {}).get("secretName")
        if secret != f"baton-{ordinal}-tls":
            problems.append(f"volume peer-tls-{ordinal} must be the Secret baton-{ordinal}-tls (is {secret})")
        if mounts.get(f"peer-tls-{ordinal}") != f"/etc/baton/peer-tls/baton-{ordinal}":
            problems.append(f"install-secrets must mount peer-tls-{ordinal} at /etc/baton/peer-tls/baton-{ordinal}")
    extra = sorted(n for n in volumes if n.startswith("peer-tls-") and int(n.rsplit("-", 1)[1]) >= replicas)
    if extra:
        problems.append(f"certificate volumes beyond the replicas: {extra}")

    # Each replica's Certificate names what the transport, batonctl, preStop and Prometheus check.
    certificates = {c["spec"]["secretName"]: c for c in find(resources, "Certificate")}
    for ordinal in range(replicas):
        certificate = certificates.get(f"baton-{ordinal}-tls")
        if certificate is None:
            problems.append(f"no Certificate writes the Secret baton-{ordinal}-tls")
            continue
        names = set(certificate["spec"].get("dnsNames", []))
        wanted = {f"node-{ordinal + 1}", f"baton-{ordinal}.{service}.{namespace}.svc", "baton-admin.baton.svc"}
        if missing := sorted(wanted - names):
            problems.append(f"Certificate {certificate['metadata']['name']} lacks the DNS names {missing}")
        addresses = [ipaddress.ip_address(a) for a in certificate["spec"].get("ipAddresses", [])]
        if ipaddress.ip_address("127.0.0.1") not in addresses:
            problems.append(f"Certificate {certificate['metadata']['name']} lacks 127.0.0.1 (the preStop hook)")
        if not {"server auth", "client auth"} <= set(certificate["spec"].get("usages", [])):
            problems.append(f"Certificate {certificate['metadata']['name']} needs both server auth and client auth")

    # batond's configuration: the keys this pod layout relies on.
    config_volume = volumes.get("config", {}).get("configMap", {}).get("name")
    config_maps = find(resources, "ConfigMap", config_volume)
    if not config_maps:
        problems.append(f"the config volume names ConfigMap {config_volume}, which is not rendered")
    else:
        config = yaml.safe_load(config_maps[0]["data"]["baton.yaml"])
        expected = {
            ("cluster", "node_id"): "from-hostname",
            ("listen", "peer"): "0.0.0.0:7100",
            ("listen", "admin"): "0.0.0.0:7200",
            ("data_dir",): "/var/lib/baton",
            ("tls", "ca"): "/run/baton/secrets/ca.crt",
            ("tls", "cert"): "/run/baton/secrets/peer.crt",
            ("tls", "key"): "/run/baton/secrets/peer.key",
            ("admin", "tokens_file"): "/etc/baton/admin/tokens",
        }
        for path, value in expected.items():
            found = config
            for part in path:
                found = found.get(part) if isinstance(found, dict) else None
            if found != value:
                problems.append(f"baton.yaml {'.'.join(path)} is {found!r}, the pod layout needs {value!r}")
        if "members" in (config.get("cluster") or {}):
            problems.append("baton.yaml lists cluster.members: they come from BATON_CLUSTER_MEMBERS only")

    services = find(resources, "Service", service)
    if not services or services[0]["spec"].get("clusterIP") != "None" or not services[0]["spec"].get(
        "publishNotReadyAddresses"
    ):
        problems.append(f"Service {service} must be headless with publishNotReadyAddresses: true")
    budgets = find(resources, "PodDisruptionBudget")
    if not budgets or budgets[0]["spec"].get("maxUnavailable") != 1:
        problems.append("the PodDisruptionBudget must allow at most one replica down (maxUnavailable: 1)")

    for problem in problems:
        report.fail(label, what, problem)
    if not problems:
        report.ok(label, f"cluster layout ({replicas} replicas)", "members, certificates, config agree")


def check_prometheus_rules(resources: list[dict], label: str, report: Report) -> None:
    rules_file = REPO / "deploy/prometheus/baton-rules.yml"
    for rule in find(resources, "PrometheusRule"):
        source = yaml.safe_load(rules_file.read_text())
        if rule["spec"].get("groups") != source.get("groups"):
            report.fail(label, describe(rule), f"its groups differ from {rules_file.relative_to(REPO)}")
        else:
            report.ok(label, f"{describe(rule)} rules", f"equal to {rules_file.relative_to(REPO)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubernetes-version", required=True)
    parser.add_argument("inputs", nargs="+", metavar="LABEL=FILE")
    arguments = parser.parse_args()
    report = Report()
    try:
        # Fail early and plainly on a version this kubernetes-validate cannot check.
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "probe"}},
            arguments.kubernetes_version,
            strict=True,
        )
    except VersionNotSupportedError:
        print(
            f"error: kubernetes-validate {kubernetes_validate.__version__} has no schemas for Kubernetes "
            f"{arguments.kubernetes_version}",
            file=sys.stderr,
        )
        return 2
    for item in arguments.inputs:
        label, _, file = item.partition("=")
        if not file:
            print(f"error: {item!r} is not LABEL=FILE", file=sys.stderr)
            return 2
        try:
            resources = [r for r in yaml.safe_load_all(Path(file).read_text()) if r]
        except (OSError, yaml.YAMLError) as error:
            report.fail(label, "(file)", f"cannot read it as YAML: {error}")
            continue
        if not resources:
            report.fail(label, "(file)", "holds no object")
        for resource in resources:
            if not isinstance(resource, dict) or "kind" not in resource or "apiVersion" not in resource:
                report.fail(label, "(document)", "not a Kubernetes object (no apiVersion/kind)")
                continue
            validate_object(resource, label, arguments.kubernetes_version, report)
        valid = [r for r in resources if isinstance(r, dict) and "kind" in r]
        try:
            check_cluster_layout(valid, label, report)
            check_prometheus_rules(valid, label, report)
        except (KeyError, TypeError, ValueError) as error:
            report.fail(label, "(layout)", f"the manifests are not shaped as expected: {error!r}")
    if report.failures:
        print(f"{report.failures} problem(s) found")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
