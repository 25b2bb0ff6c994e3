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

import json
from ipaddress import IPv4Network, IPv6Network, ip_network

from typing import Iterable, Sequence, Union


from .bogons import BOGON_ASNS, BOGON_PREFIXES_V4, BOGON_PREFIXES_V6
from .config import PROBE_NAME, StackConfig, Upstream
from .jinja import template
from .naming import bird_protocol, bird_rpki, bird_symbol, roa_table
from .plan import IspPlan, RouterPlan, Session, StackPlan

Network = Union[IPv4Network, IPv6Network]

BORDER_TEMPLATE = "bird-border.conf.j2"
ISP_TEMPLATE = "bird-isp.conf.j2"
MAIN_FILE = "bird.conf"
DRAINED_FILE = "bird-drained.conf"
"""The border router drained: every announcement with the graceful-shutdown community and
`policy.drain_prepend` more prepends. The router's health agent (images/netclient/agent, its border-health part)
switches BIRD between the two files in place (`birdc configure`), so draining restarts no
session: it starts drained and announces normally once its mesh works and no maintenance
is set."""

_FAMILIES = {
    4: ("ipv4", "v4", "0.0.0.0/0"),
    6: ("ipv6", "v6", "::/0"),
}


# ---- public API -------------------------------------------------------------


def render_border(plan: StackPlan, router: RouterPlan) -> dict[str, str]:
    """The /etc/bird files of a border router: {relative path: content}, normal and drained."""
    families = _families(plan.model)
    return {MAIN_FILE: _border_text(plan, router, families, drained=False), DRAINED_FILE: _border_text(plan, router, families, drained=True)}


def _families(cfg: StackConfig) -> list[dict]:
    """Per address family of the own prefixes: what its filters need."""
    policy = cfg.policy
    families = []
    for version in _versions(cfg.prefixes):
        name, tag, default = _FAMILIES[version]
        own = [p for p in cfg.prefixes if p.version == version]
        bogons = BOGON_PREFIXES_V4 if version == 4 else BOGON_PREFIXES_V6
        v_exempt = [e for e in policy.bogon_exempt_prefixes if e.version == version]
        families.append(
            {
                "version": version,
                "name": name,
                "tag": tag,
                "default": default,
                "own": [str(p) for p in own],
                "own_space": [f"{p}+" for p in own],
                "bogons": subtract_prefixes(bogons, v_exempt),
                "exempt": [str(e) for e in v_exempt],
                "min_len": policy.length_range(version)[0],
                "max_len": policy.length_range(version)[1],
            }
        )
    return families


def _upstream_sessions(plan: StackPlan, router: RouterPlan, families: list[dict], drained: bool) -> list[dict]:
    """The router's eBGP sessions as the template lays them out, each with its own family."""
    return [_upstream_session(plan, s, [f for f in families if f["version"] == s.version], drained) for s in router.sessions]


def _upstream_session(plan: StackPlan, session: Session, families: list[dict], drained: bool) -> dict:
    u = session.upstream
    return {
            "name": u.name,
            "description": f"{u.name} AS{u.asn}" + ("" if session.version == 4 else f" (IPv{session.version})"),
            "protocol": session.protocol,
            "asn": u.asn,
            "neighbor": session.neighbor,
            "local_address": session.local_address,
            "max_prefixes": u.max_prefixes,
            "receive_limit": u.receive_limit,
            "limit_action": u.limit_action,
            "ttl_security": u.ttl_security,
            "accept_default": u.accept_default,
            "password": _password(u),
            "families": families,
            "import_filter": {f["tag"]: bird_symbol(f"import_{f['tag']}", u.name) for f in families},
            "local_pref": u.local_pref,
            "prepends": u.prepend + plan.model.policy.drain_prepend * drained,
            # the shared own-prefix filter unless this session's announcement is changed
            "export_filter": {
                f["tag"]: bird_symbol(f"export_{f['tag']}", u.name) if u.prepend or drained else f"export_own_{f['tag']}"
                for f in families
            },
            "bfd": u.bfd,
        }


def _border_text(plan: StackPlan, router: RouterPlan, families: list[dict], drained: bool) -> str:
    cfg = plan.model
    policy = cfg.policy
    exempt_asns = [(r.first, r.last) for r in policy.bogon_exempt_asns]
    upstreams = _upstream_sessions(plan, router, families, drained)
    by_version = {f["version"]: f for f in families}
    ibgp = [
        {"name": p.router, "protocol": p.protocol, "neighbor": p.address, "families": [by_version[p.version]]}
        for p in router.ibgp
        if p.version in by_version
    ]
    return template(BORDER_TEMPLATE).render(
        router=router.spec,
        asn=cfg.asn,
        policy=policy,
        timers=policy.timers,
        families=families,
        bogon_asns=[_asn_range(a, b) for a, b in subtract_ranges(BOGON_ASNS, exempt_asns)],
        exempt_asns=[_asn_range(a, b) for a, b in exempt_asns],
        upstreams=upstreams,
        ibgp=ibgp,
        ibgp_families=[f for f in families if any(p["families"] == [f] for p in ibgp)],  # one iBGP session per family
        bfd=any(u["bfd"] for u in upstreams) or bool(ibgp and policy.ibgp_bfd),
        drained=drained,
        rpki=_rpki(cfg),
        ibgp_limits=dict(zip(("imported", "received"), plan.ibgp_limits)),
        bgp_table=router.kernel_table,
        kernels=_kernels(cfg, router.kernel_table, families),
    )


BGP_KERNEL_METRIC = 32
"""BIRD's default: below the host's management default (metric 0) in one table."""
OWN_UNREACHABLE_METRIC = 4200
"""The own prefixes' `unreachable` in the main table: below every real route to them (the
mesh interface's, metric 0), and not border-health's 4242 for the mesh range (HA)."""


def _kernels(cfg: StackConfig, table: int | None, families: list[dict]) -> list[dict]:
    """The kernel protocols: BGP routes to the router's BGP table, the own prefixes as
    `unreachable` to the main table. BIRD syncs one kernel table per BIRD table and one BIRD
    table per kernel table, so where both are the main table (a lab) one protocol carries
    both at one metric; otherwise the own prefixes' copy has a BIRD table of its own."""
    bgp = cfg.policy.export_to_kernel
    out = []
    for f in families:
        tag = f["tag"]
        if table is None:
            out.append(_kernel(f, f"kernel_{tag}", None, BGP_KERNEL_METRIC, bgp=bgp, own=f"own_{tag}"))
            continue
        if bgp:
            out.append(_kernel(f, f"kernel_{tag}", table, BGP_KERNEL_METRIC, bgp=True))
        static = {"table": f"own_kernel_{tag}", "routes": f["own"]}
        out.append(_kernel(f, f"kernel_own_{tag}", None, OWN_UNREACHABLE_METRIC, own=f"own_unreachable_{tag}", static=static))
    return out


def _kernel(family: dict, name: str, table: int | None, metric: int, bgp: bool = False, own: str | None = None, static: dict | None = None) -> dict:
    """One kernel protocol: `table` None is main; it exports BGP routes (`bgp`) and/or the
    routes of static protocol `own` (unreachable), which `static` declares in a table of its own."""
    return {"name": name, "family": family["name"], "table": table, "metric": metric, "bgp": bgp, "own": own, "static": static}


def _rpki(cfg: StackConfig) -> dict | None:
    """Route origin validation: one `protocol rpki` per cache, all filling the same ROA
    tables, and whether an invalid route is rejected."""
    if cfg.rpki is None:
        return None
    caches = [{"protocol": bird_rpki(i), "address": c.address, "port": c.port} for i, c in enumerate(cfg.rtr_caches)]
    tables = {_FAMILIES[v][1]: {"type": f"roa{v}", "name": roa_table(v)} for v in _versions(cfg.prefixes)}
    return {"caches": caches, "tables": tables, "reject": cfg.rpki.invalid == "reject", "retry": cfg.rpki.retry}


VRP_PATH = "/var/lib/stayrtr/vrps.json"
"""Where a lab's RTR cache reads its VRPs (components/rtr_cache.py)."""


def render_vrps(plan: StackPlan) -> str:
    """The VRP file of a lab's RTR caches (stayrtr reads rpki-client's JSON): `lab.roas`."""
    lab = plan.model.lab
    roas = [{"prefix": str(r.prefix), "maxLength": r.longest, "asn": r.asn} for r in (lab.roas if lab else [])]
    return json.dumps({"roas": roas}, indent=1) + "\n"


def render_isp(plan: StackPlan, isp: IspPlan) -> dict[str, str]:
    """The /etc/bird files of the mock ISP `isp`: its border router (a session per address
    family), and on a lab exchange the other mock ISPs and the probe (IPv4)."""
    cfg, up = plan.model, isp.session.upstream
    mock = up.mock
    peers = [
        {
            "protocol": session.peer,
            "description": f"border router {isp.router} AS{cfg.asn}" + ("" if session.version == 4 else f" (IPv{session.version})"),
            "source": session.neighbor,
            "neighbor": session.local_address,
            "asn": cfg.asn,
            "password": _password(up),
            "ttl_security": up.ttl_security,
            "bfd": up.bfd,
            "honor_graceful_shutdown": mock.honor_graceful_shutdown,
            "transit": True,
            "families": [_FAMILIES[session.version][1]],
        }
        for session in isp.sessions
    ]
    for version, here in isp.exchange_addresses.items():
        gshut = mock.honor_graceful_shutdown
        peers += [_exchange_peer(o.name, f"mock ISP {o.name}", here, o.exchange_addresses[version], o.session.upstream.asn, gshut, True, version)
                  for o in plan.isps if o.name != isp.name]
        if plan.probe is not None:
            peers.append(_exchange_peer(PROBE_NAME, "the lab probe", here, plan.probe.addresses[version], plan.probe.asn, gshut, True, version))
    defaults = [_FAMILIES[s.version][2] for s in isp.sessions] if mock.default_route else []
    announce = [str(p) for p in mock.announce] + defaults
    return {MAIN_FILE: _render_mock(cfg, f"mock ISP {up.name}", up.asn, isp.router_id, announce, peers)}


def render_probe(plan: StackPlan) -> dict[str, str]:
    """The /etc/bird files of the lab probe: its prefix announced to every mock ISP on the
    exchange, and nothing else (a customer, not transit between them); it takes all their
    routes (its best path shows where the Internet sends traffic for our prefixes)."""
    probe, spec = plan.probe, plan.model.lab.probe
    peers = [
        _exchange_peer(i.name, f"mock ISP {i.name}", here, i.exchange_addresses[version], i.session.upstream.asn, False, version=version)
        for version, here in probe.addresses.items()
        for i in plan.isps
    ]
    announce = [str(p) for p in (spec.prefix, spec.prefix6) if p is not None and p.version in probe.addresses]
    return {MAIN_FILE: _render_mock(plan.model, "the lab probe", probe.asn, probe.address, announce, peers)}


def _exchange_peer(name: str, description: str, source, neighbor, asn: int, honor_gshut: bool, transit: bool = False, version: int = 4) -> dict:
    return {
        "protocol": bird_protocol(name, version),
        "description": f"{description} AS{asn}" + ("" if version == 4 else f" (IPv{version})"),
        "source": source,
        "neighbor": neighbor,
        "asn": asn,
        "password": None,
        "ttl_security": False,
        "bfd": None,
        "honor_graceful_shutdown": honor_gshut,
        "transit": transit,
        "families": [_FAMILIES[version][1]],
    }


def _render_mock(cfg: StackConfig, what: str, asn: int, router_id, announce: list[str], peers: list[dict]) -> str:
    """A lab router (mock ISP or probe): static test prefixes, BGP with `peers`, learned
    routes in the kernel so it forwards by them."""
    used = {tag for p in peers for tag in p["families"]}
    families = []
    for version, (name, tag, default) in _FAMILIES.items():
        mine = [p for p in announce if ip_network(p).version == version]
        if tag in used:
            families.append({"name": name, "tag": tag, "announce": mine, "has_default": default in mine})
    return template(ISP_TEMPLATE).render(
        what=what,
        asn=asn,
        router_id=router_id,
        peers=peers,
        bfd=any(p["bfd"] for p in peers),
        timers=cfg.policy.timers,
        families=families,
    )


def render_all(plan: StackPlan) -> dict[str, dict[str, str]]:
    """{container name: files} for every border router, every mock ISP and the probe."""
    out = {r.name: render_border(plan, r) for r in plan.routers}
    out.update({i.name: render_isp(plan, i) for i in plan.isps})
    if plan.probe is not None:
        out[PROBE_NAME] = render_probe(plan)
    return out


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
