"""Address plan derived from the config: who gets which address on which network.

Docker gives a bridge network's gateway the first host address by default; on an
upstream link that is often the ISP's own address (172.30.0.1), so each network's
bridge gateway is placed on the highest address nobody in the config uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from .config import StackConfig
from .problems import ConfigError, Problem

# Fixed underlay slots, counted from the start of the underlay subnet.
NETMAKER_SLOTS = {"mq": 2, "tls": 4}
"""The control plane's parts that members reach on the underlay: the broker and the TLS front."""
CONTROL_SLOTS = {"mq": 2, "server": 3, "tls": 4}
"""Their places on the lab's control network, where the server alone sits (members never
reach its API or the broker's server listener)."""
MONITORING_SLOT = 8
"""A lab's Prometheus and Alertmanager (with `monitoring`) on the underlay."""
CONTROL_PREFIX = 28
ROUTER_BASE = 10
NODE_BASE = 20


@dataclass(frozen=True)
class LinkPlan:
    """An upstream peering link as a lab Docker network."""

    upstream: str
    subnet: IPv4Network
    gateway: IPv4Address
    isp_address: IPv4Address
    border_address: IPv4Address
    monitor_address: IPv4Address | None = None
    """Prometheus's address on the link (with `monitoring`): it scrapes the mock ISP there."""
    subnet6: IPv6Network | None = None
    """The link's IPv6 subnet (the upstream's link6): the network is dual-stack."""
    gateway6: IPv6Address | None = None


@dataclass(frozen=True)
class UnderlayPlan:
    """Where each container sits on the lab's stand-in for the Internet."""

    subnet: IPv4Network
    gateway: IPv4Address
    netmaker: dict[str, IPv4Address]
    routers: dict[str, IPv4Address]
    nodes: dict[str, IPv4Address]
    control: IPv4Network
    """The internal network of the server, the broker and the front: the /28 right after the underlay."""
    control_hosts: dict[str, IPv4Address]
    monitoring: IPv4Address | None = None
    """Prometheus and Alertmanager (with `monitoring`)."""
    subnet6: IPv6Network | None = None
    """lab.underlay6: the border routers' IPv6 iBGP addresses, at their IPv4 slots."""
    gateway6: IPv6Address | None = None
    routers6: dict[str, IPv6Address] | None = None

    @property
    def control_gateway(self) -> IPv4Address:
        return IPv4Address(int(self.control.broadcast_address) - 1)


@dataclass(frozen=True)
class ExchangePlan:
    """The lab's exchange LAN: the mock ISPs in config order from its first address, then
    the probe; the bridge gateway on its last host address."""

    subnet: IPv4Network
    gateway: IPv4Address
    isps: dict[str, IPv4Address]
    probe: IPv4Address | None
    subnet6: IPv6Network | None = None
    """lab.exchange6: the same slots in IPv6."""
    gateway6: IPv6Address | None = None
    isps6: dict[str, IPv6Address] | None = None
    probe6: IPv6Address | None = None


def bridge_gateway(subnet, taken: set) -> IPv4Address | IPv6Address | None:
    """The highest host address of `subnet` (IPv4 or IPv6) that the config does not use."""
    kind = IPv4Address if subnet.version == 4 else IPv6Address
    for i in range(int(subnet.broadcast_address) - 1, int(subnet.network_address), -1):
        if kind(i) not in taken:
            return kind(i)
    return None


def link_plans(cfg: StackConfig) -> list[LinkPlan]:
    by_subnet: dict = {}
    for u in cfg.upstreams:
        by_subnet.setdefault(u.link, set()).update({u.neighbor, u.local_address})
        if u.link6 is not None:
            by_subnet.setdefault(u.link6, set()).update({u.neighbor6, u.local_address6})
    plans, problems = [], []
    for i, u in enumerate(cfg.upstreams):
        gateway = bridge_gateway(u.link, by_subnet[u.link])
        monitor = bridge_gateway(u.link, by_subnet[u.link] | {gateway}) if gateway and cfg.monitoring else None
        if gateway is None or (cfg.monitoring and monitor is None):
            problems.append(Problem(f"upstreams[{i}].link", u.link, "no free address left for the lab's Docker bridge gateway and monitoring; use a /29 or larger"))
        gateway6 = bridge_gateway(u.link6, by_subnet[u.link6]) if u.link6 is not None else None
        plans.append(LinkPlan(u.name, u.link, gateway, u.neighbor, u.local_address, monitor, u.link6, gateway6))
    if problems:
        raise ConfigError(problems=problems)
    return plans


def underlay_plan(cfg: StackConfig) -> UnderlayPlan:
    """Fixed slots from the start of `lab.underlay`; the bridge gateway on its last host address."""
    if cfg.lab is None:
        raise ConfigError("underlay addresses exist only in lab stacks (no 'lab' section)")
    subnet = cfg.lab.underlay
    base = int(subnet.network_address)
    gateway = IPv4Address(int(subnet.broadcast_address) - 1)
    routers_fit = len(cfg.border_routers) <= NODE_BASE - ROUTER_BASE
    last = NODE_BASE + len(cfg.mesh.nodes) - 1 if cfg.mesh.nodes else ROUTER_BASE + len(cfg.border_routers) - 1
    problems = []
    if not routers_fit:
        problems.append(Problem("border_routers", cfg.border_routers, f"at most {NODE_BASE - ROUTER_BASE} border routers fit the lab underlay plan"))
    if base + max(last, max(NETMAKER_SLOTS.values())) >= int(gateway):
        need = _fit(max(last, max(NETMAKER_SLOTS.values())) + 3)
        problems.append(Problem("lab.underlay", subnet, f"too small for {len(cfg.mesh.nodes)} mesh node(s) and {len(cfg.border_routers)} border router(s); use a /{need} or larger"))
    control = _control_network(cfg, subnet)
    if isinstance(control, Problem):
        problems.append(control)
    if problems:
        raise ConfigError(problems=problems)
    slot = lambda n: IPv4Address(base + n)  # noqa: E731
    six = cfg.lab.underlay6
    slot6 = lambda n: IPv6Address(int(six.network_address) + n)  # noqa: E731
    return UnderlayPlan(
        subnet,
        gateway,
        {k: slot(v) for k, v in NETMAKER_SLOTS.items()},
        {r.name: slot(ROUTER_BASE + i) for i, r in enumerate(cfg.border_routers)},
        {n.name: slot(NODE_BASE + i) for i, n in enumerate(cfg.mesh.nodes)},
        control,
        {k: IPv4Address(int(control.network_address) + v) for k, v in CONTROL_SLOTS.items()},
        slot(MONITORING_SLOT) if cfg.monitoring else None,
        six,
        _last_host6(six) if six else None,
        {r.name: slot6(ROUTER_BASE + i) for i, r in enumerate(cfg.border_routers)} if six else None,
    )


def _control_network(cfg: StackConfig, underlay: IPv4Network) -> IPv4Network | Problem:
    """The first /28 after the underlay, unless another lab network holds it."""
    size = 2 ** (32 - CONTROL_PREFIX)
    control = IPv4Network(((int(underlay.broadcast_address) + size) // size * size, CONTROL_PREFIX))
    others = [u.link for u in cfg.upstreams] + ([cfg.lab.exchange] if cfg.lab.exchange else [])
    clash = next((n for n in others if n.overlaps(control)), None)
    if clash is not None:
        return Problem("lab.underlay", underlay, f"the control plane's network {control} (the /{CONTROL_PREFIX} after the underlay) overlaps {clash}; move one of them")
    return control


def exchange_plan(cfg: StackConfig) -> ExchangePlan | None:
    if cfg.lab is None or cfg.lab.exchange is None:
        return None
    subnet = cfg.lab.exchange
    base = int(subnet.network_address)
    mocks = [u.name for u in cfg.upstreams if u.kind == "mock"]
    gateway = IPv4Address(int(subnet.broadcast_address) - 1)
    wanted = len(mocks) + (cfg.lab.probe is not None)
    if base + wanted >= int(gateway):
        raise ConfigError(problems=[Problem("lab.exchange", subnet, f"too small for {len(mocks)} mock ISP(s), the probe and a bridge gateway; use a /{_fit(wanted + 3)} or larger")])
    six = cfg.lab.exchange6
    slot6 = lambda n: IPv6Address(int(six.network_address) + n)  # noqa: E731
    return ExchangePlan(
        subnet,
        gateway,
        {name: IPv4Address(base + 1 + i) for i, name in enumerate(mocks)},
        IPv4Address(base + 1 + len(mocks)) if cfg.lab.probe is not None else None,
        six,
        _last_host6(six) if six else None,
        {name: slot6(1 + i) for i, name in enumerate(mocks)} if six else None,
        slot6(1 + len(mocks)) if six and cfg.lab.probe is not None else None,
    )


def _last_host6(subnet: IPv6Network) -> IPv6Address:
    """A v6 lab network's bridge gateway: its last address but one, as in IPv4."""
    return IPv6Address(int(subnet.broadcast_address) - 1)


def _fit(count: int) -> int:
    length = 32
    while (1 << (32 - length)) < count:
        length -= 1
    return length
