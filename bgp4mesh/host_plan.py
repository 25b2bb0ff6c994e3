"""What a remote host needs before bgp4mesh's containers run on it, as plain data from
the model, and the script that applies it (templates/host-prep.sh.j2).

Containers on a real host share its network namespace (host networking), so what the
lab set per container is set on the host here: forwarding and rp_filter on a border
router's host, src_valid_mark for WireGuard's fwmark routing, the uplink address, and a
firewall that admits only what each host's roles need. The script is idempotent and is
installed to run again at boot, so a rebooted host comes back as it was left."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Optional

from .agent_config import schema as agent_schema
from .config import BorderRouter, Host, StackConfig
from .edge_rules import JUMPS as EDGE_JUMPS, PREFIX as EDGE_PREFIX
from .jinja import template
from .monitoring import exporter_ports

SCRIPT_PATH = "/usr/local/sbin/bgp4mesh-host-prep"
NFT_TABLE = "bgp4mesh"
BGP_PORT = 179
WEB_PORTS = (80, 443)
"""The TLS front: ACME HTTP-01 validation and HTTPS (API and MQTT over websockets)."""


@dataclass(frozen=True)
class Opening:
    proto: str
    port: int | tuple[int, ...]
    source: str | None = None
    why: str = ""
    iface: str | None = None
    """Only on this interface (None: any)."""
    ttl: int | None = None
    """Only with this TTL (IPv6: hop limit) on arrival (GTSM: 255, nobody further than one hop)."""

    @property
    def family(self) -> str:
        """nft's protocol keyword for the source and TTL match: `ip`, or `ip6` for an IPv6 source."""
        return "ip6" if self.source and ":" in self.source else "ip"

    @property
    def ttl_match(self) -> str:
        return "ip6 hoplimit" if self.family == "ip6" else "ip ttl"


@dataclass
class HostPlan:
    name: str
    roles: list[str] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    addresses: list[tuple[str, str]] = field(default_factory=list)
    """(interface, address/length) the host must hold."""
    openings: list[Opening] = field(default_factory=list)
    """Besides SSH (whatever port sshd listens on), ICMP and replies."""
    route_rules: list["RouteRule"] = field(default_factory=list)
    """Policy routing of a router's host: what may use the BGP-learned routes."""

    @property
    def interfaces(self) -> dict[str, str]:
        """Interface named by an opening -> the shell variable holding its kernel name (an
        altname, like the simulation's `uplink`, is not what nft's iifname compares)."""
        names = dict.fromkeys(o.iface for o in self.openings if o.iface)
        return {name: f"iface_{i}" for i, name in enumerate(names)}

    @property
    def rule_prefs(self) -> list[tuple[int, int]]:
        """(IP version, preference) of every rule, once: what a rerun deletes first."""
        return sorted({(r.version, r.pref) for r in self.route_rules})


IPV6_MEMBER = {"net.ipv6.conf.all.disable_ipv6": "0", "net.ipv6.conf.default.disable_ipv6": "0"}
"""A member of a mesh with range6 holds an IPv6 address on its mesh interface."""
IPV6_ROUTER = {"net.ipv6.conf.all.forwarding": "1", "net.ipv6.conf.all.keep_addr_on_down": "1",
               "net.ipv6.conf.default.keep_addr_on_down": "1"}
"""A router forwarding IPv6 keeps its uplink's IPv6 address when the link goes down and up
(the kernel flushes IPv6 addresses on link down otherwise, and the session never returns)."""


def host_plan(cfg: StackConfig, host: Host, ibgp: tuple[dict, ...], scraper: Optional[IPv4Address] = None) -> HostPlan:
    """What `host` needs for its roles; `ibgp`: each router's iBGP address per family,
    `scraper`: where Prometheus scrapes from (both the plan's)."""
    plan = HostPlan(host.name)
    routers = [r for r in cfg.border_routers if r.host == host.name]
    members = routers + [n for n in cfg.mesh.nodes if n.host == host.name]
    if members:
        plan.roles.append("mesh member")
        plan.sysctls["net.ipv4.conf.all.src_valid_mark"] = "1"
        if cfg.mesh.range6 is not None:
            plan.sysctls.update(IPV6_MEMBER)
        plan.openings.append(Opening("udp", cfg.mesh.wireguard_port, why="WireGuard"))
    for router in routers:
        plan.roles.append(f"border router {router.name}")
        plan.sysctls.update({"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.default.rp_filter": "0"})
        plan.addresses += uplink_addresses(cfg, router)
        if any(6 in up.families for up in cfg.upstreams_of(router)) or cfg.mesh.range6 is not None:
            plan.sysctls.update(IPV6_MEMBER | IPV6_ROUTER)
        plan.openings += bgp_openings(cfg, router, ibgp)
        plan.route_rules += route_rules(cfg, router)
    plan.openings += exporter_openings(bool(members) and host.endpoint is not None, bool(routers), scraper)
    if routers and cfg.looking_glass is not None:
        lg = cfg.looking_glass
        plan.openings += [Opening("tcp", lg.port, str(p), "looking glass") for p in lg.allow if p.version == 4]
    if cfg.netmaker.host == host.name:
        plan.roles.append("netmaker control plane")
        plan.openings += [Opening("tcp", port, why="TLS front") for port in WEB_PORTS]
    return plan


def uplink_addresses(cfg: StackConfig, router: BorderRouter) -> list[tuple[str, str]]:
    """(interface, address/length) of each of `router`'s sessions whose upstream names the
    host interface, per family."""
    out = []
    for up in (u for u in cfg.upstreams_of(router) if u.interface is not None):
        out.append((up.interface, f"{up.local_address}/{up.link.prefixlen}"))
        if up.link6 is not None:
            out.append((up.interface, f"{up.local_address6}/{up.link6.prefixlen}"))
    return out


def exporter_openings(member: bool, router: bool, scraper: Optional[IPv4Address]) -> list[Opening]:
    """A member host's exporters (host networking: they listen on its public address) to the
    scrape source alone; a host without an endpoint (behind NAT) is not scraped, so opens nothing. The monitoring host itself opens nothing: Prometheus and
    Alertmanager serve on its loopback, reached through an SSH tunnel."""
    if scraper is None or not member:
        return []
    return [Opening("tcp", port, str(scraper), f"{name} (Prometheus)") for port, name in exporter_ports(router)]


# ---- the BGP edge: sessions in, and what may use what BGP learned -------------------

BFD_PORTS = (3784, 3785, 4784)
"""BFD control, echo and multihop (RFC 5881, 5883): BIRD's sessions use 3784."""
GTSM_TTL = 255
RULE_PREF = 2000
"""After border-health's rules (1000-1003, table 44: inbound to the active gateway first)."""


def bgp_openings(cfg: StackConfig, router: BorderRouter, ibgp: tuple[dict, ...]) -> list[Opening]:
    """BGP (and BFD where a session runs it) from each upstream's neighbor of each family on
    its interface, with TTL 255 under GTSM, and from each other border router's iBGP
    address of each family."""
    out = []
    for up in cfg.upstreams_of(router):
        why = f"BGP from {up.name}" + (" (GTSM)" if up.ttl_security else "")
        for neighbor in (n for n in (up.neighbor, up.neighbor6) if n is not None):
            out.append(Opening("tcp", BGP_PORT, str(neighbor), why, up.interface, GTSM_TTL if up.ttl_security else None))
            if up.bfd is not None:
                out.append(Opening("udp", BFD_PORTS, str(neighbor), f"BFD from {up.name}", up.interface))
    for addresses in ibgp:
        for other in (r for r in cfg.border_routers if r.name != router.name and r.name in addresses):
            out.append(Opening("tcp", BGP_PORT, str(addresses[other.name]), f"iBGP from {other.name}"))
            if cfg.policy.ibgp_bfd is not None:
                out.append(Opening("udp", BFD_PORTS, str(addresses[other.name]), f"BFD from {other.name}"))
    return out


@dataclass(frozen=True)
class RouteRule:
    """`ip -<version> rule add pref <pref> <selector> lookup <table>`; `main_specific`: the
    main table without its default route (suppress_prefixlength 0)."""

    version: int
    pref: int
    selector: str
    table: int | str
    main_specific: bool = False


def route_rules(cfg: StackConfig, router: BorderRouter) -> list[RouteRule]:
    """BIRD puts what BGP learned in a table of its own: forwarded traffic and what the own
    prefixes source look there after the main table's specific routes (mesh, links; not the
    host's default). The host's own traffic never does, so a more-specific from the ISP
    cannot take SSH. The own prefixes' unreachable route is in main: a gone mesh refuses."""
    table = cfg.bgp_kernel_table(router)
    if table is None:
        return []
    out = []
    for version in sorted({p.version for p in cfg.prefixes}):
        out += [RouteRule(version, RULE_PREF, "not iif lo", "main", True), RouteRule(version, RULE_PREF + 1, "not iif lo", table)]
        for p in (p for p in cfg.prefixes if p.version == version):
            out += [RouteRule(version, RULE_PREF + 2, f"from {p}", "main", True), RouteRule(version, RULE_PREF + 3, f"from {p}", table)]
    return out


def render_host_prep(plan: HostPlan) -> str:
    return template("host-prep.sh.j2").render(plan=plan, script_path=SCRIPT_PATH, table=NFT_TABLE)


def _edge_undo(tool: str) -> str:
    """`tool`'s (iptables, ip6tables) jumps to the edge chains, then the chains."""
    jumps = "".join(f"  while {tool} -w -D {hook} -j {EDGE_PREFIX}-{hook} 2>/dev/null; do :; done\n" for hook in EDGE_JUMPS)
    return (f"if command -v {tool} >/dev/null 2>&1; then\n{jumps}"
            f"  chains=$({tool} -w -S 2>/dev/null | awk '$1 == \"-N\" && $2 ~ /^{EDGE_PREFIX}-/ {{print $2}}')\n"
            f"  for c in $chains; do {tool} -w -F \"$c\"; done\n"
            f"  for c in $chains; do {tool} -w -X \"$c\"; done\nfi\n")


EDGE_UNDO = _edge_undo("iptables") + _edge_undo("ip6tables")
"""The members' edge firewall (host networking: in the host's own tables) outlives their
containers: its jumps and chains go too, or its anti-spoofing would keep dropping the
uplink's other sources after the stack is gone."""

AGENT_UNDO = "".join(f"while ip -{v} rule del pref {pref} 2>/dev/null; do :; done\n" for v, pref in agent_schema.HOST_ROUTING) + "".join(
    f"ip -{v} route flush table {table} 2>/dev/null || true\n" for v, table in agent_schema.HOST_TABLES)
"""The HA agent's rules and tables (host networking: the host's), which outlive its container."""
NETCLIENT_IGW_TABLE = 111
NETCLIENT_IGW_RULES = ((2000, "main"), (2500, "main"), (2999, "main"), (3000, NETCLIENT_IGW_TABLE))
"""netclient v1.6.0's rules on an internet gateway's client (wireguard/wireguard_linux.go,
setInternetGwV4/V6): it leaves them when its container goes, and on the next deployment to the
host its own "file exists" then keeps the gateway's default from ever being set again."""
NETCLIENT_UNDO = "".join(f"while ip -{v} rule del pref {pref} lookup {table} 2>/dev/null; do :; done\n"
                         for v in (4, 6) for pref, table in NETCLIENT_IGW_RULES) + "".join(
    f"ip -{v} route flush table {NETCLIENT_IGW_TABLE} 2>/dev/null || true\n" for v in (4, 6))

UNDO = f"""set -eu
nft delete table inet {NFT_TABLE} 2>/dev/null || true
{EDGE_UNDO}{AGENT_UNDO}{NETCLIENT_UNDO}if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then systemctl disable bgp4mesh-host-prep.service 2>/dev/null || true; fi
rm -f /etc/systemd/system/bgp4mesh-host-prep.service /etc/systemd/system/docker.service.d/10-bgp4mesh.conf /etc/sysctl.d/90-bgp4mesh.conf
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
if [ -x {SCRIPT_PATH} ]; then {SCRIPT_PATH} --remove-addresses; fi
rm -f {SCRIPT_PATH}
"""
"""Run when the stack is destroyed (after the containers): the firewall, the members' edge
rules, the agent's and netclient's routing, the boot hook (and Docker's need of it), the addresses and the
routing rules go; the sysctls keep their values until the next boot."""
