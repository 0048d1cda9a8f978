#!/usr/bin/env python3
"""Writes the seed inputs in Tests/Fuzz/corpus/<target>: peer frames (wire), market-data frames
(tick), FIX 4.4 messages (fix), batond configurations (config) and admin request bodies (admin).
Encoders independent of the Swift ones (a bitwise CRC32C, FIX BodyLength and CheckSum computed
here), so the seeds also cross-check the formats. Run from anywhere; rewrites the seeds of the
targets named (`make-seeds.py config admin`), or of all of them."""
import json
import os
import re
import struct
import sys

CLUSTER = 0xBA700001


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def frame(ftype: int, payload: bytes, cluster: int = CLUSTER) -> bytes:
    head = b"BATN" + bytes([1, ftype]) + struct.pack(">HQI", 0, cluster, len(payload))
    body = head + payload
    return body + struct.pack(">I", crc32c(body))


def text(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def hello(node: int, name: str) -> bytes:
    return struct.pack(">QQH", node, CLUSTER, 1) + text(name)


def raft(tag: int, body: bytes, frm: int = 1, to: int = 2, term: int = 7) -> bytes:
    return frame(4, struct.pack(">QQQB", frm, to, term, tag) + body)


def pos(term: int, index: int) -> bytes:
    return struct.pack(">QQ", term, index)


entries = (
    pos(3, 11) + b"\x00"
    + pos(3, 12) + b"\x01" + struct.pack(">I", 5) + b"order"
    + pos(4, 13) + b"\x02\x01" + struct.pack(">Q", 4)
    + pos(4, 14) + b"\x02\x02" + struct.pack(">Q", 4)
    + pos(4, 15) + b"\x02\x03" + struct.pack(">Q", 3)
)
seeds = {
    "hello": frame(1, hello(1, "baton-0")),
    "hello-accepted": frame(2, hello(2, "baton-1")),
    "hello-rejected": frame(3, text("node id n9 is not in the peer list")),
    "append-entries": raft(1, pos(3, 10) + struct.pack(">QQI", 10, 5, 5) + entries),
    "append-response": raft(2, struct.pack(">Q", 15) + b"\x01" + pos(2, 8) + struct.pack(">Q", 5)),
    "heartbeat": raft(3, struct.pack(">QQ", 42, 17)),
    "heartbeat-response": raft(4, struct.pack(">Q", 17)),
    "request-vote": raft(5, b"\x01" + pos(6, 99) + b"\x00"),
    "vote-response": raft(6, b"\x00\x01"),
    "install-snapshot": raft(
        7, pos(9, 1000) + struct.pack(">IQQQ", 3, 1, 2, 3) + struct.pack(">IQ", 1, 5)
        + struct.pack(">I", 4) + b"snap" + struct.pack(">Q", 3)
    ),
    "timeout-now": raft(8, b""),
}
seeds["two-frames"] = seeds["hello"] + seeds["heartbeat"]
# Protocol 2: replicaStatus (node, free basis points or 0xFFFF, journal tag and its field).
seeds["replica-status-verified"] = frame(5, struct.pack(">QHBQ", 2, 4200, 1, 77))
seeds["replica-status-failed"] = frame(5, struct.pack(">QHB", 3, 0xFFFF, 2) + text("chain broken at entry 12"))
seeds["hello-v2-then-status"] = frame(1, struct.pack(">QQH", 1, CLUSTER, 2) + text("baton-0")) + frame(
    5, struct.pack(">QHB", 1, 10000, 0))


# Market data (TickCodec.swift): T,seq,symbol,price,size,bid,ask,exchange_ns and H,seq,exchange_ns,
# one frame per paragraph; a paragraph starting with # scripts the shell (TickFeedFuzzer.swift).
NS = 1_735_828_200_000_000_000


def trade(seq: int, symbol: str, price: str, size: int, bid: str, ask: str, dt_ms: int = 0) -> str:
    return f"T,{seq},{symbol},{price},{size},{bid},{ask},{NS + dt_ms * 1_000_000}\n"


def beat(seq: int, dt_ms: int = 0) -> str:
    return f"H,{seq},{NS + dt_ms * 1_000_000}\n"


burst = "".join(trade(i, ["AAPL", "MSFT", "NVDA"][i % 3], f"187.{i:02d}", 100 * i, "187", "187.5", i) for i in range(1, 9))
tick_seeds = {
    "one-trade": trade(1, "AAPL", "187.25", 100, "187.2", "187.3"),
    "burst": burst,
    "heartbeat": trade(41, "MSFT", "415.5", 10, "415.49", "415.51") + beat(41, 50),
    "gap-and-duplicate": trade(10, "AAPL", "187", 1, "186.99", "187.01") + trade(14, "AAPL", "187.01", 2, "187", "187.02")
    + trade(14, "AAPL", "187.01", 2, "187", "187.02") + beat(20, 100),
    "crlf-no-final-newline": "T,7,NVDA,131.0001,5,131,131.0002,1735828200000000000\r\nH,7,1735828200050000000",
    "malformed-lines": "T,1,AAPL,187.123456,1,1,1,0\nT,2,,1,1,1,1,0\nX,3\nH,abc,0\n" + trade(3, "AAPL", "-1", 1, "1", "1")
    + trade(4, "AAPL", "1.5", 1, "-0.5", "2", 1),
    "price-too-many-digits": "T,1,AAPL,999999999999999,1,1,1,0\n",
    "limits": trade(9999999999999999999, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "1000000000", 9223372036854775807,
                    "-1000000000", "1000000000.0000") + beat(9999999999999999999),
    # Primary goes quiet, the backup takes over, the primary comes back with its numbering reset.
    "failover": "#pcbc\n\n" + trade(100, "AAPL", "187", 1, "186", "188") + "\n" + "#b\n\n" + trade(5000, "AAPL", "187.1", 1, "187", "188")
    + "\n#TpT\n\n#b\n\n" + trade(5001, "AAPL", "187.2", 1, "187", "188") + "\n#pdc\n\n"
    + trade(1, "AAPL", "187.3", 1, "187", "188") + beat(3) + "\n#tttttttttk\n",
}

# FIX 4.4 from the broker (BROKER) to Baton (BATON), as the fuzzer's sessions expect.
SOH = "\x01"
SENDING_TIME = "20250102-14:30:00.000"


def fix(msg_type: str, seq: int, *fields: tuple[int, str], sender: str = "BROKER", target: str = "BATON") -> bytes:
    body = f"35={msg_type}{SOH}49={sender}{SOH}56={target}{SOH}34={seq}{SOH}52={SENDING_TIME}{SOH}"
    body += "".join(f"{tag}={value}{SOH}" for tag, value in fields)
    head = f"8=FIX.4.4{SOH}9={len(body.encode())}{SOH}"
    message = (head + body).encode()
    return message + f"10={sum(message) % 256:03d}{SOH}".encode()


logon = fix("A", 1, (98, "0"), (108, "30"))
execution_report = fix(
    "8", 3, (37, "V-1"), (11, "ORD-1"), (17, "E-1"), (150, "F"), (39, "1"), (55, "AAPL"), (54, "1"), (38, "100"),
    (44, "187.25"), (32, "40"), (31, "187.25"), (151, "60"), (14, "40"), (6, "187.25"), (60, SENDING_TIME))
fix_seeds = {
    "logon": logon,
    "logon-heartbeat": logon + fix("0", 2),
    "execution-report": logon + fix("0", 2) + execution_report,
    "test-request": logon + fix("1", 2, (112, "TEST-7")),
    "sequence-reset-reset": logon + fix("4", 2, (36, "10")) + fix("0", 10),
    "sequence-reset-gap-fill": logon + fix("4", 2, (123, "Y"), (36, "5"), (43, "Y"), (122, SENDING_TIME)) + fix("0", 5),
    "resend-request": logon + fix("2", 2, (7, "1"), (16, "0")),
    "reject": logon + fix("3", 2, (45, "2"), (371, "44"), (372, "D"), (373, "5"), (58, "price out of range")),
    "gap-then-fill": logon + execution_report + fix("4", 2, (123, "Y"), (36, "3"), (43, "Y"), (122, SENDING_TIME)),
    "cancel-reject-logout": logon + fix("9", 2, (37, "V-1"), (11, "ORD-2"), (41, "ORD-1"), (39, "0"), (434, "1"), (102, "1"))
    + fix("5", 3, (58, "end of day")),
    "logon-reset-seqnum": fix("A", 1, (98, "0"), (108, "5"), (141, "Y")) + fix("0", 2),
    # Hostile values that once trapped on arithmetic (seq + 1, HeartBtInt in milliseconds).
    "sequence-reset-int-max": logon + fix("4", 2, (36, "9223372036854775807")) + fix("4", 3, (36, "2147483647"))
    + fix("0", 2147483647),
    "gap-fill-int-max": logon + fix("4", 2, (123, "Y"), (36, "9223372036854775807")),
    "logon-huge-heartbtint": fix("A", 1, (98, "0"), (108, "9223372036854775807")),
    "logon-seqnum-int-max": fix("A", 9223372036854775807, (98, "0"), (108, "30")),
    "resend-request-extremes": logon + fix("2", 2, (7, "-9223372036854775808"), (16, "9223372036854775807")),
}

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))

# batond configurations (ConfigFuzzer.swift): YAML, then optional `#%env` (NAME=value or key=value
# lines) and `#%tokens` (an admin.tokens_file) sections. Paths name the files the harness lays out.
FILES = "/tmp/baton-config-fuzz"
with open(os.path.join(root, "Sources/BatonDaemon/Configuration.swift")) as f:
    source = f.read()
keys_block = source[source.index("public static let keys"):source.index("/// The environment variable that overrides")]
config_keys = re.findall(r'\("([a-z_.]+)", "', keys_block)
valid_values = {
    "cluster.id": "7", "cluster.node_id": "2",
    "cluster.members": {"1": "127.0.0.1:7101", "2": "127.0.0.1:7102", "3": "'[::1]:7103'"},
    "cluster.voters": [1, 2], "cluster.learners": [3], "data_dir": "/tmp/baton-n2",
    "listen.peer": "127.0.0.1:7102", "listen.admin": "'[::1]:7202'",
    "raft.tick_interval_ms": "2", "raft.heartbeat_interval_ms": "50", "raft.election_timeout_min_ms": "300",
    "raft.election_timeout_max_ms": "600", "raft.max_clock_drift_ms": "30", "raft.max_inflight_messages": "64",
    "raft.max_inflight_bytes": "8388608", "raft.max_bytes_per_append": "262144", "journal.durability": "normal",
    "admin.token": "a-token-of-sixteen-chars", "admin.token_file": f"{FILES}/token",
    "admin.tokens_file": f"{FILES}/tokens", "admin.max_connections": "64", "admin.idle_timeout_s": "60",
    "admin.auth_failures_per_minute": "10", "admin.tls.cert": f"{FILES}/cert.pem", "admin.tls.key": f"{FILES}/key.pem",
    "tls.allow_plaintext": "false", "tls.ca": f"{FILES}/ca.pem", "tls.cert": f"{FILES}/cert.pem",
    "tls.key": f"{FILES}/key.pem", "log.level": "debug", "log.format": "text", "shutdown.transfer_timeout_ms": "2000",
    "readiness.max_lag_entries": "1000", "debug.endpoints": "true", "trading.enabled": "true",
    "trading.symbols": ["AAPL", "MSFT"], "trading.account": "BATON", "trading.clordid_prefix": "BTN",
    "trading.strategy.fast_window": "10", "trading.strategy.slow_window": "30", "trading.strategy.threshold": "0.05",
    "trading.strategy.quantity": "100", "trading.strategy.allow_short": "true", "trading.strategy.version": "2",
    "trading.risk.max_orders_per_minute": "10", "trading.risk.max_orders_per_hour": "200",
    "trading.risk.max_position": "1000", "trading.risk.max_order_quantity": "1000", "trading.ack_timeout_ms": "2000",
    "trading.reconcile.answer_timeout_ms": "1000", "trading.reconcile.attempts_before_halt": "3",
    "venue.fix": "127.0.0.1:9878", "venue.sender_comp_id": "BATON", "venue.sequence_block": "1000",
    "venue.target_comp_id": "VENUE", "venue.heartbeat_s": "5", "venue.store_sync": "false", "venue.username": "baton",
    "venue.password_file": f"{FILES}/password", "venue.tls.ca_file": f"{FILES}/ca.pem",
    "venue.tls.cert_file": f"{FILES}/cert.pem", "venue.tls.key_file": f"{FILES}/key.pem",
    "venue.tls.server_name": "venue.example", "venue.mass_status": "true", "venue.reset_seq_num_on_logon": "false",
    "venue.max_order_age_ms": "100", "feed.primary": "ws://127.0.0.1:9880/feed", "feed.backup": "wss://127.0.0.1:9881/feed",
    "feed.stale_after_ms": "500", "feed.recover_after_ms": "2000", "journal.verify_interval_s": "3600",
    "trading.strategy.name": "ma-crossover", "trading.strategy.lookback": "20",
    "trading.slo.order_ack.objective": "0.999", "trading.slo.order_ack.threshold_ms": "250",
    "trading.slo.period_days": "30", "trading.slo.order_path.objective": "0.999", "trading.slo.order_path.bound_ms": "1000",
    "trading.slo.leader.objective": "0.999", "trading.slo.feed.objective": "0.99", "trading.slo.admin.objective": "0.999",
    "alerts.pagerduty.routing_key_file": f"{FILES}/routing-key", "alerts.pagerduty.url": "https://events.pagerduty.com/v2/enqueue",
    "alerts.slack.webhook_url_file": f"{FILES}/slack-url", "alerts.telegram.token_file": f"{FILES}/telegram-token",
    "alerts.telegram.chat_id": "'-1001234567890'", "alerts.telegram.base_url": "https://api.telegram.org",
    "alerts.webhook.url": "http://127.0.0.1:9093/hook", "alerts.webhook.receiver": "baton",
}
for sink in ("pagerduty", "slack", "telegram", "webhook"):
    valid_values[f"alerts.{sink}.min_severity"] = "warning"
    valid_values[f"alerts.{sink}.quiet_hours"] = "22:00-07:00"
    valid_values[f"alerts.{sink}.min_interval_ms"] = "1000"
    if sink != "pagerduty":
        valid_values[f"alerts.{sink}.trades"] = "true"
        valid_values[f"alerts.{sink}.group_window_ms"] = "2000"
        valid_values[f"alerts.{sink}.group_max"] = "10"
missing = sorted(set(config_keys) - set(valid_values))
assert not missing, f"make-seeds.py has no value for {missing}: add one to valid_values"
with open(os.path.join(root, "doc/configuration.md")) as f:
    documented = set(re.findall(r"`([a-z_.<>]+)`", f.read()))
# The tables abbreviate a second key of a row: `trading.strategy.fast_window`, `slow_window`.
# `alerts.<sink>.min_severity` documents the key of every sink.
undocumented = sorted(
    k for k in config_keys
    if k not in documented and k.split(".")[-1] not in documented and re.sub(r"^alerts\.[a-z]+\.", "alerts.<sink>.", k) not in documented)
assert not undocumented, f"doc/configuration.md does not mention {undocumented}"


def yaml_value(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def nested_yaml(pairs: dict) -> str:
    """Dotted keys as nested YAML sections, in the order given."""
    tree: dict = {}
    for key, value in pairs.items():
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    lines = []

    def emit(node: dict, depth: int):
        for name, value in node.items():
            pad = "  " * depth
            if isinstance(value, dict) and name != "members":
                lines.append(f"{pad}{name}:")
                emit(value, depth + 1)
            elif isinstance(value, dict):
                lines.append(f"{pad}{name}:")
                lines.extend(f"{pad}  {k}: {v}" for k, v in value.items())
            else:
                lines.append(f"{pad}{name}: {yaml_value(value)}")

    emit(tree, 0)
    return "\n".join(lines) + "\n"


def env_value(key: str, value) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={v.strip(chr(39))}" for k, v in value.items())
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value).strip("'")


minimal = {k: valid_values[k] for k in ("cluster.id", "cluster.node_id", "cluster.members", "data_dir")}
minimal["cluster.members"] = {"1": "127.0.0.1:7101", "2": "127.0.0.1:7102", "3": "127.0.0.1:7103"}
minimal_yaml = nested_yaml(minimal) + "admin:\n  token: a-token-of-sixteen-chars\n"
trading_keys = {k: v for k, v in valid_values.items() if k.split(".")[0] in ("trading", "venue", "feed")}
trading_minimal = {"trading.enabled": "true", "trading.symbols": ["AAPL", "MSFT"], "venue.fix": "127.0.0.1:9878",
                   "feed.primary": "ws://127.0.0.1:9880/feed"}
tokens_lines = (
    "# name     role      secret\n"
    "oncall operator sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8\n"
    "grafana\tviewer\tsha256:5E884898DA28047151D0E56F8DC6292773603D0D6AABBDD62A11EF721D1542D8\n"
    "ci@build.host-1 admin a-plain-token-0123456789\n"
)
config_seeds = {
    # Every key with a valid value, as a file and as environment overrides of an empty file.
    "every-key": nested_yaml(valid_values),
    "every-key-from-environment": "# nothing in the file\n#%env\n"
    + "".join(f"{k}={env_value(k, v)}\n" for k, v in valid_values.items()),
    "minimal": minimal_yaml,
    "minimal-trading": minimal_yaml + nested_yaml(trading_minimal),
    "trading-every-key": minimal_yaml + nested_yaml(trading_keys),
    "environment-overrides": minimal_yaml + "#%env\nBATON_RAFT_HEARTBEAT_INTERVAL_MS=40\n"
    "BATON_CLUSTER_MEMBERS=1=10.0.0.1:7100,2=10.0.0.2:7100,3=[fe80::1]:7100\nBATON_CLUSTER_VOTERS=1,2\n"
    "cluster.learners=3\nBATON_ADMIN_TOKEN=another-token-1234567\nBATON_TLS_ALLOW_PLAINTEXT=yes\n"
    "BATON_TRADING_SYMBOLS=EURUSD, GBPUSD\nBATON_UNRELATED=1\n",
    "tokens-file": minimal_yaml.replace("  token: a-token-of-sixteen-chars", f"  tokens_file: {FILES}/tokens")
    + "#%tokens\n" + tokens_lines,
    "tokens-readable-by-others": minimal_yaml.replace("  token: a-token-of-sixteen-chars", f"  tokens_file: {FILES}/open-tokens")
    + "#%tokens\n# a plain token in a file others may read\ngrafana viewer a-plain-token-0123456789\n",
    "token-files": minimal_yaml.replace("  token: a-token-of-sixteen-chars",
                                        f"  token_file: {FILES}/world-readable\n  tokens_file: {FILES}/bad-tokens\n"
                                        f"  tls:\n    cert: {FILES}/cert.pem\n    key: {FILES}/world-readable"),
    "token-named-twice": minimal_yaml.replace("  token: a-token-of-sixteen-chars",
                                              f"  token_file: {FILES}/token\n  tokens_file: {FILES}/tokens-named-admin"),
    "token-too-short": minimal_yaml.replace("  token: a-token-of-sixteen-chars", f"  token_file: {FILES}/short-token")
    + "#%env\nBATON_ADMIN_TOKEN=tiny\n",
    "secret-files-missing": minimal_yaml + f"tls:\n  ca: {FILES}/ca.pem\n  cert: {FILES}/nowhere\n  key: {FILES}/nowhere\n"
    + nested_yaml({**trading_minimal, "venue.password_file": f"{FILES}/nowhere", "venue.tls.ca_file": f"{FILES}/nowhere",
                   "venue.tls.cert_file": f"{FILES}/cert.pem", "venue.username": "x" * 129}),
    "flow-style": '{cluster: {id: 7, node_id: 1, members: {1: "127.0.0.1:7101"}, voters: [1]}, '
    'data_dir: d, admin: {token: "a-token-of-sixteen-chars"}, log: {level: !!str trace}}\n',
    "anchors": "defaults: &raft\n  tick_interval_ms: 5\n  heartbeat_interval_ms: 20\nraft:\n  <<: *raft\n"
    "  election_timeout_min_ms: &min 300\ncluster:\n  id: *min\n  node_id: 1\n  members:\n    1: &addr 127.0.0.1:7101\n"
    "    2: *addr\ndata_dir: &dir /tmp/x\nadmin:\n  token: *dir\n",
    "undefined-alias": "cluster:\n  id: 7\ndata_dir: *undefined\n",
    "yaml-styles": "%YAML 1.1\n---\ncluster:\n  id: '7'\n  node_id: \"2\"\n  members:\n    ? 1\n    : 127.0.0.1:7101\n"
    "    2: >-\n      127.0.0.1:7102\n  voters: !!seq\n    - 1\n    - 2\ndata_dir: |\n  /tmp/x\n"
    "admin: {token: 'it''s sixteen chars', tokens_file: null}\n...\n",
    "two-documents": minimal_yaml + "---\nsecond: document\n",
    "yaml-error-quoting-a-secret": minimal_yaml + '\nvenue:\n  password: "hunter2-very-secret\n  other: [\n',
    "not-a-map": "a-plain-token-0123456789\n",
    "a-list": "- cluster\n- 7\n",
    "empty-keys": minimal_yaml + '"": 1\n".": 2\ncluster.: 3\nraft:\n  "": 4\n',
    "bad-values": "cluster:\n  id: -7\n  node_id: 01\n  members:\n    1: 127.0.0.1:7101\n    01: 127.0.0.1:7104\n"
    "    2: 127.0.0.1:99999\n    x: nowhere\n    3: [a, b]\n  voters: [0, 9, x]\n  learners: 1\ndata_dir: [a]\n"
    "raft:\n  heartbeat_interval_ms: 100\n  election_timeout_max_ms: 200\n  tick_interval_ms: fast\n"
    "  max_clock_drift_ms: 400\njournal:\n  durablity: full\nlog:\n  level: [info]\n  format: xml\nlisten:\n"
    "  admin: ':7201'\n  peer: 127.0.0.1\ntls:\n  allow_plaintext: 'yes'\n  ca: x\nadmin:\n  max_connections: 0\n"
    "  idle_timeout_s: 99999999999999999999\n  tls:\n    cert: x\nshutdown:\n  transfer_timeout_ms: -1\n"
    "debug:\n  endpoints: 1\n",
    # listen.admin defaults to 7200 + node id, which is no port above node 58335 (found by hand, see ConfigurationTests).
    "node-id-beyond-admin-ports": "cluster:\n  id: 18446744073709551615\n  node_id: 58336\n  members: {58336: '[::1]:65535'}\n"
    "data_dir: x\n#%env\nBATON_CLUSTER_NODE_ID=4294967295\nBATON_CLUSTER_MEMBERS=4294967295=127.0.0.1:7101\n",
    "trading-limits": minimal_yaml + nested_yaml({
        **trading_minimal, "trading.symbols": ["AAPL", "AAPL", "A,B", "\"\\x01SOH\""], "trading.clordid_prefix": "BT-N",
        "trading.strategy.fast_window": "30", "trading.strategy.slow_window": "30", "trading.strategy.threshold": "0.00001",
        "trading.strategy.quantity": "2000", "trading.risk.max_orders_per_hour": "5", "trading.ack_timeout_ms": "50",
        "venue.max_order_age_ms": "290", "venue.sender_comp_id": "'BAT ON'", "venue.fix": "127.0.0.1:0",
        "feed.primary": "http://127.0.0.1/feed", "trading.account": "''"}),
}
for n in (1, 2, 3):
    with open(os.path.join(root, f"cluster/local/n{n}.yaml")) as f:
        config_seeds[f"cluster-local-n{n}"] = f.read()

# One problem of a tokens file each (the `#%tokens` section is parsed on its own).
for name, line in {
    "short-digest": "oncall operator sha256:5e88",
    "short-token": "grafana viewer short-token",
    "unknown-role": "ops boss a-plain-token-0123456789",
    "four-fields": "a viewer b c",
    "bad-name": "name! viewer sha256:" + "00" * 32,
    "not-hex": "grafana viewer sha256:" + "zz" * 32,
    "name-twice": "grafana viewer a-plain-token-0123456789\ngrafana admin sha256:" + "ab" * 32,
}.items():
    config_seeds[f"tokens-{name}"] = "# only the tokens file\n#%tokens\n" + tokens_lines + line + "\n"

# Admin request bodies (AdminBodiesFuzzer.swift): JSON, also used as the value of each field.
admin_seeds = {
    "empty": "",
    "transfer": json.dumps({"to": 2}),
    "transfer-any": "{}",
    "propose": json.dumps({"count": 100, "size": 256}),
    "propose-largest": json.dumps({"count": 16, "size": 1 << 20}),
    "propose-too-much": json.dumps({"count": 100000, "size": 1048576}),
    "propose-hostile": '{"count": 9223372036854775807, "size": -9223372036854775808}',
    "propose-floats": '{"count": 1e2, "size": 2.0E+2}',
    "stall": json.dumps({"ms": 3000}),
    "stall-null": '{"ms": null, "extra": [1, {"x": "\\ud83d\\ude00"}]}',
    "arm": json.dumps({"when": "before-send"}),
    "arm-each": '{"when": "stop-before-write", "when": "after-send"}',
    "arm-none": ' \t\n{"when":"none"}\n',
    "not-an-object": '["before-send", 2, 1e400, -0.0, true, null]',
    "number": "60000",
    "string": '"before-send"',
    "deep": "[" * 64 + "]" * 64,
    "strategy-deploy": json.dumps({"name": "channel-breakout", "version": "2", "symbols": ["AAPL", "MSFT"],
                                   "parameters": {"lookback": 30, "allow_short": True, "threshold": "0.05"},
                                   "reason": "breakout v2"}),
    "strategy-bad-scalar": '{"name": "ma-crossover", "version": "v 3", "parameters": {"threshold": 0.05}, "reason": ""}',
}

wanted = set(sys.argv[1:]) or {"wire", "tick", "fix", "config", "admin"}
for target, target_seeds in (("wire", seeds), ("tick", {k: v.encode() for k, v in tick_seeds.items()}), ("fix", fix_seeds),
                             ("config", {k: v.encode() for k, v in config_seeds.items()}),
                             ("admin", {k: v.encode() for k, v in admin_seeds.items()})):
    if target not in wanted:
        continue
    directory = os.path.join(here, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    for name, data in target_seeds.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(target_seeds)} seeds to {directory}")


def dict_entry(text: str) -> str:
    return '"' + "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else f"\\x{ord(c):02X}" for c in text) + '"'


# libFuzzer dictionaries: what the formats are made of, so mutations need not guess it.
if "config" in wanted:
    entries = ["#%env\n", "\n#%tokens\n", ": ", ":\n  ", "\n  ", "- ", "[", "]", "{", "}", ", ", "'", '"', "? ", "&a ",
               "*a", "<<: ", "!!str ", "!!int ", "!!seq", "!!map", "---\n", "...\n", "%YAML 1.1\n", "|\n", ">-\n", "~", "null",
               "\t", "\r\n", "\\u0000", "#", "true", "false", "yes", "full", "normal", "json", "text", "trace", "critical",
               "127.0.0.1:", "[::1]:", "0.0.0.0:", ":65535", ":0", "ws://", "wss://", "sha256:", "viewer", "operator", "admin",
               "18446744073709551615", "9223372036854775807", "4294967295", "4294967296", "58336", "65536", "-1", "0.0001",
               f"{FILES}/"] + [f"{FILES}/{name}" for name in
                               ("token", "short-token", "world-readable", "tokens", "tokens-named-admin", "open-tokens",
                                "bad-tokens", "password", "ca.pem", "cert.pem", "key.pem")]
    for key in config_keys:
        entries += [key.split(".")[-1] + ": ", key + "=", "BATON_" + key.upper().replace(".", "_") + "="]
    entries += sorted({part + ":" for key in config_keys for part in key.split(".")[:-1]})
    unique = list(dict.fromkeys(entries))
    with open(os.path.join(here, "config.dict"), "w") as f:
        f.write("# libFuzzer dictionary for the config target (written by make-seeds.py from BatondConfiguration.keys):\n"
                "# sections, YAML syntax, keys as YAML, as key=value and as BATON_ variables, values, harness files.\n")
        f.writelines(dict_entry(e) + "\n" for e in unique)
    print(f"wrote {len(unique)} entries to config.dict")
if "admin" in wanted:
    entries = ['"to"', '"count"', '"size"', '"ms"', '"when"', '"before-send"', '"after-send"', '"stop-before-write"',
               '"none"', "{", "}", "[", "]", ":", ",", "null", "true", "false", "\\u", "\\ud800", "\\\"", "e+", "E-",
               ".0", "-0", "1048576", "1048577", "100000", "100001", "60000", "60001", "16777216", "9223372036854775807",
               "-9223372036854775808", "18446744073709551615", "1e400"]
    with open(os.path.join(here, "admin.dict"), "w") as f:
        f.write("# libFuzzer dictionary for the admin target (written by make-seeds.py): fields, values, JSON, bounds.\n")
        f.writelines(dict_entry(e) + "\n" for e in entries)
    print(f"wrote {len(entries)} entries to admin.dict")
