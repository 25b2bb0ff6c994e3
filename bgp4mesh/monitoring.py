"""The monitoring plan: who exports what where, and what Prometheus scrapes.

Every border router and mock ISP runs Debian's prometheus-bird-exporter beside BIRD; every
mesh member (router or node) runs the bgp4mesh exporter (images/netclient/exporter); the
control-plane exporter runs beside Prometheus. Each listens on the member's underlay or
host address (Member.endpoint), and the member's edge firewall lets only Prometheus's
address reach those ports (edge_rules: EdgePlan.services). A member behind NAT has no
address Prometheus can reach and is not scraped (the plan says so: `unscraped`).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Optional

from . import metrics
from .config import StackConfig

BIRD_EXPORTER_PORT = 9324
"""prometheus-bird-exporter's own default."""
MEMBER_EXPORTER_PORT = 9586
"""The bgp4mesh exporter on every member (prometheus_wireguard_exporter's default)."""
CONTROL_EXPORTER_PORT = 9587
"""The control-plane exporter, on loopback beside Prometheus."""
PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093

JOB_BIRD, JOB_MEMBER, JOB_CONTROL = "bird", "member", "control"


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
class MonitoringPlan:
    host: str
    """The host Prometheus and Alertmanager run on."""
    address: Optional[IPv4Address]
    """A lab's: theirs on the underlay (the scrapes' source address)."""
    links: dict[str, IPv4Address]
    """A lab's: upstream -> Prometheus's address on that mock ISP's link."""
    scrape_interval: int
    targets: tuple[Target, ...]
    unscraped: tuple[str, ...]
    """Members with no address Prometheus reaches (behind NAT)."""

    def listen(self, job: str, label: str, name: str) -> Optional[str]:
        """ip:port where `name`'s exporter of `job` must listen (the target Prometheus
        scrapes, found by its target label); None for one Prometheus cannot reach."""
        return next((t.address for t in self.targets if t.job == job and (label, name) in t.labels), None)


def monitoring_plan(cfg: StackConfig, members: list[tuple[str, bool, Optional[str]]], isps: list[tuple[str, str]],
                    links: dict[str, IPv4Address], address: Optional[IPv4Address]) -> Optional[MonitoringPlan]:
    """The stack's monitoring, from its members ((name, is a router, endpoint)) and mock ISPs
    ((name, address on its link)); None without `monitoring`."""
    if cfg.monitoring is None:
        return None
    targets, unscraped = [], []
    for name, router, endpoint in members:
        if endpoint is None:
            unscraped.append(name)
            continue
        if router:
            targets.append(Target(JOB_BIRD, f"{endpoint}:{BIRD_EXPORTER_PORT}", ((metrics.TARGET_ROUTER, name),)))
        targets.append(Target(JOB_MEMBER, f"{endpoint}:{MEMBER_EXPORTER_PORT}", (("member", name),)))
    targets += [Target(JOB_BIRD, f"{ip}:{BIRD_EXPORTER_PORT}", ((metrics.TARGET_UPSTREAM, name),)) for name, ip in isps]
    targets.append(Target(JOB_CONTROL, f"127.0.0.1:{CONTROL_EXPORTER_PORT}", ()))
    return MonitoringPlan(
        host=cfg.monitoring.host or cfg.netmaker.host,
        address=address,
        links=links,
        scrape_interval=cfg.monitoring.scrape_interval,
        targets=tuple(targets),
        unscraped=tuple(unscraped),
    )
