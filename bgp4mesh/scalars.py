"""Scalar types of the config: names, ASNs, prefixes, addresses, image references and
openings, each checked on its own with a rule the operator can read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Annotated, Union

from pydantic import AfterValidator, BeforeValidator, SecretStr





U32 = 2**32 - 1

NAME_RULE = "a name must be 1-32 characters of a-z, 0-9 and '-', start with a letter and not end with '-' (what Docker, DNS and Netmaker all accept)"
_NAME_RE = re.compile(r"[a-z]([a-z0-9-]{0,30}[a-z0-9])?")
YAML_BOOL_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})
"""Words one YAML reader takes as a boolean (or null) and another as text: never a name."""
MD5_MAX_LEN = 80
"""Linux TCP_MD5SIG_MAXKEYLEN."""
RESERVED_ASNS = {
    0: "AS 0 is reserved (RFC 7607) and never valid in BGP",
    23456: "AS 23456 is AS_TRANS (RFC 6793), not a real AS",
    65535: "AS 65535 is reserved (RFC 7300)",
    4294967295: "AS 4294967295 is reserved (RFC 7300)",
}
BOOL_HINT = "YAML reads yes/no/on/off/true/false as a boolean"


def _no_bool(value: object) -> None:
    if isinstance(value, bool):
        raise ValueError(f"{BOOL_HINT}; write the value itself (quote it if it is text)")


def _whole(value: object) -> object:
    """An integer written with ASCII digits; never a boolean, never other digits."""
    _no_bool(value)
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]{1,20}", value.strip()):
            raise ValueError("must be a whole number written with the digits 0-9")
        return int(value)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("must be a whole number")
    return value


def _name(value: object) -> str:
    _no_bool(value)
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise ValueError(NAME_RULE)
    if value in YAML_BOOL_WORDS:
        raise ValueError(f"'{value}' is a boolean or null to some YAML readers; choose another name")
    return value


def _asn(value: object) -> int:
    _no_bool(value)
    if not isinstance(value, (int, str)):
        raise ValueError("an ASN must be a whole number from 1 to 4294967294")
    if isinstance(value, str):
        text = value.strip().upper().removeprefix("AS")
        if not re.fullmatch(r"[0-9]{1,10}", text):
            raise ValueError("an ASN must be a whole number from 1 to 4294967294, digits 0-9")
        value = int(text)
    if value < 0 or value > U32:
        raise ValueError("an ASN must be a whole number from 1 to 4294967294 (32 bits)")
    if value in RESERVED_ASNS:
        raise ValueError(RESERVED_ASNS[value])
    return value


def _network(value: object) -> Union[IPv4Network, IPv6Network]:
    if isinstance(value, (IPv4Network, IPv6Network)):
        return value
    if not isinstance(value, str):
        raise ValueError("a prefix must be written like 44.30.127.0/24")
    if "/" not in value:
        raise ValueError("a prefix needs its length, like 44.30.127.0/24")
    try:
        return ip_network(value, strict=True)
    except ValueError as exc:
        try:
            loose = ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"not a valid IP prefix ({exc})") from None
        raise ValueError(f"host bits are set; the network is {loose}") from None


def _ipv4_network(value: object) -> IPv4Network:
    net = _network(value)
    if not isinstance(net, IPv4Network):
        raise ValueError("must be an IPv4 prefix")
    return net


def _ipv4(value: object) -> IPv4Address:
    try:
        addr = value if isinstance(value, IPv4Address) else ip_address(value)
    except ValueError:
        raise ValueError("must be an IPv4 address like 172.30.0.1") from None
    if not isinstance(addr, IPv4Address):
        raise ValueError("must be an IPv4 address (router ids and link addresses are IPv4)")
    return addr


def _ipv6_network(value: object) -> IPv6Network:
    net = _network(value)
    if not isinstance(net, IPv6Network):
        raise ValueError("must be an IPv6 prefix like 2001:db8:30::/64")
    return net


def _ipv6(value: object) -> IPv6Address:
    try:
        addr = value if isinstance(value, IPv6Address) else ip_address(value)
    except ValueError:
        raise ValueError("must be an IPv6 address like 2001:db8:30::1") from None
    if not isinstance(addr, IPv6Address):
        raise ValueError("must be an IPv6 address like 2001:db8:30::1")
    return addr


def _ip(value: object) -> Union[IPv4Address, IPv6Address]:
    try:
        return value if isinstance(value, (IPv4Address, IPv6Address)) else ip_address(value)
    except ValueError:
        raise ValueError("must be an IP address like 172.31.0.5 or 2001:db8::5") from None


def _router_id(addr: IPv4Address) -> IPv4Address:
    if addr.is_unspecified or addr.is_loopback or addr.is_multicast or addr == IPv4Address("255.255.255.255"):
        raise ValueError("a router id must not be 0.0.0.0, loopback, multicast or broadcast")
    return addr


def _password(secret: SecretStr) -> SecretStr:
    text = secret.get_secret_value()
    if not text:
        raise ValueError("empty; remove the key for no password")
    if len(text.encode()) > MD5_MAX_LEN:
        raise ValueError(f"longer than {MD5_MAX_LEN} bytes (the TCP-MD5 key limit)")
    if any(not " " <= c <= "~" or c == '"' for c in text):
        raise ValueError("only printable ASCII without '\"' (BIRD strings have no escapes; peers differ beyond ASCII)")
    return secret


def _text(pattern: str, rule: str, max_len: int):
    compiled = re.compile(pattern)

    def check(value: object) -> str:
        _no_bool(value)
        if not isinstance(value, str) or len(value) > max_len or not compiled.fullmatch(value):
            raise ValueError(rule)
        return value

    return check


_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
Name = Annotated[str, BeforeValidator(_name)]
Int = Annotated[int, BeforeValidator(_whole)]
Asn = Annotated[int, BeforeValidator(_asn)]
Prefix = Annotated[Union[IPv4Network, IPv6Network], BeforeValidator(_network)]
Prefix4 = Annotated[IPv4Network, BeforeValidator(_ipv4_network)]
Address4 = Annotated[IPv4Address, BeforeValidator(_ipv4)]
Prefix6 = Annotated[IPv6Network, BeforeValidator(_ipv6_network)]
Address6 = Annotated[IPv6Address, BeforeValidator(_ipv6)]
RouterId = Annotated[IPv4Address, BeforeValidator(_ipv4), AfterValidator(_router_id)]
Address = Annotated[Union[IPv4Address, IPv6Address], BeforeValidator(_ip)]
Password = Annotated[SecretStr, AfterValidator(_password)]
Domain = Annotated[
    str,
    BeforeValidator(_text(rf"{_LABEL}(\.{_LABEL})*", "a DNS name of a-z, 0-9, '-' and '.', labels of 1-63 characters", 240)),
]
Email = Annotated[
    str,
    BeforeValidator(_text(rf"[A-Za-z0-9._%+-]{{1,64}}@{_LABEL}(\.{_LABEL})+", "an e-mail address like noc@example.net (ASCII)", 254)),
]
DockerEndpoint = Annotated[
    str, BeforeValidator(_text(r"(unix|ssh|tcp)://[!-~]+", "a Docker endpoint: unix://, ssh:// or tcp:// and no spaces", 500))
]
Version = Annotated[str, BeforeValidator(_text(r"v[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}", "a version like v1.6.0", 20))]
HostKey = Annotated[
    str,
    BeforeValidator(
        _text(
            r"(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]{40,2000}={0,2}",
            "a host key as ssh-keyscan prints it, without the host name: '<type> <base64>'",
            2100,
        )
    ),
]
SshUser = Annotated[str, BeforeValidator(_text(r"[a-z_][a-z0-9_-]{0,31}", "a Unix user name like root or deploy", 32))]
LocalPath = Annotated[str, BeforeValidator(_text(r"[^\x00-\x1f\x7f]{1,1000}", "a file path on the machine running Pulumi", 1000))]
InterfaceName = Annotated[str, BeforeValidator(_text(r"[A-Za-z0-9_.-]{1,15}", "a Linux interface name (1-15 of A-Z, a-z, 0-9, '_', '.', '-')", 15))]
_REPOSITORY = r"[a-z0-9.-]+(:[0-9]{1,5})?(/[a-z0-9._-]+)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
ImageRepository = Annotated[
    str,
    BeforeValidator(_text(_REPOSITORY, "a registry and path like registry.example.net:5000/bgp4mesh", 255)),
]
ImageTag = Annotated[str, BeforeValidator(_text(_TAG, "a Docker tag like 1.2.0", 128))]
DIGEST_RULE = "a digest is 'sha256:' and 64 lowercase hex digits (the registry's Docker-Content-Digest)"
_DIGEST = r"sha256:[0-9a-f]{64}"
Digest = Annotated[str, BeforeValidator(_text(_DIGEST, DIGEST_RULE, 71))]
IMAGE_RULE = "an image like caddy:2.8.4, pinned by digest as caddy:2.8.4@sha256:<64 hex digits> or caddy@sha256:<64 hex digits>"
_image_text = _text(r"[!-~]+", IMAGE_RULE, 400)


def _image_reference(value: object) -> str:
    """name:tag, name@digest or name:tag@digest: a digest pins the image, whatever the tag
    is later pushed to point at."""
    text = _image_text(value)
    name, at, digest = text.partition("@")
    if at and not re.fullmatch(_DIGEST, digest):
        raise ValueError(DIGEST_RULE)
    if not re.fullmatch(rf"{_REPOSITORY}(:{_TAG}){'?' if at else ''}", name):
        raise ValueError(IMAGE_RULE)
    return text


ImageReference = Annotated[str, BeforeValidator(_image_reference)]
AdminUser = Annotated[str, BeforeValidator(_text(r"[a-z][a-z0-9-]{3,31}", "a user name of 4-32 characters of a-z, 0-9 and '-' starting with a letter (Netmaker needs more than 3)", 32))]
HttpsUrl = Annotated[str, BeforeValidator(_text(r"https://[!-~]+", "an https:// URL", 500))]
HostPort = Annotated[str, BeforeValidator(_text(rf"{_LABEL}(\.{_LABEL})*:[0-9]{{1,5}}", "host:port like stun.example.net:3478", 250))]
Pem = Annotated[
    str,
    BeforeValidator(_text(r"(-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----\s*)+", "PEM certificates", 100_000)),
]


INBOUND_RULE = "an opening like tcp/8080, tcp/8000-8010, udp/53 or udp/60000-60100 (ports 1-65535, first <= last)"
_INBOUND_RE = re.compile(r"(tcp|udp)/([0-9]{1,5})(?:-([0-9]{1,5}))?")


@dataclass(frozen=True, order=True)
class PortRange:
    """What the Internet may open on a member's public mesh address: one protocol and an
    inclusive port range (a single port is first == last)."""

    proto: str
    first: int
    last: int

    def __str__(self) -> str:
        return f"{self.proto}/{self.first}" if self.first == self.last else f"{self.proto}/{self.first}-{self.last}"


def _inbound(value: object) -> PortRange:
    """`tcp/PORT`, `tcp/FIRST-LAST`, `udp/...`: text, so a YAML number or a typo fails here."""
    if isinstance(value, PortRange):
        return value
    _no_bool(value)
    found = _INBOUND_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if not found:
        raise ValueError(INBOUND_RULE)
    first = int(found[2])
    last = int(found[3]) if found[3] else first
    if not 1 <= first <= last <= 65535:
        raise ValueError(INBOUND_RULE)
    return PortRange(found[1], first, last)


Inbound = Annotated[PortRange, BeforeValidator(_inbound)]


