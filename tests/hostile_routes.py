"""Routes a mock ISP announces on top of its rendered config, for tests: prefixes and AS
paths the border's import policy must refuse. The ISP exports every static route, so a
test appends a static protocol to the rendered file; the product renders none of this."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Iterable, Union

Network = Union[IPv4Network, IPv6Network]


@dataclass(frozen=True)
class MockRoute:
    """`path` are the ASNs the border sees after the ISP's own, e.g. (23456,) makes the
    border receive the path `65001 23456`. Any 32-bit value is allowed, reserved ones
    included."""

    prefix: Network
    path: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        try:
            prefix = ip_network(self.prefix, strict=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"MockRoute prefix {self.prefix!r}: {exc}") from None
        path = tuple(self.path)
        for asn in path:
            if isinstance(asn, bool) or not isinstance(asn, int) or not 0 <= asn <= 0xFFFFFFFF:
                raise ValueError(f"MockRoute path: {asn!r} is not a 32-bit ASN")
        object.__setattr__(self, "prefix", prefix)
        object.__setattr__(self, "path", path)


def with_routes(bird_conf: str, routes: Iterable[MockRoute]) -> str:
    """`bird_conf` plus one static protocol per address family (`extra_v4`, `extra_v6`)
    announcing `routes`, each with its path prepended (BIRD prepends: last ASN first)."""
    routes = list(routes)
    if len({r.prefix for r in routes}) != len(routes):
        raise ValueError("with_routes: a prefix is given twice")
    text = bird_conf
    for version, family in ((4, "ipv4"), (6, "ipv6")):
        mine = [r for r in routes if r.prefix.version == version]
        if not mine:
            continue
        text += f"\nprotocol static extra_v{version} {{\n  {family};\n"
        for r in mine:
            prepends = "".join(f"    bgp_path.prepend({a});\n" for a in reversed(r.path))
            text += f"  route {r.prefix} blackhole {{\n{prepends}  }};\n" if prepends else f"  route {r.prefix} blackhole;\n"
        text += "}\n"
    return text
