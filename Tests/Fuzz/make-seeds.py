#!/usr/bin/env python3
"""Writes the seed frames in Tests/Fuzz/corpus/wire. An encoder independent of the Swift one (and a
bitwise CRC32C), so the seeds also cross-check the format. Run from anywhere; rewrites the seeds."""
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

directory = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "wire")
os.makedirs(directory, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {directory}")
