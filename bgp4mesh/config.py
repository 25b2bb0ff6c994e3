"""The stack configuration model: everything a stack declares, validated before
any resource exists, so bad input fails with messages and nothing half-built.

Lists (hosts, border routers, upstreams, mesh nodes) keep multihoming, HA and
more nodes a data change. Every model rejects unknown keys, so a typo is an
error instead of a silently ignored setting. A rule that spans fields reports
every violation at once, each as a Problem naming its own key path; `check`
must catch everything `render`, `bird -p` or `pulumi up` would reject later.
"""

from __future__ import annotations

import re

from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_network
from typing import Annotated, Iterable, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from .bogons import BOGON_ASNS

from .problems import ConfigError, Problem, problem
from .scalars import (
    Address,
    Address4,
    Address6,
    AdminUser,
    Asn,
    Digest,
    DockerEndpoint,
    Domain,
    Email,
    HostKey,
    HostPort,
    HttpsUrl,
    ImageReference,
    ImageRepository,
    ImageTag,
    Inbound,
    Int,
    InterfaceName,
    LocalPath,
    Name,
    Password,
    Pem,
    Prefix,
    Prefix4,
    Prefix6,
    RouterId,
    SshUser,
    U32,
    Version,
)

PROBE_NAME = "probe"
"""The container name of a lab's probe (lab.probe)."""
RESERVED_NAMES = frozenset({"netmaker", "mq", "tls", "broker", "netmaker-mq", "netmaker-server", "netmaker-tls"})
"""Container names, host names and network aliases of the Netmaker server."""
NETMAKER_TAG_MAX = 32
"""Netmaker v1.6.0 models.APIEnrollmentKey: tags `min=3,max=32`."""
MEMBERS_TAG = "{network}-members"
"""The enrollment key's tag (components/lab.py)."""
FAILOVER_PORT = 51821
"""netclient's TCP port (Netmaker v1.6.0's default METRICS_PORT, servercfg.GetMetricsPort),
open on every member: the egress failover probes gateways there, as Netmaker Pro does."""
MAX_ITEMS = 1000
MAX_NODES = 10_000
"""List bounds: far above any real stack, low enough that `check` stays fast on hostile input."""
JOIN_PARALLEL = 8
"""Joins at once by default: see Mesh.join_parallel."""
JOIN_PARALLEL_MAX = 64


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=False)


def _raise(problems: Iterable[Problem]) -> None:
    found = list(problems)
    if found:
        raise ConfigError(problems=found)


class AsnRange(Strict):
    """An inclusive ASN range, e.g. the 16-bit private range 64512-65534."""

    first: Asn
    last: Asn

    @model_validator(mode="after")
    def _ordered(self) -> "AsnRange":
        if self.last < self.first:
            _raise([Problem("last", self.last, f"ends before first {self.first}")])
        return self

    def __contains__(self, asn: int) -> bool:
        return self.first <= asn <= self.last


class Ssh(Strict):
    """How bgp4mesh reaches a remote host: its Docker engine over ssh:// and
    pulumi-command's remote.Command, with the host key pinned."""

    address: Domain
    """Where SSH dials: an address or a DNS name."""
    port: Int = Field(22, ge=1, le=65535)
    user: SshUser = "root"
    """A user that may run `docker` and change the host's network settings."""
    host_key: HostKey
    """The host's key as `ssh-keyscan -t ed25519 HOST` prints it (without the host name).
    A host presenting another key is refused."""
    private_key_file: LocalPath = "~/.ssh/id_ed25519"
    """The operator's key on the machine running Pulumi (read at run time, kept secret)."""

    @property
    def docker_endpoint(self) -> str:
        return f"ssh://{self.user}@{self.address}:{self.port}"


class Host(Strict):
    """A machine that runs some of the stack's containers: this machine's Docker engine
    (dev/lab), or a remote host reached over SSH (prod)."""

    name: Name
    docker: DockerEndpoint = "unix:///var/run/docker.sock"
    """Docker endpoint of a local engine (unix:// or tcp://); remote hosts use `ssh`."""
    ssh: Optional[Ssh] = None
    """A remote host: Docker and host preparation go over SSH to it."""
    endpoint: Optional[Address4] = None
    """The public address WireGuard peers reach this host at. Omit it behind NAT: the
    host then finds its endpoint with STUN (netmaker.stun_servers)."""

    @model_validator(mode="after")
    def _one_way_in(self) -> "Host":
        if self.docker.startswith("ssh://"):
            _raise([Problem("docker", self.docker, "a remote host is given with `ssh` (address, user, pinned host_key), not an ssh:// endpoint")])
        if self.ssh is not None and "docker" in self.model_fields_set:
            _raise([problem("docker", "give either `docker` (a local engine) or `ssh` (a remote host), not both")])
        return self

    @property
    def docker_endpoint(self) -> str:
        return self.ssh.docker_endpoint if self.ssh is not None else self.docker


class OwnDigests(Strict):
    """Per kind of our images, the digest its release push printed (`sha256:<64 hex>`)."""

    border: Optional[Digest] = None
    netclient: Optional[Digest] = None
    bird: Optional[Digest] = None
    monitoring: Optional[Digest] = None


class Images(Strict):
    """Where bgp4mesh's own images (border, netclient, bird, monitoring) come from."""

    registry: Optional[ImageRepository] = None
    """Pull `<registry>/<kind>:<tag>` on every host (prod: remote hosts have no build
    context and no package mirror). Omitted: build from images/ on each engine (lab)."""
    tag: ImageTag = "local"
    digests: OwnDigests = OwnDigests()
    """Per kind, the digest the release pushed: hosts pull `<registry>/<kind>:<tag>@<digest>`,
    exactly that image whatever the tag is later pushed to point at."""

    @model_validator(mode="after")
    def _digests_need_registry(self) -> "Images":
        if self.digests.model_fields_set and self.registry is None:
            _raise([problem("digests", "pins images pulled from `registry`; without one they are built here")])
        return self

    def reference(self, kind: str) -> str:
        """What a host pulls for our image `kind` (the registry's name, pinned when a digest is given)."""
        ref = f"{self.registry}/{kind}:{self.tag}"
        digest = getattr(self.digests, kind)
        return f"{ref}@{digest}" if digest else ref


class Timers(Strict):
    """BGP timers; lab stacks shorten them so sessions come up in seconds. The
    bounds are what BIRD 2 accepts."""

    hold: Int = Field(90, ge=3, le=65535)
    keepalive: Int = Field(30, ge=1, le=21845)
    connect_retry: Int = Field(120, ge=1, le=65535)
    connect_delay: Int = Field(5, ge=0, le=65535)
    error_wait_min: Int = Field(60, ge=1, le=U32)
    error_wait_max: Int = Field(300, ge=1, le=U32)

    @model_validator(mode="after")
    def _consistent(self) -> "Timers":
        found = []
        if self.keepalive * 3 > self.hold:
            found.append(Problem("keepalive", self.keepalive, f"must be at most a third of hold {self.hold}"))
        if self.error_wait_max < self.error_wait_min:
            found.append(Problem("error_wait_max", self.error_wait_max, f"below error_wait_min {self.error_wait_min}"))
        _raise(found)
        return self


class Bfd(Strict):
    """BFD on a BGP session (RFC 5880, BIRD's `protocol bfd`): a dead neighbor is found
    in about interval_ms x multiplier instead of a hold time of seconds. Both ends must
    run it (a mock ISP does, with the same values)."""

    interval_ms: Int = Field(300, ge=10, le=60_000)
    """Desired minimum transmit and receive interval."""
    multiplier: Int = Field(3, ge=1, le=255)
    """Missed packets before the session is declared down."""
    mode: Literal["on", "graceful"] = "on"
    """on: BFD down restarts the BGP session (fast failover); graceful: it starts a BGP
    graceful restart instead, keeping the routes as stale (a control-plane restart)."""


RESERVED_TABLES = {
    44: "the HA routers' table for inbound forwarded to the active gateway (images/netclient/agent, its border-health part)",
    253: "the kernel's default table", 254: "the kernel's main table, the host's own", 255: "the kernel's local table",
}
"""Kernel tables policy.kernel_table must not take."""


class Policy(Strict):
    """The edge policy every eBGP session gets; the templates only express it."""

    bogon_filter: bool = True
    """Reject bogon prefixes and paths with bogon ASNs (NLNOG). On unless a lab turns it off."""
    bogon_exempt_asns: list[AsnRange] = Field([], max_length=MAX_ITEMS)
    """ASN ranges a lab exempts from the bogon-ASN filter (its private ASNs)."""
    bogon_exempt_prefixes: list[Prefix] = Field([], max_length=MAX_ITEMS)
    """Bogon prefixes a lab exempts (RFC 5737 test nets its mock ISP announces)."""
    min_prefix_length_v4: Int = Field(8, ge=0, le=32)
    max_prefix_length_v4: Int = Field(24, ge=8, le=32)
    min_prefix_length_v6: Int = Field(12, ge=0, le=128)
    max_prefix_length_v6: Int = Field(48, ge=16, le=128)
    max_as_path_length: Int = Field(100, ge=1, le=255)
    honor_graceful_shutdown: bool = True
    """Routes tagged 65535:0 (RFC 8326) get local-pref 0."""
    enforce_first_as: bool = True
    keep_filtered: bool = True
    """Keep rejected routes for `birdc show route filtered` (debuggability)."""
    export_to_kernel: bool = True
    """Install learned routes in the kernel so the border forwards by them."""
    timers: Timers = Timers()
    drain_prepend: Int = Field(3, ge=0, le=10)
    """A drained border router (maintenance, or no working mesh) announces with the
    graceful-shutdown community 65535:0 (RFC 8326) and prepends its ASN this many times
    more, so upstreams that ignore the community still prefer the other router."""
    ibgp_bfd: Optional[Bfd] = None
    """BFD on the iBGP sessions between border routers (None: off). Without it a dead
    router's routes stay in its peer for the hold time, and outbound traffic with them."""
    ibgp_max_prefixes: Optional[Int] = Field(None, ge=1, le=U32)
    """Import limit on each iBGP session. None: what another router may rightly send, its
    upstreams' max_prefixes and the own prefixes (StackConfig.ibgp_limits)."""
    ibgp_max_received: Optional[Int] = Field(None, ge=1, le=U32)
    """Receive limit on each iBGP session. None: the upstreams' receive limits and the own prefixes."""
    ibgp_limit_action: Literal["warn", "block", "restart", "disable"] = "block"
    """block keeps the session and what it holds: losing iBGP moves traffic, a few extra
    routes do not."""
    kernel_table: Int = Field(179, ge=1, le=U32 - 1)
    """Kernel routing table for BGP-learned routes on a real host, so the host's own
    traffic (SSH, management) keeps its main table: forwarded and mesh-sourced traffic
    reaches this table by `ip rule`s (host preparation). A lab's border has a network
    namespace of its own, with no host traffic to protect, and uses the main table."""

    @model_validator(mode="after")
    def _ibgp_limits_ordered(self) -> "Policy":
        found = []
        if self.ibgp_max_prefixes and self.ibgp_max_received and self.ibgp_max_received < self.ibgp_max_prefixes:
            found.append(Problem("ibgp_max_received", self.ibgp_max_received, f"below ibgp_max_prefixes {self.ibgp_max_prefixes}"))
        if self.kernel_table in RESERVED_TABLES:
            found.append(Problem("kernel_table", self.kernel_table, RESERVED_TABLES[self.kernel_table]))
        _raise(found)
        return self

    @model_validator(mode="after")
    def _lengths_ordered(self) -> "Policy":
        _raise(
            Problem(f"min_prefix_length_{v}", low, f"greater than max_prefix_length_{v} {high}")
            for v, low, high in (
                ("v4", self.min_prefix_length_v4, self.max_prefix_length_v4),
                ("v6", self.min_prefix_length_v6, self.max_prefix_length_v6),
            )
            if low > high
        )
        return self

    def length_range(self, version: int) -> tuple[int, int]:
        if version == 4:
            return self.min_prefix_length_v4, self.max_prefix_length_v4
        return self.min_prefix_length_v6, self.max_prefix_length_v6

    def exempt_prefix(self, net: Union[IPv4Network, IPv6Network]) -> bool:
        return any(net.version == e.version and net.subnet_of(e) for e in self.bogon_exempt_prefixes)

    def bogon_asn(self, asn: int) -> bool:
        """The bogon-ASN filter is on and would reject a path holding `asn`."""
        listed = any(first <= asn <= last for first, last in BOGON_ASNS)
        return self.bogon_filter and listed and not any(asn in r for r in self.bogon_exempt_asns)


class MockIsp(Strict):
    """A lab stand-in for an upstream: BIRD answering the session, with test prefixes."""

    router_id: Optional[RouterId] = None
    """Defaults to the ISP's address on the link."""
    announce: list[Prefix] = Field([], max_length=MAX_ITEMS)
    """Prefixes it originates (IPv6 ones over the upstream's IPv6 session); the first
    address of each answers ping."""
    default_route: bool = True
    """Also announce the default route (0.0.0.0/0, and ::/0 over an IPv6 session), as a
    real transit upstream would."""
    honor_graceful_shutdown: bool = True
    """Routes tagged 65535:0 (RFC 8326) get local-pref 0 here, as at an ISP that honors
    a drain; off, only the drain's prepends move its traffic."""


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
    link6: Optional[Prefix6] = None
    """IPv6 on the same link: a second session, IPv6 routes only, between neighbor6 and
    local_address6 (one session per address family, as upstreams expect). With it, both
    addresses are required; without it, this upstream carries IPv4 only."""
    neighbor6: Optional[Address6] = None
    """The ISP's IPv6 address on link6."""
    local_address6: Optional[Address6] = None
    """The border router's IPv6 address on link6."""
    router: Optional[Name] = None
    """Border router holding the session; defaults to the first one."""
    max_prefixes: Int = Field(ge=1, le=U32)
    """Import limit: more accepted routes than this triggers limit_action."""
    local_pref: Int = Field(100, ge=0, le=U32)
    """BGP local preference of the routes learned here: the highest wins outbound, on
    this router and (over iBGP) on the others."""
    prepend: Int = Field(0, ge=0, le=10)
    """Prepend our ASN this many extra times toward this upstream, so the Internet
    prefers another path inbound (this upstream becomes the backup)."""
    bfd: Optional[Bfd] = None
    """BFD on this session (None: off; the hold timer alone detects a dead neighbor)."""
    limit_action: Literal["warn", "block", "restart", "disable"] = "disable"
    max_received: Optional[Int] = Field(None, ge=1, le=U32)
    """Receive limit: routes received and remembered, filtered ones too (they cost memory
    as well); over it, limit_action. None: twice max_prefixes."""
    ttl_security: bool = False
    """GTSM (RFC 5082, BIRD `ttl security`): send with TTL 255 and take only packets that
    arrive with 255, so nobody more than one hop away can reach the session. Only if the
    peer runs it too; the router host's firewall then admits BGP only with TTL 255."""
    unauthenticated: bool = False
    """Run a session on a real host with neither `password` nor `ttl_security` knowingly;
    `check` refuses such a session otherwise."""
    accept_default: bool = False
    """Accept 0.0.0.0/0 from this upstream (a default-only transit)."""
    password: Optional[Password] = None
    """TCP-MD5 secret; set with `pulumi config set --secret`."""
    probe: Optional[Address4] = None
    """An address beyond this upstream that answers ping: `verify` pings it from every
    mesh node (through the egress). A mock ISP's first test address by default."""
    probe6: Optional[Address6] = None
    """Likewise in IPv6, pinged where the mesh routes it (mesh.range6 with an egress range
    or the internet gateway holding it). A mock ISP's first IPv6 test address by default."""
    interface: Optional[InterfaceName] = None
    """Remote hosts: the router host's interface on the link. Host preparation puts
    local_address on it; omitted, the address must already be there."""
    kind: Literal["mock", "real"]
    """`mock`: a lab runs a BIRD router standing in for this ISP (settings in `mock`);
    `real`: the ISP's own router. Omitted: `mock` when a `mock` section is given."""
    mock: Optional[MockIsp] = None
    """kind mock: the mock ISP's settings (defaults when omitted)."""

    @model_validator(mode="before")
    @classmethod
    def _kind_stated(cls, data: object) -> object:
        """The kind, from the `mock` section when not stated; a mock always has settings."""
        if not isinstance(data, dict):
            return data
        kind = data.get("kind", "mock" if data.get("mock") is not None else "real")
        return {**data, "kind": kind, **({"mock": data.get("mock") or {}} if kind == "mock" else {})}

    @model_validator(mode="after")
    def _addresses_on_link(self) -> "Upstream":
        found = []
        if self.kind == "real" and self.mock is not None:
            found.append(Problem("mock", "...", "only an upstream of kind mock has mock ISP settings"))
        if self.kind == "mock" and self.interface is not None:
            found.append(Problem("interface", self.interface, "a mock ISP's link is a lab network; only a real upstream names a host interface"))
        for suffix in ("", "6"):
            found += self._on_link(suffix)
        if self.max_received is not None and self.max_received < self.max_prefixes:
            found.append(Problem("max_received", self.max_received, f"below max_prefixes {self.max_prefixes}: received routes include the accepted ones"))
        _raise(found)
        return self

    def _on_link(self, suffix: str) -> list[Problem]:
        """The family's two addresses on its link (suffix '' IPv4, '6' IPv6): all three
        fields or, for IPv6, none of them."""
        link, keys = getattr(self, "link" + suffix), ("neighbor" + suffix, "local_address" + suffix)
        if link is None:
            return [Problem(k, getattr(self, k), "needs link6, the IPv6 peering subnet") for k in keys if getattr(self, k) is not None]
        found = []
        for key in keys:
            addr = getattr(self, key)
            if addr is None:
                found.append(problem(key, f"required with link{suffix} {link}"))
            elif addr not in link:
                found.append(Problem(key, addr, f"not inside link{suffix} {link}"))
            elif addr == link.network_address or (link.version == 4 and addr == link.broadcast_address):
                found.append(Problem(key, addr, f"the network or broadcast address of link{suffix} {link}"))
        first, second = (getattr(self, k) for k in keys)
        if first is not None and first == second:
            found.append(Problem(keys[1], second, f"same address as {keys[0]}"))
        return found

    @property
    def families(self) -> tuple[int, ...]:
        """The address families it has sessions for: IPv4 always, IPv6 with link6."""
        return (4, 6) if self.link6 is not None else (4,)

    @property
    def receive_limit(self) -> int:
        """What BIRD's `receive limit` gets: max_received, or twice max_prefixes."""
        return self.max_received if self.max_received is not None else min(U32, 2 * self.max_prefixes)

    @property
    def mock_router_id(self) -> Optional[IPv4Address]:
        return None if self.kind == "real" else (self.mock.router_id or self.neighbor)


class BorderRouter(Strict):
    """A BIRD router announcing the AS's prefixes; also the mesh's egress gateway."""

    name: Name
    router_id: RouterId
    host: Name = "local"
    mesh_ip: Optional[Address4] = None
    """Pin this router's mesh address; otherwise Netmaker assigns one. Required with
    several routers: every node's egress failover probes the gateways by address."""
    ibgp_address: Optional[Address4] = None
    """Where the other border routers reach this one for iBGP (a link they share, the
    session is `direct`). A lab uses the router's underlay address; required on real
    hosts when there are several routers."""
    ibgp_address6: Optional[Address6] = None
    """The same for the IPv6 iBGP session (one per family), needed on real hosts with
    several routers and IPv6 sessions. A lab uses the router's lab.underlay6 address."""
    maintenance: bool = False
    """Drain before maintenance: announce with the graceful-shutdown community and
    `policy.drain_prepend` prepends, and stop being an egress gateway, so traffic moves
    to the other routers before this one stops. Applied in place (no restart)."""
    inbound: list[Inbound] = Field([], max_length=MAX_ITEMS)
    """What the Internet may open on this router's public mesh address (`tcp/22`,
    `udp/1000-2000`); ICMP echo and the mesh's own traffic are always let in, the rest
    from outside the mesh range is dropped. Needs `mesh_ip` pinned."""


class MeshNode(Strict):
    """A netclient host on the mesh, holding an address of the AS's block."""

    name: Name
    host: Name = "local"
    ip: Optional[Address4] = None
    """Pin the mesh address; otherwise Netmaker assigns the lowest free one."""
    inbound: list[Inbound] = Field([], max_length=MAX_ITEMS)
    """What the Internet may open on this node's public mesh address (`tcp/8080`,
    `udp/1000-2000`); ICMP echo and the mesh's own traffic are always let in, the rest
    from outside the mesh range is dropped. Needs `ip` pinned."""


class Failover(Strict):
    """Egress failover between several border routers. Netmaker v1.6.0 CE refuses a
    second routing node on an egress and its netclient runs no egress HA, so bgp4mesh
    does it: every node probes each gateway (TCP to netclient's port 51821 through the
    mesh, as Netmaker Pro does) and keeps the egress ranges on the first one that answers;
    a router that cannot serve (maintenance, no upstream, no mesh) stops answering."""

    interval_ms: Int = Field(200, ge=50, le=10_000)
    """How often every gateway is probed."""
    timeout_ms: Int = Field(200, ge=10, le=10_000)
    """A probe unanswered this long failed."""
    down_after: Int = Field(2, ge=1, le=100)
    """Failed probes in a row before a gateway is given up."""
    up_after: Int = Field(3, ge=1, le=100)
    """Answered probes in a row before a gateway is used again (failback)."""


class Mesh(Strict):
    """The Netmaker network whose address range is (part of) an announced prefix."""

    network: Name
    range: Prefix4
    range6: Optional[IPv6Network] = None
    egress_ranges: list[Prefix] = Field([], max_length=MAX_ITEMS)
    """What the border routers route for the mesh (the ISP test nets in a lab). Netmaker v1.6.0
    refuses any range that overlaps the mesh, 0.0.0.0/0 included (its internet gateway is '*')."""
    nodes: list[MeshNode] = Field([], max_length=MAX_NODES)
    wireguard_port: Int = Field(51821, ge=1, le=65535)
    join_parallel: Int = Field(JOIN_PARALLEL, ge=1, le=JOIN_PARALLEL_MAX)
    """How many members without a pinned address join at once (bgp4mesh.plan._join_order):
    each join registers with the server and makes it push peer updates to every member, so
    a burst of them overruns one control host (measured in issue #18)."""
    internet_gateway: bool = False
    """The border routers are the mesh's gateway to the whole Internet (Netmaker's
    internet gateway, range '*'): nodes send everything but the mesh through them."""
    failover: Failover = Failover()
    """Egress failover when there are several border routers (gateways)."""

    @model_validator(mode="after")
    def _tag_fits(self) -> "Mesh":
        tag = MEMBERS_TAG.format(network=self.network)
        if len(tag) > NETMAKER_TAG_MAX:
            most = NETMAKER_TAG_MAX - len(MEMBERS_TAG.format(network=""))
            _raise([Problem("network", self.network, f"its enrollment-key tag '{tag}' exceeds Netmaker's {NETMAKER_TAG_MAX} characters; use at most {most}")])
        return self


MOSQUITTO_MIN = (2, 0, 16)
"""CVE-2023-0809: memory exhaustion from a crafted first packet, before authentication."""


def _mosquitto_at_least(reference: str) -> str:
    """The broker faces the Internet through the TLS front: refuse a tag older than the fix,
    and a reference whose tag does not say its version (a digest alone proves nothing)."""
    name = reference.partition("@")[0]
    tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
    found = re.match(r"(\d+)\.(\d+)\.(\d+)(?![\d.])", tag)
    if not found or tuple(int(n) for n in found.groups()) < MOSQUITTO_MIN:
        raise ValueError("mosquitto must be 2.0.16 or later (CVE-2023-0809), named in the tag: e.g. eclipse-mosquitto:2.0.21-openssl")
    return reference


MosquittoImage = Annotated[ImageReference, AfterValidator(_mosquitto_at_least)]


class UpstreamImages(Strict):
    """The upstream images `images: pull` runs, by their real names (a registry mirror
    on the hosts serves them where Docker Hub is not reachable)."""

    netmaker: Optional[ImageReference] = None
    """Default: gravitl/netmaker:<version>."""
    mosquitto: MosquittoImage = "eclipse-mosquitto:2.0.21-openssl"
    tls: ImageReference = "caddy:2.8.4"


class Netmaker(Strict):
    """The mesh control plane: server, MQTT broker and TLS front."""

    version: Version = "v1.6.0"
    images: Literal["build", "pull"] = "build"
    """Build images locally from the repo (lab) or pull the upstream images (prod)."""
    upstream_images: UpstreamImages = UpstreamImages()
    """What `images: pull` pulls."""
    host: Name = "local"
    domain: Domain = "nm.lab"
    """Name netclients dial over HTTPS; the certificate covers it (and broker.<domain>)."""
    tls: Literal["internal-ca", "acme"] = "internal-ca"
    acme_email: Optional[Email] = None
    acme_directory: HttpsUrl = "https://acme-v02.api.letsencrypt.org/directory"
    """ACME directory the TLS front gets its certificate from (tls: acme)."""
    acme_ca_roots: Optional[Pem] = None
    """For a test CA only (Pebble): the roots its directory and its certificates chain
    to, trusted by the TLS front, the netclients and bgp4mesh. Omit for Let's Encrypt."""
    stun_servers: list[HostPort] = Field([], max_length=MAX_ITEMS)
    """STUN servers netclients find their public endpoint with (behind NAT). Empty: STUN off."""
    admin_from: list[Prefix] = Field([], max_length=MAX_ITEMS)
    """Source networks of the operator's own tools, let through the TLS front to the admin
    and user routes; everyone else gets only what netclients call (bgp4mesh itself comes
    through with the master key). Empty: nobody by address."""
    admin_user: AdminUser = "bgp4mesh-admin"
    """The super-admin `pulumi up` creates (its password is a secret in the state)."""

    def pull_image(self, kind: str) -> str:
        """The upstream image of `kind` (netmaker, mosquitto, tls)."""
        return getattr(self.upstream_images, kind) or f"gravitl/netmaker:{self.version}"

    @model_validator(mode="after")
    def _acme_needs_email(self) -> "Netmaker":
        if self.tls == "acme" and not self.acme_email:
            _raise([problem("acme_email", "tls 'acme' needs acme_email")])
        return self


class Probe(Strict):
    """The lab's Internet host: its own AS announcing a test prefix to every mock ISP
    over the exchange; the prefix's first address answers ping (and sends ping trains)."""

    asn: Asn
    prefix: Prefix4
    """Must pass the border's import policy (a lab exempts RFC 5737 test nets); add it to
    mesh.egress_ranges for nodes to reach it."""
    prefix6: Optional[Prefix6] = None
    """Its IPv6 test prefix, announced over the exchange's IPv6 sessions (lab.exchange6)."""


LAB_RTR_SLOT = 5
"""A lab's default RTR cache: this many addresses into lab.underlay (free in its plan)."""
RTR_CACHE_NAME = "rtr-cache-{n}"
"""The container name of a lab's n-th RTR cache."""
FAMILIES = (4, 6)
"""The address families bgp4mesh announces and peers in (IP versions)."""
MESH_FAMILIES = (4, 6)
"""The address families the mesh carries (members' addresses, egress, the edge firewall).
`check` refuses a mesh value of another family rather than let the program drop it."""


class RtrCache(Strict):
    """An RPKI-to-Router cache (RFC 8210: a validator such as stayrtr or Routinator)."""

    address: Address
    port: Int = Field(323, ge=1, le=65535)
    """323 is RTR over TCP's IANA port and BIRD's default; stayrtr's own default is 8282."""


class Rpki(Strict):
    """Route origin validation (RFC 6811, MANRS action 1): every eBGP route is checked
    against the ROAs the caches serve. With every cache gone BIRD keeps the last data
    until it expires, then every route is `not found`: validation fails open."""

    caches: list[RtrCache] = Field([], max_length=MAX_ITEMS)
    """One BIRD `protocol rpki` each; two independent ones survive the loss of either.
    Required outside a lab. A lab runs a cache (stayrtr) at each address listed, on its
    underlay; omitted, one at the underlay's address LAB_RTR_SLOT."""
    invalid: Literal["reject", "accept"] = "reject"
    """reject (NLNOG, MANRS): invalids are dropped and kept for `show route filtered`.
    accept: a rollout's observation step, invalids logged and used like any route."""
    retry: Int = Field(30, ge=1, le=7200)
    """Seconds between attempts to reach a cache that does not answer (BIRD `retry keep`):
    the router's choice, not the 600 s a cache suggests, so a router that starts before its
    cache, or a restarted cache, validates again within this time."""

    @model_validator(mode="after")
    def _distinct(self) -> "Rpki":
        seen: dict[tuple, int] = {}
        found = []
        for i, c in enumerate(self.caches):
            if (c.address, c.port) in seen:
                found.append(Problem(f"caches[{i}]", f"{c.address} port {c.port}", f"the same cache as caches[{seen[(c.address, c.port)]}]"))
            seen.setdefault((c.address, c.port), i)
        _raise(found)
        return self


class Roa(Strict):
    """A validated ROA payload a lab's RTR caches serve (what a validator would derive from
    the RPKI): `asn` may originate `prefix` and its more-specifics up to `max_length`."""

    prefix: Prefix
    max_length: Optional[Int] = Field(None, ge=0, le=128)
    """Omitted: the prefix's own length (no more-specific is valid)."""
    asn: Asn

    @model_validator(mode="after")
    def _length_fits(self) -> "Roa":
        if self.max_length is not None and not self.prefix.prefixlen <= self.max_length <= self.prefix.max_prefixlen:
            _raise([Problem("max_length", self.max_length, f"must be from {self.prefix.prefixlen} to {self.prefix.max_prefixlen} for {self.prefix}")])
        return self

    @property
    def longest(self) -> int:
        return self.prefix.prefixlen if self.max_length is None else self.max_length


class Lab(Strict):
    """Present only in dev/lab stacks: everything on one Docker host, networks internal."""

    underlay: Prefix4 = ip_network("172.31.0.0/24")
    """Docker network standing in for the Internet between hosts (control plane, WireGuard)."""
    underlay6: Optional[Prefix6] = None
    """IPv6 on the underlay: border routers hold addresses there (the same slots as in
    `underlay`) for their IPv6 iBGP sessions; needed with several routers and IPv6 sessions."""
    exchange: Optional[Prefix4] = None
    """A LAN where the mock ISPs peer with each other (eBGP, every pair) and with the probe;
    None: the mock ISPs only know their border router."""
    exchange6: Optional[Prefix6] = None
    """IPv6 on the exchange: the mock ISPs and the probe peer over IPv6 too (same slots)."""
    probe: Optional[Probe] = None
    """A host on the Internet beyond the mock ISPs (needs `exchange`)."""
    roas: list[Roa] = Field([], max_length=MAX_NODES)
    """What the lab's RTR caches (stayrtr, one at each `rpki.caches` address on the
    underlay) serve; needs `rpki`. Empty: every route validates as `not found`."""
    roa_refresh: Int = Field(10, ge=1, le=86400)
    """Seconds between the caches' reads of their VRP file (stayrtr -refresh)."""


class Monitoring(Strict):
    """Prometheus and Alertmanager watching the stack: BIRD's exporter on every router and
    mock ISP, the bgp4mesh exporter on every member and the control-plane exporter beside
    them; targets and alert rules come from the plan (bgp4mesh/monitoring.py, alerts.py)."""

    host: Optional[Name] = None
    """Where they run; omitted, on Netmaker's host. A lab puts them on its underlay; on real
    hosts it must be Netmaker's host (the control-plane exporter reads the broker there) and
    have an `endpoint`, the one address every member's exporters answer."""
    scrape_interval: Int = Field(15, ge=1, le=300)
    """Seconds between scrapes (and rule evaluations): an alert fires within two."""


class LookingGlass(Strict):
    """A read-only HTTP service on every border router that runs `birdc -r` for an
    allow-list of queries (show protocols, show route for/where, show route export).
    Absent (the default): no router serves it."""

    port: Int = Field(8095, ge=1, le=65535)
    allow: list[Prefix] = Field(min_length=1, max_length=MAX_ITEMS)
    """Source prefixes that may query it; the router's edge firewall drops the port for
    everyone else, and the service refuses them too."""


class StackConfig(Strict):
    """The whole stack: the AS, its routers and upstreams, the mesh, and where things run."""

    asn: Asn
    prefixes: list[Prefix] = Field(min_length=1, max_length=MAX_ITEMS)
    """Prefixes this AS originates (exported to upstreams, never accepted from them)."""
    hosts: list[Host] = Field([Host(name="local")], max_length=MAX_ITEMS)
    images: Images = Images()
    border_routers: list[BorderRouter] = Field(min_length=1, max_length=MAX_ITEMS)
    upstreams: list[Upstream] = Field(min_length=1, max_length=MAX_ITEMS)
    mesh: Mesh
    netmaker: Netmaker = Netmaker()
    policy: Policy = Policy()
    rpki: Optional[Rpki] = None
    """Route origin validation on every eBGP session (None: off)."""
    lab: Optional[Lab] = None
    monitoring: Optional[Monitoring] = None
    """Metrics and alerts (None: off)."""
    looking_glass: Optional[LookingGlass] = None
    """The routers' looking glass (None: off)."""

    @property
    def rtr_caches(self) -> list[RtrCache]:
        """The caches the border routers use: rpki.caches, or a lab's own default one."""
        if self.rpki is None or self.rpki.caches or self.lab is None:
            return list(self.rpki.caches) if self.rpki else []
        return [RtrCache(address=IPv4Address(int(self.lab.underlay.network_address) + LAB_RTR_SLOT))]

    def router_of(self, upstream: Upstream) -> BorderRouter:
        name = upstream.router or self.border_routers[0].name
        return next(r for r in self.border_routers if r.name == name)

    def upstreams_of(self, router: BorderRouter) -> list[Upstream]:
        return [u for u in self.upstreams if self.router_of(u).name == router.name]

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def ibgp_limits(self) -> tuple[int, int]:
        """(import limit, receive limit) of each iBGP session: the policy's, or what another
        router may rightly send (every upstream's routes and the own prefixes)."""
        own = len(self.prefixes)
        imported = self.policy.ibgp_max_prefixes or min(U32, own + sum(u.max_prefixes for u in self.upstreams))
        received = self.policy.ibgp_max_received or min(U32, own + sum(u.receive_limit for u in self.upstreams))
        return imported, max(imported, received)

    def bgp_kernel_table(self, router: BorderRouter) -> Optional[int]:
        """Where `router` installs BGP-learned routes: policy.kernel_table on a real host (its
        own traffic keeps the main table), None (main) in a lab's own network namespace."""
        host = next((h for h in self.hosts if h.name == router.host), None)
        return self.policy.kernel_table if host is not None and host.ssh is not None else None

    def tag_only_pulls(self) -> dict[str, str]:
        """Key path -> reference of each image the hosts pull by tag alone: whoever can push
        to that tag changes what runs (`check` warns). Images built here are not pulled."""
        refs = {}
        if self.images.registry is not None:
            used = {"border": True, "netclient": bool(self.mesh.nodes), "bird": any(u.kind == "mock" for u in self.upstreams),
                    "monitoring": self.monitoring is not None}
            refs |= {f"images.digests.{k}": self.images.reference(k) for k, on in used.items() if on}
        if self.netmaker.images == "pull":
            refs |= {f"netmaker.upstream_images.{k}": self.netmaker.pull_image(k) for k in UpstreamImages.model_fields}
        return {key: ref for key, ref in refs.items() if "@" not in ref}

    @property
    def offline(self) -> bool:
        """A lab: nothing may call the Internet (no STUN, no public-IP lookups)."""
        return self.lab is not None


