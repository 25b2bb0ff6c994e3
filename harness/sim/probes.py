"""The simulated Internet's services asked from the operator's machine, in their own
protocols: a DNS query, a STUN binding request, an HTTPS GET verified against the sim CA."""

from __future__ import annotations

import secrets
import socket
import ssl
import struct
import urllib.request

from .base import SimError
from .topology import RESOLVER, STUN_IP


def dns_query(name: str, server: str = RESOLVER, qtype: int = 1, timeout: float = 2) -> tuple[int, list[str]]:
    """(rcode, A records) of one UDP query."""
    qid = secrets.randbits(16)
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack("!HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, (server, 53))
        data = s.recv(4096)
    rid, flags, qd, an = struct.unpack("!HHHH", data[:8])
    if rid != qid:
        raise SimError("DNS: wrong id")
    pos = 12
    for _ in range(qd):
        while data[pos]:
            pos += data[pos] + 1
        pos += 5
    out = []
    for _ in range(an):
        pos += 2 if data[pos] & 0xC0 == 0xC0 else data.index(b"\0", pos) + 1 - pos
        typ, _cls, _ttl, rdlen = struct.unpack("!HHIH", data[pos:pos + 10])
        pos += 10
        if typ == 1:
            out.append(socket.inet_ntoa(data[pos:pos + 4]))
        pos += rdlen
    return flags & 0xF, out


STUN_MAGIC = 0x2112A442


def stun_request() -> bytes:
    return struct.pack("!HHI", 0x0001, 0, STUN_MAGIC) + secrets.token_bytes(12)


def stun_mapped(resp: bytes) -> tuple[str, int]:
    """XOR-MAPPED-ADDRESS of a STUN binding success response."""
    typ, length, magic = struct.unpack("!HHI", resp[:8])
    if typ != 0x0101 or magic != STUN_MAGIC:
        raise SimError(f"STUN: not a binding success ({typ:#x})")
    pos = 20
    while pos < 20 + length:
        atype, alen = struct.unpack("!HH", resp[pos:pos + 4])
        if atype == 0x0020:
            port = struct.unpack("!H", resp[pos + 6:pos + 8])[0] ^ (STUN_MAGIC >> 16)
            addr = struct.unpack("!I", resp[pos + 8:pos + 12])[0] ^ STUN_MAGIC
            return socket.inet_ntoa(struct.pack("!I", addr)), port
        pos += 4 + alen + (-alen % 4)
    raise SimError("STUN: no XOR-MAPPED-ADDRESS")


def stun_probe(server: str = STUN_IP, port: int = 3478, timeout: float = 2) -> tuple[str, int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(stun_request(), (server, port))
        return stun_mapped(s.recv(2048))


def https_get(url: str, ip: str, ca_pem: str, timeout: float = 5) -> bytes:
    """GET `url` connecting to `ip` (the operator's machine does not use the sim DNS),
    verifying the name in the URL against `ca_pem`."""
    host = url.split("/")[2].split(":")[0]
    ctx = ssl.create_default_context(cadata=ca_pem)

    class Conn(urllib.request.HTTPSHandler):
        def https_open(self, req):
            import http.client

            class C(http.client.HTTPSConnection):
                def connect(self_):
                    sock = socket.create_connection((ip, self_.port), timeout)
                    self_.sock = ctx.wrap_socket(sock, server_hostname=host)

            return self.do_open(C, req)

    return urllib.request.build_opener(Conn).open(url, timeout=timeout).read()

