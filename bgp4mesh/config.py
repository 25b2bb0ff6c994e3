"""The stack configuration model: everything a stack declares, validated before
any resource exists, so bad input fails with one message and nothing half-built.

Lists (hosts, border routers, upstreams, mesh nodes) keep multihoming, HA and
more nodes a data change. Every model rejects unknown keys, so a typo is an
error instead of a silently ignored setting.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_address, ip_network
from typing import Annotated, Literal, Optional, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    model_validator,
)

NAME_RULE = "a name must be 1-32 characters of a-z, 0-9 and '-', start with a letter and not end with '-' (what Docker, DNS and Netmaker all accept)"
_NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")

RESERVED_ASNS = {
    0: "AS 0 is reserved (RFC 7607) and never valid in BGP",
    23456: "AS 23456 is AS_TRANS (RFC 6793), not a real AS",
    65535: "AS 65535 is reserved (RFC 7300)",
    4294967295: "AS 4294967295 is reserved (RFC 7300)",
}


class ConfigError(ValueError):
    """Invalid stack configuration; str() is the operator-facing message."""


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=False)


def _name(value: object) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ValueError(NAME_RULE)
    return value


def _asn(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("an ASN must be a whole number from 1 to 4294967294")
    if isinstance(value, str):
        text = value.strip().upper().removeprefix("AS")
        if not text.isdigit():
            raise ValueError("an ASN must be a whole number from 1 to 4294967294")
        value = int(text)
    if value < 0 or value > 4294967295:
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
        addr = ip_address(value) if not isinstance(value, IPv4Address) else value
    except ValueError:
        raise ValueError("must be an IPv4 address like 172.30.0.1") from None
    if not isinstance(addr, IPv4Address):
        raise ValueError("must be an IPv4 address (router ids and link addresses are IPv4)")
    return addr


Name = Annotated[str, BeforeValidator(_name)]
Asn = Annotated[int, BeforeValidator(_asn)]
Prefix = Annotated[Union[IPv4Network, IPv6Network], BeforeValidator(_network)]
Prefix4 = Annotated[IPv4Network, BeforeValidator(_ipv4_network)]
Address4 = Annotated[IPv4Address, BeforeValidator(_ipv4)]


class AsnRange(Strict):
    """An inclusive ASN range, e.g. the 16-bit private range 64512-65534."""

    first: Asn
    last: Asn

    @model_validator(mode="after")
    def _ordered(self) -> "AsnRange":
        if self.last < self.first:
            raise ValueError(f"range {self.first}-{self.last} ends before it starts")
        return self


class Host(Strict):
    """A Docker engine that runs some of the stack's containers."""

    name: Name
    docker: str = Field("unix:///var/run/docker.sock", pattern=r"^(unix|ssh|tcp)://.+")
    """Docker endpoint: the local socket in dev/lab, ssh://user@host in prod."""


class Timers(Strict):
    """BGP timers; lab stacks shorten them so sessions come up in seconds."""

    hold: int = Field(90, ge=3, le=65535)
    keepalive: int = Field(30, ge=1, le=21845)
    connect_retry: int = Field(120, ge=1, le=65535)
    connect_delay: int = Field(5, ge=0, le=65535)
    error_wait_min: int = Field(60, ge=1)
    error_wait_max: int = Field(300, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> "Timers":
        if self.keepalive * 3 > self.hold:
            raise ValueError(f"keepalive {self.keepalive} must be at most a third of hold {self.hold}")
        if self.error_wait_max < self.error_wait_min:
            raise ValueError("error_wait_max must not be below error_wait_min")
        return self


class Policy(Strict):
    """The edge policy every eBGP session gets; the templates only express it."""

    bogon_filter: bool = True
    """Reject bogon prefixes and paths with bogon ASNs (NLNOG). On unless a lab turns it off."""
    bogon_exempt_asns: list[AsnRange] = []
    """ASN ranges a lab exempts from the bogon-ASN filter (its private ASNs)."""
    bogon_exempt_prefixes: list[Prefix] = []
    """Bogon prefixes a lab exempts (RFC 5737 test nets its mock ISP announces)."""
    min_prefix_length_v4: int = Field(8, ge=0, le=32)
    max_prefix_length_v4: int = Field(24, ge=8, le=32)
    min_prefix_length_v6: int = Field(12, ge=0, le=128)
    max_prefix_length_v6: int = Field(48, ge=16, le=128)
    max_as_path_length: int = Field(100, ge=1, le=255)
    honor_graceful_shutdown: bool = True
    """Routes tagged 65535:0 (RFC 8326) get local-pref 0."""
    enforce_first_as: bool = True
    keep_filtered: bool = True
    """Keep rejected routes for `birdc show route filtered` (debuggability)."""
    export_to_kernel: bool = True
    """Install learned routes in the kernel so the border forwards by them."""
    timers: Timers = Timers()


class MockIsp(Strict):
    """A lab stand-in for an upstream: BIRD answering the session, with test prefixes."""

    router_id: Optional[Address4] = None
    """Defaults to the ISP's address on the link."""
    announce: list[Prefix4] = []
    """Prefixes it originates; the first address of each answers ping."""
    default_route: bool = True
    """Also announce 0.0.0.0/0, as a real transit upstream would."""


class Upstream(Strict):
    """One eBGP session from a border router to an ISP."""

    name: Name
    asn: Asn
    link: Prefix4
    """The peering subnet shared with the ISP."""
    neighbor: Address4
    """The ISP's address on the link."""
    local_address: Address4
    """The border router's address on the link."""
    router: Optional[Name] = None
    """Border router holding the session; defaults to the first one."""
    max_prefixes: int = Field(ge=1)
    """Import limit: more accepted routes than this triggers limit_action."""
    limit_action: Literal["warn", "block", "restart", "disable"] = "disable"
    accept_default: bool = False
    """Accept 0.0.0.0/0 from this upstream (a default-only transit)."""
    password: Optional[SecretStr] = None
    """TCP-MD5 secret; set with `pulumi config set --secret`."""
    mock: Optional[MockIsp] = None
    """Lab only: run a mock ISP for this upstream."""

    @model_validator(mode="after")
    def _addresses_on_link(self) -> "Upstream":
        for field in ("neighbor", "local_address"):
            addr = getattr(self, field)
            if addr not in self.link:
                raise ValueError(f"{field} {addr} is not inside link {self.link}")
            if addr in (self.link.network_address, self.link.broadcast_address):
                raise ValueError(f"{field} {addr} is the network or broadcast address of {self.link}")
        if self.neighbor == self.local_address:
            raise ValueError("neighbor and local_address are the same address")
        return self


class BorderRouter(Strict):
    """A BIRD router announcing the AS's prefixes; also the mesh's egress gateway."""

    name: Name
    router_id: Address4
    host: Name = "local"
    mesh_ip: Optional[Address4] = None
    """Pin this router's mesh address; otherwise Netmaker assigns one."""


class MeshNode(Strict):
    """A netclient host on the mesh, holding an address of the AS's block."""

    name: Name
    host: Name = "local"
    ip: Optional[Address4] = None
    """Pin the mesh address; otherwise Netmaker assigns the lowest free one."""


class Mesh(Strict):
    """The Netmaker network whose address range is (part of) an announced prefix."""

    network: Name
    range: Prefix4
    range6: Optional[IPv6Network] = None
    egress_ranges: list[Prefix] = []
    """What the border routers route for the mesh: the ISP test nets in a lab, 0.0.0.0/0 in prod."""
    nodes: list[MeshNode] = []
    wireguard_port: int = Field(51821, ge=1, le=65535)


class Netmaker(Strict):
    """The mesh control plane: server, MQTT broker and TLS front."""

    version: str = Field("v1.6.0", pattern=r"^v\d+\.\d+\.\d+$")
    images: Literal["build", "pull"] = "build"
    """Build images locally from the repo (lab) or pull gravitl/* by tag (prod)."""
    host: Name = "local"
    domain: str = Field("nm.lab", pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
    """Name netclients dial over HTTPS; the certificate covers it."""
    tls: Literal["internal-ca", "acme"] = "internal-ca"
    acme_email: Optional[str] = None

    @model_validator(mode="after")
    def _acme_needs_email(self) -> "Netmaker":
        if self.tls == "acme" and not self.acme_email:
            raise ValueError("tls 'acme' needs acme_email")
        return self


class Lab(Strict):
    """Present only in dev/lab stacks: everything on one Docker host, networks internal."""

    underlay: Prefix4 = ip_network("172.31.0.0/24")
    """Docker network standing in for the Internet between hosts (control plane, WireGuard)."""


class StackConfig(Strict):
    """The whole stack: the AS, its routers and upstreams, the mesh, and where things run."""

    asn: Asn
    prefixes: list[Prefix] = Field(min_length=1)
    """Prefixes this AS originates (exported to upstreams, never accepted from them)."""
    hosts: list[Host] = [Host(name="local")]
    border_routers: list[BorderRouter] = Field(min_length=1)
    upstreams: list[Upstream] = Field(min_length=1)
    mesh: Mesh
    netmaker: Netmaker = Netmaker()
    policy: Policy = Policy()
    lab: Optional[Lab] = None

    @model_validator(mode="after")
    def _coherent(self) -> "StackConfig":
        _check_prefixes(self)
        _check_names(self)
        _check_references(self)
        _check_overlaps(self)
        _check_mesh_ips(self)
        return self

    def router_of(self, upstream: Upstream) -> BorderRouter:
        name = upstream.router or self.border_routers[0].name
        return next(r for r in self.border_routers if r.name == name)

    def upstreams_of(self, router: BorderRouter) -> list[Upstream]:
        return [u for u in self.upstreams if self.router_of(u).name == router.name]


def _check_prefixes(cfg: StackConfig) -> None:
    for i, prefix in enumerate(cfg.prefixes):
        limit = cfg.policy.max_prefix_length_v4 if prefix.version == 4 else cfg.policy.max_prefix_length_v6
        if prefix.prefixlen > limit:
            raise ConfigError(
                f"prefixes[{i}] = {prefix}: longer than /{limit}, so upstreams would filter it; announce a shorter prefix"
            )
    for a, b in _pairs(cfg.prefixes):
        if a.version == b.version and a.overlaps(b):
            raise ConfigError(f"prefixes: {a} and {b} overlap; announce each block once")
    if not any(cfg.mesh.range.subnet_of(p) for p in cfg.prefixes if p.version == 4):
        raise ConfigError(f"mesh.range = {cfg.mesh.range}: not inside any announced prefix ({_join(cfg.prefixes)})")
    if cfg.mesh.range6 and not any(cfg.mesh.range6.subnet_of(p) for p in cfg.prefixes if p.version == 6):
        raise ConfigError(f"mesh.range6 = {cfg.mesh.range6}: not inside any announced IPv6 prefix")


def _check_names(cfg: StackConfig) -> None:
    groups = {
        "hosts": [h.name for h in cfg.hosts],
        "containers (border_routers, upstreams, mesh.nodes)": [r.name for r in cfg.border_routers]
        + [u.name for u in cfg.upstreams]
        + [n.name for n in cfg.mesh.nodes],
    }
    for what, names in groups.items():
        seen = set()
        for name in names:
            if name in seen:
                raise ConfigError(f"{what}: name '{name}' is used twice; names must be unique")
            seen.add(name)
    reserved = {"netmaker", "mq", "tls", "netmaker-mq", "netmaker-tls"}
    for name in groups["containers (border_routers, upstreams, mesh.nodes)"]:
        if name in reserved:
            raise ConfigError(f"name '{name}' is reserved for the Netmaker server's containers")


def _check_references(cfg: StackConfig) -> None:
    hosts = {h.name for h in cfg.hosts}
    routers = {r.name for r in cfg.border_routers}
    for i, r in enumerate(cfg.border_routers):
        if r.host not in hosts:
            raise ConfigError(f"border_routers[{i}].host = {r.host}: no such host (hosts: {_join(hosts)})")
    for i, n in enumerate(cfg.mesh.nodes):
        if n.host not in hosts:
            raise ConfigError(f"mesh.nodes[{i}].host = {n.host}: no such host (hosts: {_join(hosts)})")
    if cfg.netmaker.host not in hosts:
        raise ConfigError(f"netmaker.host = {cfg.netmaker.host}: no such host (hosts: {_join(hosts)})")
    for i, u in enumerate(cfg.upstreams):
        if u.router is not None and u.router not in routers:
            raise ConfigError(f"upstreams[{i}].router = {u.router}: no such border router ({_join(routers)})")
        if u.mock is not None and cfg.lab is None:
            raise ConfigError(f"upstreams[{i}].mock: a mock ISP needs a lab stack (add a 'lab' section)")
        if u.asn == cfg.asn:
            raise ConfigError(f"upstreams[{i}].asn = {u.asn}: same as our own ASN; upstream sessions are eBGP")
    ids = [r.router_id for r in cfg.border_routers]
    if len(set(ids)) != len(ids):
        raise ConfigError("border_routers: router_id values must be unique")


def _check_overlaps(cfg: StackConfig) -> None:
    """Link subnets, the lab underlay and own prefixes must be disjoint."""
    ranges = [(f"upstreams[{i}].link", u.link) for i, u in enumerate(cfg.upstreams)]
    if cfg.lab:
        ranges.append(("lab.underlay", cfg.lab.underlay))
    ranges += [(f"prefixes[{i}]", p) for i, p in enumerate(cfg.prefixes) if p.version == 4]
    for (ka, a), (kb, b) in _pairs(ranges):
        shared_link = a == b and ka.startswith("upstreams") and kb.startswith("upstreams")  # an IXP LAN
        if a.overlaps(b) and not shared_link:
            raise ConfigError(f"{ka} = {a} overlaps {kb} = {b}; each range must be distinct")
    for i, u in enumerate(cfg.upstreams):
        for p in cfg.prefixes:
            for addr, field in ((u.neighbor, "neighbor"), (u.local_address, "local_address")):
                if addr in p:
                    raise ConfigError(f"upstreams[{i}].{field} = {addr}: inside own prefix {p}")


def _check_mesh_ips(cfg: StackConfig) -> None:
    rng = cfg.mesh.range
    pinned: dict[IPv4Address, str] = {}
    entries = [(f"border_routers[{i}].mesh_ip", r.mesh_ip) for i, r in enumerate(cfg.border_routers)]
    entries += [(f"mesh.nodes[{i}].ip", n.ip) for i, n in enumerate(cfg.mesh.nodes)]
    for key, ip in entries:
        if ip is None:
            continue
        if ip not in rng:
            raise ConfigError(f"{key} = {ip}: outside mesh.range {rng}")
        if ip in (rng.network_address, rng.broadcast_address):
            raise ConfigError(f"{key} = {ip}: the network or broadcast address of {rng}")
        if ip in pinned:
            raise ConfigError(f"{key} = {ip}: already pinned by {pinned[ip]}")
        pinned[ip] = key
    hosts = rng.num_addresses - 2
    wanted = len(cfg.border_routers) + len(cfg.mesh.nodes)
    if wanted > hosts:
        raise ConfigError(f"mesh.range = {rng}: {wanted} mesh members but only {hosts} addresses")


def _pairs(items: list) -> list[tuple]:
    return [(a, b) for i, a in enumerate(items) for b in items[i + 1 :]]


def _join(items) -> str:
    return ", ".join(str(x) for x in items) or "none"
