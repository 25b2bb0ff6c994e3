"""Assemble a stack from its validated config: networks, images, routers, ISPs,
the Netmaker control plane and the mesh. Returns the stack outputs."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_docker as docker

from bgp4mesh.addressing import link_plans
from bgp4mesh.config import StackConfig

from .border_router import BorderRouter, BorderRouterArgs
from .docker_parts import ImageSet, lab_network
from .mock_isp import MockIsp, MockIspArgs


def build(cfg: StackConfig) -> dict[str, Any]:
    stack = pulumi.get_stack()
    hosts = {h.name: HostContext(h.name, h.docker) for h in cfg.hosts}
    local = hosts[cfg.border_routers[0].host]
    links = {}
    if cfg.lab is not None:
        links = {
            plan.upstream: lab_network(f"link-{plan.upstream}", stack, str(plan.subnet), str(plan.gateway), local.opts()).name
            for plan in link_plans(cfg)
        }
    isps = {
        up.name: MockIsp(
            up.name,
            MockIspArgs(config=cfg, upstream=up, image=local.images.get("bird"), link_network=links[up.name]),
            local.opts(),
        )
        for up in cfg.upstreams
        if up.mock is not None
    }
    routers = {
        r.name: BorderRouter(
            r.name,
            BorderRouterArgs(config=cfg, router=r, image=hosts[r.host].images.get("border"), links=links),
            hosts[r.host].opts(),
        )
        for r in cfg.border_routers
    }
    return {
        "asn": cfg.asn,
        "prefixes": [str(p) for p in cfg.prefixes],
        "border_routers": {
            name: {"container": r.container_name, "router_id": r.router_id, "upstream_sessions": r.upstream_sessions}
            for name, r in routers.items()
        },
        "mock_isps": {name: {"container": i.container_name, "address": i.peering_address, "asn": i.asn} for name, i in isps.items()},
    }


class HostContext:
    """One Docker engine: its provider and the images built on it."""

    def __init__(self, name: str, endpoint: str):
        self.provider = docker.Provider(f"docker-{name}", host=endpoint)
        self.images = ImageSet(prefix=f"{name}-", opts=pulumi.ResourceOptions(provider=self.provider))

    def opts(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(providers={"docker": self.provider})
