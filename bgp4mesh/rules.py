"""Rules across config sections: each yields every problem it finds, with its key path,
so `check` reports all of them at once."""

from __future__ import annotations

from ipaddress import IPv4Address, ip_network
from typing import Iterator

from .bogons import BOGON_PREFIXES_V4, BOGON_PREFIXES_V6
from .config import MESH_FAMILIES, PROBE_NAME, RTR_CACHE_NAME, RESERVED_NAMES, Host, StackConfig
from .problems import Problem, problem

Checks = Iterator[Problem]


def cross_section_problems(cfg: StackConfig) -> list[Problem]:
    """Every problem between sections of a model whose sections are each valid."""
    checks = (
        _check_prefixes, _check_asns, _check_names, _check_references, _check_overlaps, _check_inside, _check_mesh_ips, _check_remote,
        _check_routers, _check_probe, _check_rpki, _check_authentication, _check_inbound, _check_families, _check_observability,
    )
    return [p for check in checks for p in check(cfg)]


def _check_prefixes(cfg: StackConfig) -> Checks:
    policy = cfg.policy
    for i, prefix in enumerate(cfg.prefixes):
        key = f"prefixes[{i}]"
        low, high = policy.length_range(prefix.version)
        if prefix.prefixlen == 0:
            yield Problem(key, prefix, "a default route is not a block this AS can originate")
            continue
        if prefix.prefixlen > high:
            yield Problem(key, prefix, f"longer than /{high}, so upstreams would filter it; announce a shorter prefix")
        if prefix.prefixlen < low:
            yield Problem(key, prefix, f"shorter than /{low} (policy.min_prefix_length_v{prefix.version}), so upstreams would filter it")
        if policy.bogon_filter and not policy.exempt_prefix(prefix):
            bogons = BOGON_PREFIXES_V4 if prefix.version == 4 else BOGON_PREFIXES_V6
            for bogon in (b for b in bogons if b.overlaps(prefix)):
                yield Problem(key, prefix, f"overlaps bogon {bogon}; announce your own block, or exempt it in policy.bogon_exempt_prefixes (a lab)")
    for (_, ka, a), (_, kb, b) in _nested([("own", f"prefixes[{i}]", p) for i, p in enumerate(cfg.prefixes)]):
        yield Problem(kb, b, f"overlaps {ka} = {a}; announce each block once")
    if not any(cfg.mesh.range.subnet_of(p) for p in cfg.prefixes if p.version == 4):
        yield Problem("mesh.range", cfg.mesh.range, f"not inside any announced prefix ({_join(cfg.prefixes)})")
    if cfg.mesh.range6 and not any(cfg.mesh.range6.subnet_of(p) for p in cfg.prefixes if p.version == 6):
        yield Problem("mesh.range6", cfg.mesh.range6, "not inside any announced IPv6 prefix")


def _check_asns(cfg: StackConfig) -> Checks:
    policy = cfg.policy
    if policy.bogon_asn(cfg.asn):
        yield Problem("asn", cfg.asn, "in the bogon ASN set (private, documentation or reserved): upstreams filter paths holding it; "
                      "use your public ASN or exempt it in policy.bogon_exempt_asns (a lab)")
    for i, u in enumerate(cfg.upstreams):
        if u.asn == cfg.asn:
            yield Problem(f"upstreams[{i}].asn", u.asn, "same as our own ASN; upstream sessions are eBGP")
        elif policy.bogon_asn(u.asn):
            yield Problem(f"upstreams[{i}].asn", u.asn, "in the bogon ASN set, so the import filter would reject every route from it; "
                          "exempt it in policy.bogon_exempt_asns (a lab)")


def _check_names(cfg: StackConfig) -> Checks:
    groups = {
        "hosts": [(f"hosts[{i}].name", h.name) for i, h in enumerate(cfg.hosts)],
        "containers": _containers(cfg),
    }
    for what, names in groups.items():
        first: dict[str, str] = {}
        for key, name in names:
            if name in first:
                yield Problem(key, name, f"already used by {first[name]}; {what} need unique names")
            first.setdefault(name, key)
    if cfg.lab is not None and cfg.lab.probe is not None:
        for key, name in groups["containers"]:
            if name == PROBE_NAME:
                yield Problem(key, name, "the lab probe's container name; choose another")
    for key, name in groups["containers"]:
        if name in RESERVED_NAMES:
            yield Problem(key, name, f"reserved for the Netmaker server's containers ({_join(sorted(RESERVED_NAMES))})")


def _containers(cfg: StackConfig) -> list[tuple[str, str]]:
    """(key, name) of every user-named container: border routers, upstreams (mock ISPs), nodes."""
    return (
        [(f"border_routers[{i}].name", r.name) for i, r in enumerate(cfg.border_routers)]
        + [(f"upstreams[{i}].name", u.name) for i, u in enumerate(cfg.upstreams)]
        + [(f"mesh.nodes[{i}].name", n.name) for i, n in enumerate(cfg.mesh.nodes)]
    )


def _check_references(cfg: StackConfig) -> Checks:
    hosts = {h.name for h in cfg.hosts}
    routers = {r.name for r in cfg.border_routers}
    refs = [(f"border_routers[{i}].host", r.host) for i, r in enumerate(cfg.border_routers)]
    refs += [(f"mesh.nodes[{i}].host", n.host) for i, n in enumerate(cfg.mesh.nodes)] + [("netmaker.host", cfg.netmaker.host)]
    for key, host in refs:
        if host not in hosts:
            yield Problem(key, host, f"no such host (hosts: {_join(sorted(hosts))})")
    neighbors: dict[tuple, str] = {}  # a mock ISP is a container at its address; a real one may serve several routers
    for i, u in enumerate(cfg.upstreams):
        if u.router is not None and u.router not in routers:
            yield Problem(f"upstreams[{i}].router", u.router, f"no such border router ({_join(sorted(routers))})")
        if u.kind == "mock" and cfg.lab is None:
            yield problem(f"upstreams[{i}].kind", "a mock ISP needs a lab stack (add a 'lab' section)")
        if u.interface is not None and (u.router is None or u.router in routers) and _host(cfg, cfg.router_of(u).host).ssh is None:
            yield Problem(f"upstreams[{i}].interface", u.interface, "only for a router on a remote host (`ssh`); a lab link is a Docker network")
        for field in ("neighbor", "neighbor6"):
            address = getattr(u, field)
            key = (address,) if u.kind == "mock" else (address, u.router)
            if address is not None and key in neighbors:
                yield Problem(f"upstreams[{i}].{field}", address, f"already the neighbor of {neighbors[key]}")
            neighbors.setdefault(key, f"upstreams[{i}]")
    ids: dict[IPv4Address, str] = {}
    for i, r in enumerate(cfg.border_routers):
        if r.router_id in ids:
            yield Problem(f"border_routers[{i}].router_id", r.router_id, f"already the router id of {ids[r.router_id]}")
        ids.setdefault(r.router_id, f"border_routers[{i}]")
    for i, u in enumerate(cfg.upstreams):
        if u.kind == "mock" and (u.router is None or u.router in routers) and u.mock_router_id == cfg.router_of(u).router_id:
            key = f"upstreams[{i}].mock.router_id" if u.mock.router_id else f"upstreams[{i}].neighbor"
            rule = f"the mock ISP's router id (mock.router_id, by default the neighbor) equals border router {cfg.router_of(u).name}'s; BGP needs distinct ids"
            yield Problem(key, u.mock_router_id, rule)


def _check_overlaps(cfg: StackConfig) -> Checks:
    """Link subnets (both families), the lab underlay and own prefixes must be disjoint."""
    ranges = [("link", f"upstreams[{i}].link", u.link) for i, u in enumerate(cfg.upstreams)]
    ranges += [("link", f"upstreams[{i}].link6", u.link6) for i, u in enumerate(cfg.upstreams) if u.link6 is not None]
    ranges += [("lab", "lab.underlay", cfg.lab.underlay)] if cfg.lab else []
    ranges += [("lab", "lab.exchange", cfg.lab.exchange)] if cfg.lab and cfg.lab.exchange else []
    ranges += [("own", f"prefixes[{i}]", p) for i, p in enumerate(cfg.prefixes)]
    for (kind_a, ka, a), (kind_b, kb, b) in _nested(ranges):
        shared_link = kind_a == kind_b == "link" and a == b  # an IXP LAN
        if not shared_link and not kind_a == kind_b == "own":  # own overlaps: _check_prefixes
            yield Problem(kb, b, f"overlaps {ka} = {a}; each range must be distinct")


def _check_inside(cfg: StackConfig) -> Checks:
    """Link addresses and egress ranges against own prefixes; egress ranges against
    what Netmaker v1.6.0 refuses (logic.ValidateEgressCIDR: any overlap with the
    network's range or loopback; only '*' is its internet gateway, not 0.0.0.0/0)."""
    items = [("own", f"prefixes[{i}]", p) for i, p in enumerate(cfg.prefixes)]
    fields = ("neighbor", "local_address", "neighbor6", "local_address6")
    items += [("addr", f"upstreams[{i}].{f}", ip_network(getattr(u, f))) for i, u in enumerate(cfg.upstreams) for f in fields if getattr(u, f) is not None]
    items += [("egress", f"mesh.egress_ranges[{i}]", r) for i, r in enumerate(cfg.mesh.egress_ranges)]
    items += [("mesh", "mesh.range", cfg.mesh.range)] + ([("mesh", "mesh.range6", cfg.mesh.range6)] if cfg.mesh.range6 else [])
    items += [("loopback", "loopback", ip_network(n)) for n in ("127.0.0.0/8", "::1/128")]
    reported: set[str] = set()  # one problem per egress range
    for (kind_a, ka, a), (kind_b, kb, b) in _nested(items):
        if {ka, kb} & reported:
            continue
        if (kind_a, kind_b) == ("own", "addr"):
            yield Problem(kb, b.network_address, f"inside own prefix {a}")
        elif (kind_a, kind_b) == ("own", "egress") or (kind_a, kind_b) == ("egress", "own") and a == b:
            key, net = (kb, b) if kind_b == "egress" else (ka, a)
            reported.add(key)
            yield Problem(key, net, f"equal to or inside own prefix {a if kind_a == 'own' else b}; the mesh would send its own block out to the ISP")
        elif (kind_a, kind_b) in (("egress", "mesh"), ("egress", "loopback"), ("loopback", "egress")):
            key, net, other = (ka, a, b) if kind_a == "egress" else (kb, b, a)
            reported.add(key)
            hint = "; for a default route set mesh.internet_gateway (Netmaker's internet gateway, '*')" if net.prefixlen == 0 else ""
            yield Problem(key, net, f"Netmaker refuses an egress range overlapping {other}{hint}")


def _check_mesh_ips(cfg: StackConfig) -> Checks:
    rng = cfg.mesh.range
    pinned: dict[IPv4Address, str] = {}
    entries = [(f"border_routers[{i}].mesh_ip", r.mesh_ip) for i, r in enumerate(cfg.border_routers)]
    entries += [(f"mesh.nodes[{i}].ip", n.ip) for i, n in enumerate(cfg.mesh.nodes)]
    for key, ip in entries:
        if ip is None:
            continue
        if ip not in rng:
            yield Problem(key, ip, f"outside mesh.range {rng}")
        elif ip in (rng.network_address, rng.broadcast_address):
            yield Problem(key, ip, f"the network or broadcast address of {rng}")
        elif ip in pinned:
            yield Problem(key, ip, f"already pinned by {pinned[ip]}")
        pinned.setdefault(ip, key)
    hosts = rng.num_addresses - 2
    wanted = len(cfg.border_routers) + len(cfg.mesh.nodes)
    if wanted > hosts:
        yield Problem("mesh.range", rng, f"{wanted} mesh members but only {hosts} addresses")


def _check_remote(cfg: StackConfig) -> Checks:
    """What only a deployment on real hosts has, and what only a lab has."""
    nm = cfg.netmaker
    if nm.acme_ca_roots is not None and nm.tls != "acme":
        yield problem("netmaker.acme_ca_roots", "only with tls: acme")
    if cfg.lab is None:
        return
    for i, h in enumerate(cfg.hosts):
        if h.ssh is not None:
            yield problem(f"hosts[{i}].ssh", "a lab runs on this machine's Docker engine; remote hosts are for a stack without `lab`")
    if nm.stun_servers:
        yield problem("netmaker.stun_servers", "a lab is offline and its members have static endpoints; STUN is for hosts behind NAT")


def _host(cfg: StackConfig, name: str) -> Host:
    return next((h for h in cfg.hosts if h.name == name), Host(name=name))


def _check_routers(cfg: StackConfig) -> Checks:
    """Several border routers: iBGP between them, and gateways the nodes can probe."""
    if len(cfg.border_routers) < 2:
        return
    seen: dict[IPv4Address, str] = {}
    for i, r in enumerate(cfg.border_routers):
        key = f"border_routers[{i}]"
        if r.mesh_ip is None:
            yield problem(f"{key}.mesh_ip", "pin it: with several border routers every node's egress failover probes the gateways by address")
        if cfg.lab is not None and r.ibgp_address is not None:
            yield Problem(f"{key}.ibgp_address", r.ibgp_address, "a lab's border routers peer over the underlay; remove it")
        elif cfg.lab is None and r.ibgp_address is None:
            yield problem(f"{key}.ibgp_address", "required with several border routers on real hosts: where the others reach this one for iBGP")
        elif r.ibgp_address is not None:
            if r.ibgp_address in seen:
                yield Problem(f"{key}.ibgp_address", r.ibgp_address, f"already the iBGP address of {seen[r.ibgp_address]}")
            seen.setdefault(r.ibgp_address, key)


def _check_probe(cfg: StackConfig) -> Checks:
    """The lab's exchange and probe: addresses and an AS the border's policy accepts."""
    if cfg.lab is None:
        return
    if cfg.lab.exchange is not None and not any(u.kind == "mock" for u in cfg.upstreams):
        yield Problem("lab.exchange", cfg.lab.exchange, "no mock ISP to put on it")
    probe = cfg.lab.probe
    if probe is None:
        return
    if cfg.lab.exchange is None:
        yield problem("lab.probe", "needs lab.exchange: the probe peers with the mock ISPs there")
    taken = {cfg.asn: "our own ASN"} | {u.asn: f"upstream {u.name}" for u in cfg.upstreams}
    if probe.asn in taken:
        yield Problem("lab.probe.asn", probe.asn, f"already {taken[probe.asn]}; the probe is an AS of its own")
    elif cfg.policy.bogon_asn(probe.asn):
        yield Problem("lab.probe.asn", probe.asn, "in the bogon ASN set, so the border would reject its prefix; exempt it in policy.bogon_exempt_asns")
    for i, own in enumerate(cfg.prefixes):
        if own.version == 4 and own.overlaps(probe.prefix):
            yield Problem("lab.probe.prefix", probe.prefix, f"overlaps prefixes[{i}] = {own}")
    if cfg.policy.bogon_filter and not cfg.policy.exempt_prefix(probe.prefix):
        for bogon in (b for b in BOGON_PREFIXES_V4 if b.overlaps(probe.prefix)):
            yield Problem("lab.probe.prefix", probe.prefix, f"overlaps bogon {bogon}, which the border rejects; use an exempt test net")


"""The container name of a lab's n-th RTR cache (StackConfig.rtr_caches)."""


def _check_rpki(cfg: StackConfig) -> Checks:
    """A lab runs a cache at each rpki.caches address: on the underlay, where every border
    router reaches it, at an address nothing else there holds."""
    if cfg.lab is None:
        if cfg.rpki is not None and not cfg.rpki.caches:
            yield problem("rpki.caches", "list at least one RTR cache (address, port): the routers validate with what it serves")
        return
    if cfg.lab.roas and cfg.rpki is None:
        yield problem("lab.roas", "served by the lab's RTR caches, which exist only with bgp4mesh:rpki (caches on the underlay)")
    if cfg.rpki is None:
        return
    names = {RTR_CACHE_NAME.format(n=i + 1) for i in range(len(cfg.rtr_caches))}
    for key, name in _containers(cfg):
        if name in names:
            yield Problem(key, name, "the container name of one of the lab's RTR caches; choose another")


def _check_authentication(cfg: StackConfig) -> Checks:
    """A real upstream's session with neither TCP-MD5 nor GTSM can be reset or fed by anyone
    who reaches its link address: only when the config says so (`unauthenticated`)."""
    if cfg.lab is not None:
        return
    for i, u in enumerate(cfg.upstreams):
        if u.kind == "real" and u.password is None and not u.ttl_security and not u.unauthenticated:
            yield problem(f"upstreams[{i}]", "neither a TCP-MD5 password nor GTSM: set `password` (pulumi config set --secret --path "
                          f"'bgp4mesh:upstreams[{i}].password'), `ttl_security: true` if the peer runs GTSM, or `unauthenticated: true`")


def _check_inbound(cfg: StackConfig) -> Checks:
    """The border routers open a member's ports by its address, which only a pin fixes
    before the member joins; an opening listed twice or inside another is a typo."""
    members = [(f"border_routers[{i}]", "mesh_ip", r.mesh_ip, r.inbound) for i, r in enumerate(cfg.border_routers)]
    members += [(f"mesh.nodes[{i}]", "ip", n.ip, n.inbound) for i, n in enumerate(cfg.mesh.nodes)]
    for key, pin, address, inbound in members:
        if inbound and address is None:
            yield problem(f"{key}.{pin}", "pin it: the border routers open `inbound` by the member's mesh address")
        for j, rule in enumerate(inbound):
            other = next((o for o in inbound[:j] if o.proto == rule.proto and o.first <= rule.last and rule.first <= o.last), None)
            if other is not None:
                yield Problem(f"{key}.inbound[{j}]", str(rule), f"overlaps {other}; list each port once")


def _check_families(cfg: StackConfig) -> Checks:
    """Own prefixes of a family need a session of that family to be announced over; a mesh
    value of a family the mesh does not carry yet (IPv6) would be dropped silently on the
    way to the members: refuse both, naming the key."""
    carried = {v for u in cfg.upstreams for v in u.families}
    for i, prefix in enumerate(cfg.prefixes):
        if prefix.version not in carried:
            yield Problem(f"prefixes[{i}]", prefix, f"no upstream has an IPv{prefix.version} session to announce it over (give one link6, neighbor6 and local_address6)")
    owned = {p.version for p in cfg.prefixes}
    for i, u in enumerate(cfg.upstreams):
        if u.link6 is not None and 6 not in owned:
            yield Problem(f"upstreams[{i}].link6", u.link6, "an IPv6 session with nothing to announce: add your IPv6 block to `prefixes`")
    if 6 in carried and len(cfg.border_routers) > 1 and cfg.lab is not None and cfg.lab.underlay6 is None:
        yield problem("lab.underlay6", "IPv6 sessions with several border routers need IPv6 iBGP between them: give the underlay an IPv6 subnet")
    if 6 in carried and len(cfg.border_routers) > 1 and cfg.lab is None:
        for i, r in enumerate(cfg.border_routers):
            if r.ibgp_address6 is None:
                yield problem(f"border_routers[{i}].ibgp_address6", "IPv6 sessions with several border routers on real hosts need IPv6 iBGP: where the others reach this one in IPv6")
    why = "the mesh carries IPv" + "/".join(map(str, MESH_FAMILIES)) + " only so far: remove it; bgp4mesh would drop it silently"
    if cfg.mesh.range6 is not None and 6 not in MESH_FAMILIES:
        yield Problem("mesh.range6", cfg.mesh.range6, why)
    for i, net in enumerate(cfg.mesh.egress_ranges):
        if net.version not in MESH_FAMILIES:
            yield Problem(f"mesh.egress_ranges[{i}]", net, why)
    for i, net in enumerate(cfg.looking_glass.allow if cfg.looking_glass else []):
        if net.version not in MESH_FAMILIES:
            yield Problem(f"looking_glass.allow[{i}]", net, why)


def _check_observability(cfg: StackConfig) -> Checks:
    """Monitoring runs on a host of the stack. On real hosts that is Netmaker's host, with a
    public address: the control-plane exporter reads the broker over plain MQTT, which only
    that host reaches (the front offers clients wss:// alone, which mosquitto_sub does not
    speak), and the members' exporters answer that one address."""
    mon = cfg.monitoring
    if mon is None:
        return
    hosts = {h.name: h for h in cfg.hosts}
    if mon.host is not None and mon.host not in hosts:
        yield Problem("monitoring.host", mon.host, f"no such host (hosts: {_join(sorted(hosts))})")
        return
    if cfg.lab is not None:
        return
    key, name = ("monitoring.host", mon.host) if mon.host else ("netmaker.host", cfg.netmaker.host)
    if name != cfg.netmaker.host:
        yield Problem(key, name, f"must be Netmaker's host {cfg.netmaker.host}: the control-plane exporter reads the broker over plain MQTT, "
                      "which only that host reaches (clients get wss:// through the front, which mosquitto_sub does not speak)")
    elif name in hosts and hosts[name].endpoint is None:
        yield problem(key, f"host {name} runs the monitoring and needs an `endpoint`: every member's exporters answer that address alone")


def _nested(items: list[tuple]) -> Iterator[tuple[tuple, tuple]]:
    """(outer, inner) for every pair of items whose networks (the last element) are
    nested or equal -- the only way two CIDR blocks overlap. A sweep in address order
    keeps the chain of open enclosing networks (at most 129 deep)."""
    chain: list[tuple] = []
    for item in sorted(items, key=lambda it: (it[-1].version, int(it[-1].network_address), it[-1].prefixlen)):
        net = item[-1]
        while chain and not (chain[-1][-1].version == net.version and net.subnet_of(chain[-1][-1])):
            chain.pop()
        yield from ((outer, item) for outer in chain)
        chain.append(item)


def _join(items) -> str:
    return ", ".join(str(x) for x in items) or "none"
