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
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Annotated, Any, Iterable, Iterator, Literal, Optional, Sequence, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    model_validator,
)

from .bogons import BOGON_ASNS, BOGON_PREFIXES_V4, BOGON_PREFIXES_V6

NAMESPACE = "bgp4mesh"
U32 = 2**32 - 1

NAME_RULE = "a name must be 1-32 characters of a-z, 0-9 and '-', start with a letter and not end with '-' (what Docker, DNS and Netmaker all accept)"
_NAME_RE = re.compile(r"[a-z]([a-z0-9-]{0,30}[a-z0-9])?")
YAML_BOOL_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})
"""Words one YAML reader takes as a boolean (or null) and another as text: never a name."""
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
MD5_MAX_LEN = 80
"""Linux TCP_MD5SIG_MAXKEYLEN."""
MAX_ITEMS = 1000
MAX_NODES = 10_000
"""List bounds: far above any real stack, low enough that `check` stays fast on hostile input."""

RESERVED_ASNS = {
    0: "AS 0 is reserved (RFC 7607) and never valid in BGP",
    23456: "AS 23456 is AS_TRANS (RFC 6793), not a real AS",
    65535: "AS 65535 is reserved (RFC 7300)",
    4294967295: "AS 4294967295 is reserved (RFC 7300)",
}
BOOL_HINT = "YAML reads yes/no/on/off/true/false as a boolean"


# ---- problems and their messages ----------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One broken rule. `key` is relative to the section that found it."""

    key: str
    value: Any
    rule: str
    has_value: bool = True


def problem(key: str, rule: str) -> Problem:
    """A problem with no single offending value (a missing or a whole-list rule)."""
    return Problem(key, None, rule, has_value=False)


class ConfigError(ValueError):
    """Invalid stack configuration; str() is the operator-facing message. Raised
    inside a model validator, its problems are re-rooted at the model's key path."""

    def __init__(self, message: str = "", problems: Sequence[Problem] = ()):
        self.problems = list(problems)
        super().__init__(message or format_problems(self.problems))


MAX_LINES = 100
SHOW_MAX = 60
SECRET_SHOWN = "[secret]"


def format_problems(problems: Sequence[Problem], secret_keys: Iterable[str] = ()) -> str:
    """`invalid stack configuration:` and one `bgp4mesh:<key> = <value>: <rule>` line
    per problem; values of password keys, SecretStr values and whole secret keys
    are never shown."""
    secret_keys = set(secret_keys)
    lines = []
    for p in problems[:MAX_LINES]:
        head = f"{NAMESPACE}:{p.key}" if p.key else NAMESPACE
        if p.has_value:
            hidden = _is_secret_key(p.key) or p.key in secret_keys
            head += f" = {SECRET_SHOWN if hidden else show(p.value)}"
        lines.append(f"{head}: {p.rule}")
    if len(problems) > MAX_LINES:
        lines.append(f"... and {len(problems) - MAX_LINES} more")
    return "invalid stack configuration:\n  " + "\n  ".join(lines)


def _is_secret_key(key: str) -> bool:
    return any("password" in part.lower() for part in re.split(r"[.\[\]]", key))


def show(value: Any) -> str:
    """A value shown briefly: never a dump of a whole section, never 10 MB."""
    if isinstance(value, SecretStr):
        return SECRET_SHOWN
    if isinstance(value, str):
        if len(value) > SHOW_MAX:
            return f"{value[:40]!r}... ({len(value)} characters)"
        return repr(value)
    if isinstance(value, dict):
        return f"{{...}} (a mapping of {len(value)} keys)"
    if isinstance(value, (list, tuple)):
        return f"[...] (a list of {len(value)} items)"
    if value is None or isinstance(value, (bool, int, float, IPv4Address, IPv4Network, IPv6Network)):
        text = str(value)
        return text if len(text) <= SHOW_MAX else f"{text[:40]}... ({len(text)} digits)"
    return f"a {type(value).__name__}"


def key_part(part: Any) -> str:
    """One key of a path as written in a message (odd or huge keys shown briefly)."""
    if isinstance(part, int) and not isinstance(part, bool):
        return f"[{part}]"
    text = str(part)
    if re.fullmatch(r"[A-Za-z0-9_:-]{1,40}", text):
        return text
    return show(text) if isinstance(part, str) else f"<{show(part)}>"


def join_key(*parts: str) -> str:
    out = ""
    for part in parts:
        if part:
            out += part if (not out or part.startswith("[")) else f".{part}"
    return out


# ---- scalar types ------------------------------------------------------------------


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


class Images(Strict):
    """Where bgp4mesh's own images (border, netclient, bird) come from."""

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
    44: "the HA routers' table for inbound forwarded to the active gateway (images/border/border-health)",
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
    announce: list[Prefix4] = Field([], max_length=MAX_ITEMS)
    """Prefixes it originates; the first address of each answers ping."""
    default_route: bool = True
    """Also announce 0.0.0.0/0, as a real transit upstream would."""
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
    interface: Optional[InterfaceName] = None
    """Remote hosts: the router host's interface on the link. Host preparation puts
    local_address on it; omitted, the address must already be there."""
    mock: Optional[MockIsp] = None
    """Lab only: run a mock ISP for this upstream."""

    @model_validator(mode="after")
    def _addresses_on_link(self) -> "Upstream":
        found = []
        for field in ("neighbor", "local_address"):
            addr = getattr(self, field)
            if addr not in self.link:
                found.append(Problem(field, addr, f"not inside link {self.link}"))
            elif addr in (self.link.network_address, self.link.broadcast_address):
                found.append(Problem(field, addr, f"the network or broadcast address of link {self.link}"))
        if self.neighbor == self.local_address:
            found.append(Problem("local_address", self.local_address, "same address as neighbor"))
        if self.max_received is not None and self.max_received < self.max_prefixes:
            found.append(Problem("max_received", self.max_received, f"below max_prefixes {self.max_prefixes}: received routes include the accepted ones"))
        _raise(found)
        return self

    @property
    def receive_limit(self) -> int:
        """What BIRD's `receive limit` gets: max_received, or twice max_prefixes."""
        return self.max_received if self.max_received is not None else min(U32, 2 * self.max_prefixes)

    @property
    def mock_router_id(self) -> Optional[IPv4Address]:
        return None if self.mock is None else (self.mock.router_id or self.neighbor)


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


LAB_RTR_SLOT = 5
"""A lab's default RTR cache: this many addresses into lab.underlay (free in its plan)."""


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
    exchange: Optional[Prefix4] = None
    """A LAN where the mock ISPs peer with each other (eBGP, every pair) and with the probe;
    None: the mock ISPs only know their border router."""
    probe: Optional[Probe] = None
    """A host on the Internet beyond the mock ISPs (needs `exchange`)."""
    roas: list[Roa] = Field([], max_length=MAX_NODES)
    """What the lab's RTR caches (stayrtr, one at each `rpki.caches` address on the
    underlay) serve; needs `rpki`. Empty: every route validates as `not found`."""
    roa_refresh: Int = Field(10, ge=1, le=86400)
    """Seconds between the caches' reads of their VRP file (stayrtr -refresh)."""


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

    @model_validator(mode="after")
    def _coherent(self) -> "StackConfig":
        checks = (
            _check_prefixes, _check_asns, _check_names, _check_references, _check_overlaps, _check_inside, _check_mesh_ips, _check_remote, _check_lab,
            _check_routers, _check_probe, _check_rpki, _check_authentication, _check_inbound,
        )
        _raise(p for check in checks for p in check(self))
        return self

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
        return self.policy.kernel_table if _host(self, router.host).ssh is not None else None

    def tag_only_pulls(self) -> dict[str, str]:
        """Key path -> reference of each image the hosts pull by tag alone: whoever can push
        to that tag changes what runs (`check` warns). Images built here are not pulled."""
        refs = {}
        if self.images.registry is not None:
            used = {"border": True, "netclient": bool(self.mesh.nodes), "bird": any(u.mock for u in self.upstreams)}
            refs |= {f"images.digests.{k}": self.images.reference(k) for k, on in used.items() if on}
        if self.netmaker.images == "pull":
            refs |= {f"netmaker.upstream_images.{k}": self.netmaker.pull_image(k) for k in UpstreamImages.model_fields}
        return {key: ref for key, ref in refs.items() if "@" not in ref}

    @property
    def offline(self) -> bool:
        """A lab: nothing may call the Internet (no STUN, no public-IP lookups)."""
        return self.lab is not None


# ---- rules across sections: each yields every problem it finds -----------------------

Checks = Iterator[Problem]


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
        if u.mock is not None and cfg.lab is None:
            yield problem(f"upstreams[{i}].mock", "a mock ISP needs a lab stack (add a 'lab' section)")
        if u.interface is not None and (u.router is None or u.router in routers) and _host(cfg, cfg.router_of(u).host).ssh is None:
            yield Problem(f"upstreams[{i}].interface", u.interface, "only for a router on a remote host (`ssh`); a lab link is a Docker network")
        key = (u.neighbor,) if u.mock is not None else (u.neighbor, u.router)
        if key in neighbors:
            yield Problem(f"upstreams[{i}].neighbor", u.neighbor, f"already the neighbor of {neighbors[key]}")
        neighbors.setdefault(key, f"upstreams[{i}]")
    ids: dict[IPv4Address, str] = {}
    for i, r in enumerate(cfg.border_routers):
        if r.router_id in ids:
            yield Problem(f"border_routers[{i}].router_id", r.router_id, f"already the router id of {ids[r.router_id]}")
        ids.setdefault(r.router_id, f"border_routers[{i}]")
    for i, u in enumerate(cfg.upstreams):
        if u.mock is not None and (u.router is None or u.router in routers) and u.mock_router_id == cfg.router_of(u).router_id:
            key = f"upstreams[{i}].mock.router_id" if u.mock.router_id else f"upstreams[{i}].neighbor"
            rule = f"the mock ISP's router id (mock.router_id, by default the neighbor) equals border router {cfg.router_of(u).name}'s; BGP needs distinct ids"
            yield Problem(key, u.mock_router_id, rule)


def _check_overlaps(cfg: StackConfig) -> Checks:
    """Link subnets, the lab underlay and own IPv4 prefixes must be disjoint."""
    ranges = [("link", f"upstreams[{i}].link", u.link) for i, u in enumerate(cfg.upstreams)]
    ranges += [("lab", "lab.underlay", cfg.lab.underlay)] if cfg.lab else []
    ranges += [("lab", "lab.exchange", cfg.lab.exchange)] if cfg.lab and cfg.lab.exchange else []
    ranges += [("own", f"prefixes[{i}]", p) for i, p in enumerate(cfg.prefixes) if p.version == 4]
    for (kind_a, ka, a), (kind_b, kb, b) in _nested(ranges):
        shared_link = kind_a == kind_b == "link" and a == b  # an IXP LAN
        if not shared_link and not kind_a == kind_b == "own":  # own overlaps: _check_prefixes
            yield Problem(kb, b, f"overlaps {ka} = {a}; each range must be distinct")


def _check_inside(cfg: StackConfig) -> Checks:
    """Link addresses and egress ranges against own prefixes; egress ranges against
    what Netmaker v1.6.0 refuses (logic.ValidateEgressCIDR: any overlap with the
    network's range or loopback; only '*' is its internet gateway, not 0.0.0.0/0)."""
    items = [("own", f"prefixes[{i}]", p) for i, p in enumerate(cfg.prefixes)]
    items += [("addr", f"upstreams[{i}].{f}", ip_network(getattr(u, f))) for i, u in enumerate(cfg.upstreams) for f in ("neighbor", "local_address")]
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


def _check_lab(cfg: StackConfig) -> Checks:
    """A lab's Docker networks must hold every container (what `pulumi up` builds)."""
    if cfg.lab is None:
        return
    from .addressing import exchange_plan, link_plans, underlay_plan

    for plan in (underlay_plan, link_plans, exchange_plan):
        try:
            plan(cfg)
        except ConfigError as exc:
            yield from exc.problems


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
    if cfg.lab.exchange is not None and not any(u.mock is not None for u in cfg.upstreams):
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


RTR_CACHE_NAME = "rtr-cache-{n}"
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
    from .addressing import underlay_plan

    try:
        plan = underlay_plan(cfg)
    except ConfigError:
        return  # _check_lab reports it
    taken = {a: f"{k} (Netmaker)" for k, a in plan.netmaker.items()} | {plan.gateway: "the Docker bridge gateway"}
    taken |= {a: f"border router {n}" for n, a in plan.routers.items()} | {a: f"mesh node {n}" for n, a in plan.nodes.items()}
    subnet = cfg.lab.underlay
    for i, cache in enumerate(cfg.rtr_caches):
        key, hint = (f"rpki.caches[{i}].address", "") if cfg.rpki.caches else ("rpki", f" (the lab's default cache, lab.underlay + {LAB_RTR_SLOT}: list rpki.caches)")
        if cache.address not in subnet or cache.address in (subnet.network_address, subnet.broadcast_address):
            yield Problem(key, cache.address, f"a lab runs this cache on the underlay: a host address of lab.underlay {subnet}")
        elif cache.address in taken:
            yield Problem(key, cache.address, f"already the underlay address of {taken[cache.address]}{hint}")
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
        if u.mock is None and u.password is None and not u.ttl_security and not u.unauthenticated:
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
