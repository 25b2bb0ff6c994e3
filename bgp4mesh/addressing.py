"""Address plan derived from the config: who gets which address on which network.

Docker gives a bridge network's gateway the first host address by default; on an
upstream link that is often the ISP's own address (172.30.0.1), so each network's
bridge gateway is placed on the highest address nobody in the config uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from .config import ConfigError, StackConfig

# Fixed underlay slots, counted from the start of the underlay subnet.
NETMAKER_SLOTS = {"mq": 2, "server": 3, "tls": 4}
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


@dataclass(frozen=True)
class UnderlayPlan:
    """Where each container sits on the lab's stand-in for the Internet."""

    subnet: IPv4Network
    gateway: IPv4Address
    netmaker: dict[str, IPv4Address]
    routers: dict[str, IPv4Address]
    nodes: dict[str, IPv4Address]


@dataclass(frozen=True)
class MeshPlan:
    """Pinned mesh addresses; None means Netmaker assigns one at join."""

    pinned: dict[str, IPv4Address | None]


def bridge_gateway(subnet: IPv4Network, taken: set[IPv4Address]) -> IPv4Address:
    """The highest host address of `subnet` that the config does not use."""
    for i in range(int(subnet.broadcast_address) - 1, int(subnet.network_address), -1):
        if IPv4Address(i) not in taken:
            return IPv4Address(i)
    raise ConfigError(f"{subnet}: no free address left for the Docker bridge gateway")


def link_plans(cfg: StackConfig) -> list[LinkPlan]:
    plans, by_subnet = [], {}
    for u in cfg.upstreams:
        by_subnet.setdefault(u.link, set()).update({u.neighbor, u.local_address})
    for u in cfg.upstreams:
        plans.append(LinkPlan(u.name, u.link, bridge_gateway(u.link, by_subnet[u.link]), u.neighbor, u.local_address))
    return plans


def underlay_plan(cfg: StackConfig) -> UnderlayPlan:
    if cfg.lab is None:
        raise ConfigError("underlay addresses exist only in lab stacks (no 'lab' section)")
    subnet = cfg.lab.underlay
    base = int(subnet.network_address)

    def slot(n: int, what: str) -> IPv4Address:
        addr = IPv4Address(base + n)
        if addr >= subnet.broadcast_address - 1:
            raise ConfigError(
                f"lab.underlay = {subnet}: too small for {what}; "
                f"{len(cfg.mesh.nodes)} nodes need at least /{_fit(NODE_BASE + len(cfg.mesh.nodes) + 2)}"
            )
        return addr

    netmaker = {k: slot(v, f"netmaker {k}") for k, v in NETMAKER_SLOTS.items()}
    routers = {r.name: slot(ROUTER_BASE + i, r.name) for i, r in enumerate(cfg.border_routers)}
    if len(cfg.border_routers) > NODE_BASE - ROUTER_BASE:
        raise ConfigError(f"lab: at most {NODE_BASE - ROUTER_BASE} border routers fit the underlay plan")
    nodes = {n.name: slot(NODE_BASE + i, n.name) for i, n in enumerate(cfg.mesh.nodes)}
    gateway = IPv4Address(int(subnet.broadcast_address) - 1)
    return UnderlayPlan(subnet, gateway, netmaker, routers, nodes)


def mesh_plan(cfg: StackConfig) -> MeshPlan:
    pinned = {r.name: r.mesh_ip for r in cfg.border_routers}
    pinned.update({n.name: n.ip for n in cfg.mesh.nodes})
    return MeshPlan(pinned)


def _fit(count: int) -> int:
    length = 32
    while (1 << (32 - length)) < count:
        length -= 1
    return length
