"""A minimal DNS client over UDP for tests: one question, answers parsed for A, AAAA, MX,
TXT, PTR and CNAME. Enough to check a test server; not a general resolver."""

import ipaddress
import random
import socket
import struct
from dataclasses import dataclass, field

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


@dataclass
class Answer:
    rcode: int
    records: list = field(default_factory=list)   # (type name, ttl, value) tuples

    @property
    def rcode_name(self):
        return RCODES.get(self.rcode, str(self.rcode))

    def values(self, rtype=None):
        return [v for t, _, v in self.records if rtype is None or t == rtype]


def _encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def _read_name(msg, pos):
    """Returns (name, position after the name in place). Pointers must go backwards."""
    labels, end, jumped = [], None, False
    while True:
        if pos >= len(msg):
            raise ValueError("name runs past the message")
        length = msg[pos]
        if length & 0xC0 == 0xC0:
            target = struct.unpack_from(">H", msg, pos)[0] & 0x3FFF
            if target >= pos:
                raise ValueError("forward compression pointer")
            if not jumped:
                end = pos + 2
            jumped, pos = True, target
        elif length == 0:
            return ".".join(labels) or ".", (end if jumped else pos + 1)
        else:
            labels.append(msg[pos + 1:pos + 1 + length].decode("ascii", "backslashreplace"))
            pos += 1 + length


def _rdata(rtype, msg, pos, length):
    data = msg[pos:pos + length]
    if rtype == 1:
        return str(ipaddress.IPv4Address(data))
    if rtype == 28:
        return str(ipaddress.IPv6Address(data))
    if rtype in (5, 12):
        return _read_name(msg, pos)[0]
    if rtype == 15:
        return (struct.unpack_from(">H", msg, pos)[0], _read_name(msg, pos + 2)[0])
    if rtype == 16:
        strings, i = [], 0
        while i < len(data):
            strings.append(data[i + 1:i + 1 + data[i]].decode("utf-8", "backslashreplace"))
            i += 1 + data[i]
        return tuple(strings)
    return data


def query(port, name, rtype="A", host="127.0.0.1", timeout=2.0):
    """Asks host:port one question over UDP. Returns an Answer; raises TimeoutError."""
    qid = random.randrange(65536)
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    packet += _encode_name(name) + struct.pack(">HH", TYPES[rtype], 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, (host, port))
        try:
            msg, _ = s.recvfrom(65535)
        except socket.timeout as e:
            raise TimeoutError(f"no answer from {host}:{port} for {name} {rtype}") from e
    rid, flags, qd, an, _, _ = struct.unpack_from(">HHHHHH", msg, 0)
    if rid != qid:
        raise ValueError("reply with another id")
    pos = 12
    for _ in range(qd):
        pos = _read_name(msg, pos)[1] + 4
    names = {v: k for k, v in TYPES.items()}
    answer = Answer(rcode=flags & 0xF)
    for _ in range(an):
        _, pos = _read_name(msg, pos)
        t, _, ttl, length = struct.unpack_from(">HHIH", msg, pos)
        pos += 10
        answer.records.append((names.get(t, str(t)), ttl, _rdata(t, msg, pos, length)))
        pos += length
    return answer
