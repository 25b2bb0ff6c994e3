"""BIRD 2 configuration rendered from the stack model.

One Jinja2 template per daemon (border router, mock ISP). This module turns the
model into plain template data -- bogon sets minus the policy's exemptions, one
entry per address family that has own prefixes, one per upstream -- and the
templates only lay it out: every number and switch in a rendered file comes
from `cfg.policy`, the upstream or the router.

Rendered files are relative to /etc/bird. A border router's files contain the
upstream's TCP-MD5 password in clear text when one is set: treat the output as
secret.

BIRD names: no BIRD symbol is a raw user name (BIRD 2.0.12 rejects hundreds of
its keywords as protocol names, quoted or not: `primary`, `router`, `static`...).
`bird_symbol(kind, name)` makes every one: `<kind>_<name with '-' as '_'>`. The
BGP protocol for an upstream (on the border) or for a border router (on the mock
ISP) is `bird_protocol(name)`, e.g. upstream `isp-a` -> `peer_isp_a`, so
`birdc show protocols all peer_isp_a`.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Iterable, Sequence, Union

import jinja2

from .bogons import BOGON_ASNS, BOGON_PREFIXES_V4, BOGON_PREFIXES_V6
from .config import BorderRouter, MockIsp, StackConfig, Upstream

Network = Union[IPv4Network, IPv6Network]

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
BORDER_TEMPLATE = "bird-border.conf.j2"
ISP_TEMPLATE = "bird-isp.conf.j2"
MAIN_FILE = "bird.conf"

_FAMILIES = {
    4: ("ipv4", "v4", "0.0.0.0/0"),
    6: ("ipv6", "v6", "::/0"),
}


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
            "protocol": bird_protocol(u.name),
            "asn": u.asn,
            "neighbor": u.neighbor,
            "local_address": u.local_address,
            "max_prefixes": u.max_prefixes,
            "limit_action": u.limit_action,
            "accept_default": u.accept_default,
            "password": _password(u),
            "import_filter": {f["tag"]: bird_symbol(f"import_{f['tag']}", u.name) for f in families},
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


def render_isp(cfg: StackConfig, upstream: Upstream) -> dict[str, str]:
    """The /etc/bird files of the mock ISP standing in for `upstream`.

    Uses `upstream.mock`; an upstream without one renders as a default MockIsp
    (no test prefixes, a default route)."""
    mock = upstream.mock or MockIsp()
    announce: dict[int, list[str]] = {4: [str(p) for p in mock.announce]}
    if mock.default_route:
        announce[4].append("0.0.0.0/0")
    versions = {4} | {p.version for p in cfg.prefixes}
    families = []
    for version in sorted(versions):
        name, tag, _default = _FAMILIES[version]
        families.append(
            {
                "name": name,
                "tag": tag,
                "announce": announce.get(version, []),
                "has_default": version == 4 and mock.default_route,
            }
        )
    text = _env().get_template(ISP_TEMPLATE).render(
        upstream=upstream,
        router_id=upstream.mock_router_id or upstream.neighbor,
        peer_name=cfg.router_of(upstream).name,
        peer_protocol=bird_protocol(cfg.router_of(upstream).name),
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


def bird_symbol(kind: str, name: str) -> str:
    """The BIRD symbol of a user-named object: `<kind>_<name>` with '-' as '_'.

    Names are a-z, 0-9 and '-' (config.Name), so the mapping is one-to-one, and no
    BIRD keyword starts with one of our kinds (`peer_`, `import_v4_`, `import_v6_`),
    so no user name can collide with a keyword."""
    return f"{kind}_{name.replace('-', '_')}"


def bird_protocol(name: str) -> str:
    """The BGP protocol's name in BIRD (and birdc) for an upstream on the border,
    or for a border router on its mock ISP: `peer_<name>`, e.g. 'isp-a' -> 'peer_isp_a'."""
    return bird_symbol("peer", name)


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
    """The TCP-MD5 key; the model has checked that BIRD and peers can take it."""
    return None if upstream.password is None else upstream.password.get_secret_value()


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
        env.filters["onoff"] = _onoff
        _ENV = env
    return _ENV


def template(name: str) -> jinja2.Template:
    """One of bgp4mesh/templates, from the one environment every daemon config uses."""
    return _env().get_template(name)
