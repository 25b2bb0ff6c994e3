"""The monitoring plan: who exports what where, and what Prometheus scrapes.

Every border router and mock ISP runs Debian's prometheus-bird-exporter beside BIRD; every
mesh member (router or node) runs the bgp4mesh exporter (images/netclient/exporter); the
control-plane exporter runs beside Prometheus. Each listens on the member's underlay or
host address (Member.endpoint), and the member's edge firewall (and on a real host its
nftables table) lets only Prometheus's address reach those ports (edge_rules:
EdgePlan.services; host_plan). A member behind NAT has no address Prometheus can reach and
is not scraped (the plan says so: `unscraped`).

On real hosts Prometheus runs with its host's network on Netmaker's host, so its scrapes
come from that host's `endpoint`; it serves on loopback (an SSH tunnel reaches it), and
the control-plane exporter reads the broker's monitoring listener, which the broker's
container publishes on that host's loopback alone (netmaker_env.MONITOR_BROKER).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Optional

from . import metrics
from .addressing import UnderlayPlan
from .config import StackConfig
from .netmaker_env import MONITOR_BROKER, control_plane
from .problems import ConfigError, Problem

BIRD_EXPORTER_PORT = 9324
"""prometheus-bird-exporter's own default."""
MEMBER_EXPORTER_PORT = 9586
"""The bgp4mesh exporter on every member (prometheus_wireguard_exporter's default)."""
CONTROL_EXPORTER_PORT = 9587
"""The control-plane exporter, on loopback beside Prometheus."""
PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093

JOB_BIRD, JOB_MEMBER, JOB_CONTROL = "bird", "member", "control"


def exporter_ports(router: bool) -> list[tuple[int, str]]:
    """(port, name) of what a member exports: every member its own exporter, a router BIRD's
    too. Each member's edge rules and a real member host's firewall open these to the scraper."""
    return [(MEMBER_EXPORTER_PORT, "member exporter")] + [(BIRD_EXPORTER_PORT, "bird exporter")] * router


@dataclass(frozen=True)
class Target:
    """One scrape target."""

    job: str
    address: str
    """ip:port"""
    labels: tuple[tuple[str, str], ...]
    """Target labels: a router's bird target carries `router` (metrics.TARGET_ROUTER), a mock
    ISP's `upstream`, a member's `member`."""


@dataclass(frozen=True)
class Member:
    """A mesh member as monitoring sees it."""

    key: str
    """Its config key path (border_routers[i], mesh.nodes[i]): where a problem points."""
    name: str
    host: str
    router: bool
    endpoint: Optional[str]
    """Where its exporters listen (Member.endpoint); None behind NAT."""


@dataclass(frozen=True)
class MonitoringPlan:
    host: str
    """The host Prometheus and Alertmanager run on."""
    address: Optional[IPv4Address]
    """The scrapes' source, the one address the members' firewalls let reach the exporters:
    a lab's underlay address for Prometheus, else its host's `endpoint` (host networking)."""
    links: dict[str, IPv4Address]
    """A lab's: upstream -> Prometheus's address on that mock ISP's link."""
    scrape_interval: int
    targets: tuple[Target, ...]
    unscraped: tuple[str, ...]
    """Members with no address Prometheus reaches (behind NAT)."""
    host_network: bool = False
    """Real hosts: the container shares its host's network (a lab: the lab's networks)."""
    web: str = f"0.0.0.0:{PROMETHEUS_PORT}"
    """Where Prometheus serves its API and pages: a lab's networks, or a real host's loopback
    (operators come in with an SSH tunnel; nothing new opens on the host)."""
    broker: Optional[str] = None
    """The plain-MQTT URL the control-plane exporter reads $SYS at: a lab's clients' listener,
    or on real hosts the broker's monitoring listener on the control host's loopback."""

    @property
    def url(self) -> str:
        """Prometheus's URL as an operator dials it (on a real host: through an SSH tunnel)."""
        host, _, port = self.web.rpartition(":")
        return f"http://{self.address if host == '0.0.0.0' else host}:{port}"

    def listen(self, job: str, label: str, name: str) -> Optional[str]:
        """ip:port where `name`'s exporter of `job` must listen (the target Prometheus
        scrapes, found by its target label); None for one Prometheus cannot reach."""
        return next((t.address for t in self.targets if t.job == job and (label, name) in t.labels), None)


def scraper(cfg: StackConfig, underlay: Optional[UnderlayPlan]) -> Optional[IPv4Address]:
    """Where the scrapes come from: a lab's underlay slot, else the monitoring host's endpoint
    (rules.py requires one); None without `monitoring`."""
    if cfg.monitoring is None:
        return None
    if underlay is not None:
        return underlay.monitoring
    return cfg.host(cfg.monitoring.host or cfg.netmaker.host).endpoint


def monitoring_plan(cfg: StackConfig, members: list[Member], isps: list[tuple[str, str]], links: dict[str, IPv4Address],
                    underlay: Optional[UnderlayPlan], address: Optional[IPv4Address]) -> Optional[MonitoringPlan]:
    """The stack's monitoring, from its members, mock ISPs ((name, address on its link)) and
    scrape source (`scraper`); None without `monitoring`. Two members on one address would listen on the same ports:
    a ConfigError naming both (two netclients on one host clash on WireGuard anyway)."""
    if cfg.monitoring is None:
        return None
    _raise_clashes(members)
    targets = []
    for m in (m for m in members if m.endpoint is not None):
        if m.router:
            targets.append(Target(JOB_BIRD, f"{m.endpoint}:{BIRD_EXPORTER_PORT}", ((metrics.TARGET_ROUTER, m.name),)))
        targets.append(Target(JOB_MEMBER, f"{m.endpoint}:{MEMBER_EXPORTER_PORT}", (("member", m.name),)))
    targets += [Target(JOB_BIRD, f"{ip}:{BIRD_EXPORTER_PORT}", ((metrics.TARGET_UPSTREAM, name),)) for name, ip in isps]
    targets.append(Target(JOB_CONTROL, f"127.0.0.1:{CONTROL_EXPORTER_PORT}", ()))
    real = underlay is None
    return MonitoringPlan(
        host=cfg.monitoring.host or cfg.netmaker.host,
        address=address,
        links=links,
        scrape_interval=cfg.monitoring.scrape_interval,
        targets=tuple(targets),
        unscraped=tuple(m.name for m in members if m.endpoint is None),
        host_network=real,
        web=f"127.0.0.1:{PROMETHEUS_PORT}" if real else f"0.0.0.0:{PROMETHEUS_PORT}",
        broker=MONITOR_BROKER if real else control_plane(cfg.netmaker, underlay).broker_endpoint,
    )


def _raise_clashes(members: list[Member]) -> None:
    """Every member whose exporters would take ports another member's already listen on."""
    first: dict[str, Member] = {}
    problems = []
    for m in (m for m in members if m.endpoint is not None):
        if m.endpoint in first:
            other = first[m.endpoint]
            problems.append(Problem(f"{m.key}.host", m.host, f"{other.name} ({other.key}) already runs on this address: both "
                                    f"exporters would listen on {m.endpoint}:{MEMBER_EXPORTER_PORT}; give each member a host of its own"))
        first.setdefault(m.endpoint, m)
    if problems:
        raise ConfigError(problems=problems)
