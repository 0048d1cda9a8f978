#!/usr/bin/env python3
"""Writes the seed inputs in Tests/Fuzz/corpus/<target>: peer frames (wire), market-data frames
(tick) and FIX 4.4 messages (fix). Encoders independent of the Swift ones (a bitwise CRC32C, FIX
BodyLength and CheckSum computed here), so the seeds also cross-check the formats. Run from
anywhere; rewrites the seeds."""
import os
import struct

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
for target, target_seeds in (("wire", seeds), ("tick", {k: v.encode() for k, v in tick_seeds.items()}), ("fix", fix_seeds)):
    directory = os.path.join(here, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    for name, data in target_seeds.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(target_seeds)} seeds to {directory}")
