"""BIRD 2 configuration rendered from the stack model.

One Jinja2 template per daemon (border router, mock ISP). This module turns the
model into plain template data -- bogon sets minus the policy's exemptions, one
entry per address family that has own prefixes, one per upstream -- and the
templates only lay it out: every number and switch in a rendered file comes
from `cfg.policy`, the upstream or the router.

Rendered files are relative to /etc/bird. A border router's files contain the
upstream's TCP-MD5 password in clear text when one is set: treat the output as
secret.

BIRD names: a BGP protocol is named exactly like its upstream (on the border)
or its border router (on the mock ISP). Names are written as quoted symbols
('isp-a') so hyphens and BIRD keywords are fine; in birdc use a quoted pattern
for names with a hyphen: `birdc show protocols all "isp-a"`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Iterable, Sequence, Union

import jinja2

from .bogons import BOGON_ASNS, BOGON_PREFIXES_V4, BOGON_PREFIXES_V6
from .config import BorderRouter, ConfigError, MockIsp, StackConfig, Upstream

Network = Union[IPv4Network, IPv6Network]

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
BORDER_TEMPLATE = "bird-border.conf.j2"
ISP_TEMPLATE = "bird-isp.conf.j2"
MAIN_FILE = "bird.conf"

AS_TRANS = 23456
# Linux TCP_MD5SIG_MAXKEYLEN.
MD5_MAX_LEN = 80

_FAMILIES = {
    4: ("ipv4", "v4", "0.0.0.0/0"),
    6: ("ipv6", "v6", "::/0"),
}


@dataclass(frozen=True)
class MockRoute:
    """A route a mock ISP announces on top of its configured ones.

    `path` are the ASNs the border sees after the ISP's own, e.g. (23456,) makes
    the border receive the path `65001 23456`. Any 32-bit value is allowed,
    reserved ones included: tests use this to send hostile routes."""

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


# ---- public API -------------------------------------------------------------


def render_border(cfg: StackConfig, router: BorderRouter) -> dict[str, str]:
    """The /etc/bird files of a border router: {relative path: content}."""
    policy = cfg.policy
    exempt = list(policy.bogon_exempt_prefixes)
    families = []
    for version in _versions(cfg.prefixes):
        name, tag, default = _FAMILIES[version]
        own = [p for p in cfg.prefixes if p.version == version]
        bogons = BOGON_PREFIXES_V4 if version == 4 else BOGON_PREFIXES_V6
        v_exempt = [e for e in exempt if e.version == version]
        families.append(
            {
                "name": name,
                "tag": tag,
                "default": default,
                "own": [str(p) for p in own],
                "own_space": [f"{p}+" for p in own],
                "bogons": subtract_prefixes(bogons, v_exempt),
                "exempt": [str(e) for e in v_exempt],
                "min_len": policy.min_prefix_length_v4 if version == 4 else policy.min_prefix_length_v6,
                "max_len": policy.max_prefix_length_v4 if version == 4 else policy.max_prefix_length_v6,
            }
        )
    exempt_asns = [(r.first, r.last) for r in policy.bogon_exempt_asns]
    upstreams = [
        {
            "name": u.name,
            "asn": u.asn,
            "neighbor": u.neighbor,
            "local_address": u.local_address,
            "max_prefixes": u.max_prefixes,
            "limit_action": u.limit_action,
            "accept_default": u.accept_default,
            "password": _password(u),
            "import_filter": {f["tag"]: f"import_{u.name}_{f['tag']}" for f in families},
        }
        for u in cfg.upstreams_of(router)
    ]
    text = _env().get_template(BORDER_TEMPLATE).render(
        router=router,
        asn=cfg.asn,
        policy=policy,
        timers=policy.timers,
        families=families,
        bogon_asns=[_asn_range(a, b) for a, b in subtract_ranges(BOGON_ASNS, exempt_asns)],
        exempt_asns=[_asn_range(a, b) for a, b in exempt_asns],
        upstreams=upstreams,
    )
    return {MAIN_FILE: text}


def render_isp(cfg: StackConfig, upstream: Upstream, extra_routes: Iterable[MockRoute] = ()) -> dict[str, str]:
    """The /etc/bird files of the mock ISP standing in for `upstream`.

    Uses `upstream.mock`; an upstream without one renders as a default MockIsp
    (no test prefixes, a default route), which is only useful with extra_routes."""
    mock = upstream.mock or MockIsp()
    extra = [r if isinstance(r, MockRoute) else MockRoute(*r) for r in extra_routes]
    seen: set[Network] = set()
    for r in extra:
        if r.prefix in seen:
            raise ValueError(f"extra_routes: {r.prefix} given twice")
        seen.add(r.prefix)
    announce: dict[int, list[str]] = {4: [str(p) for p in mock.announce]}
    if mock.default_route:
        announce[4].append("0.0.0.0/0")
    versions = {4} | {p.version for p in cfg.prefixes} | {r.prefix.version for r in extra}
    families = []
    for version in sorted(versions):
        name, tag, _default = _FAMILIES[version]
        families.append(
            {
                "name": name,
                "tag": tag,
                "announce": announce.get(version, []),
                "has_default": version == 4 and mock.default_route,
                "extra": [
                    # BIRD prepends: the last ASN of the path goes on first.
                    {"prefix": str(r.prefix), "prepend": list(reversed(r.path))}
                    for r in extra
                    if r.prefix.version == version
                ],
            }
        )
    text = _env().get_template(ISP_TEMPLATE).render(
        upstream=upstream,
        router_id=mock.router_id or upstream.neighbor,
        peer_name=cfg.router_of(upstream).name,
        peer_asn=cfg.asn,
        password=_password(upstream),
        timers=cfg.policy.timers,
        families=families,
    )
    return {MAIN_FILE: text}


def render_all(cfg: StackConfig) -> dict[str, dict[str, str]]:
    """{container name: files} for every border router and every mocked upstream."""
    out = {r.name: render_border(cfg, r) for r in cfg.border_routers}
    out.update({u.name: render_isp(cfg, u) for u in cfg.upstreams if u.mock is not None})
    return out


def isp_addresses(upstream: Upstream) -> list[str]:
    """Addresses the mock ISP puts on `lo` so they answer ping: the first host of
    each announced prefix, as /32."""
    if upstream.mock is None:
        return []
    return [f"{next(iter(p.hosts()))}/{p.max_prefixlen}" for p in upstream.mock.announce]


# ---- set arithmetic (public for tests) --------------------------------------


def subtract_prefixes(bogons: Sequence[Network], exempt: Sequence[Network]) -> list[str]:
    """BIRD prefix-set entries matching every bogon and its more-specifics,
    except the exempt prefixes and their more-specifics.

    A bogon fully covered by an exemption disappears; one that only contains an
    exemption is split: the prefixes on the way down to the exemption are kept
    as exact entries and the untouched halves as `P+`."""
    out: list[str] = []
    for b in bogons:
        out.extend(_split(b, [e for e in exempt if e.version == b.version]))
    return out


def _split(net: Network, exempt: list[Network]) -> list[str]:
    if any(net.subnet_of(e) for e in exempt):
        return []
    inside = [e for e in exempt if e.subnet_of(net)]
    if not inside:
        return [f"{net}+"]
    out = [str(net)]
    for half in net.subnets(prefixlen_diff=1):
        out.extend(_split(half, inside))
    return out


def subtract_ranges(
    ranges: Iterable[tuple[int, int]], exempt: Iterable[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Inclusive integer ranges minus inclusive exempt ranges."""
    out = []
    exempt = sorted(exempt)
    for first, last in ranges:
        pieces = [(first, last)]
        for ef, el in exempt:
            next_pieces = []
            for a, b in pieces:
                if el < a or ef > b:
                    next_pieces.append((a, b))
                    continue
                if a < ef:
                    next_pieces.append((a, ef - 1))
                if el < b:
                    next_pieces.append((el + 1, b))
            pieces = next_pieces
        out.extend(pieces)
    return out


# ---- helpers ----------------------------------------------------------------


def _versions(prefixes: Iterable[Network]) -> list[int]:
    return sorted({p.version for p in prefixes})


def _asn_range(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}..{last}"


def _password(upstream: Upstream) -> str | None:
    if upstream.password is None:
        return None
    secret = upstream.password.get_secret_value()
    where = f"upstreams '{upstream.name}'.password"
    if not secret:
        raise ConfigError(f"{where}: empty; remove the key for no password")
    if len(secret) > MD5_MAX_LEN:
        raise ConfigError(f"{where}: longer than {MD5_MAX_LEN} characters (the TCP-MD5 key limit)")
    if '"' in secret or any(ord(c) < 32 or ord(c) == 127 for c in secret):
        raise ConfigError(f'{where}: must not contain \'"\' or control characters (BIRD strings have no escapes)')
    return secret


def _symbol(name: str) -> str:
    """A BIRD quoted symbol: allows '-' and never collides with a keyword."""
    if not name or len(name) > 64 or any(not (c.isalnum() or c in "_-.:") for c in name):
        raise ValueError(f"cannot use {name!r} as a BIRD symbol")
    return f"'{name}'"


def _onoff(value: bool) -> str:
    return "on" if value else "off"


_ENV: jinja2.Environment | None = None


def _env() -> jinja2.Environment:
    global _ENV
    if _ENV is None:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            autoescape=False,
        )
        env.filters["sym"] = _symbol
        env.filters["onoff"] = _onoff
        _ENV = env
    return _ENV


def template(name: str) -> jinja2.Template:
    """One of bgp4mesh/templates, from the one environment every daemon config uses."""
    return _env().get_template(name)
