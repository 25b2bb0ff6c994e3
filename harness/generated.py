"""Generated stacks: the dev stack with N mesh nodes on lab subnets of their own, so a
bench or a live test can grow, shrink and break a lab beside `dev` (172.31.0.0/24,
172.30.0.0/24), `daytwo` (.8), `lab` (.16-.18) and the join helper's stacks (.48-.64).

A generated stack lives only in the engine's config file (harness.engine.Stack with a
`config`): nothing is written next to the shipped stack files. `verify` reads it with
`--project-dir` harness.engine.CACHE/stacks, as bench/bringup_cycles.py does."""

from __future__ import annotations

import copy
from ipaddress import IPv4Network

from harness.engine import Stack

SLOTS = {"bench": 80, "scale": 84, "downfail": 88}
"""Third octet of each generated stack's subnets: underlay 172.31.<s>.0/23, ISP link
172.30.<s>.0/24 and 2001:db8:ac1e:<s>::/64 (the control plane takes the /28 after the underlay)."""


def node_names(count: int, first: int = 1) -> list[str]:
    return [f"node{i}" for i in range(first, first + count)]


def config_with_nodes(slot: int, names: list[str]) -> dict:
    """The dev stack's config (node1 pinned as in dev, with its inbound port) with `names`
    as its mesh nodes, on the subnets of `slot`."""
    config = copy.deepcopy(Stack("dev").config)
    link = IPv4Network(f"172.30.{slot}.0/24")
    neighbor, local = str(link.network_address + 1), str(link.network_address + 100)
    link6 = f"2001:db8:ac1e:{slot}::"  # dev's IPv6 link is 2001:db8:ac1e::/64: Docker refuses a second one
    config["bgp4mesh:upstreams"][0].update(link=str(link), neighbor=neighbor, local_address=local,
                                           link6=f"{link6}/64", neighbor6=f"{link6}1", local_address6=f"{link6}100")
    config["bgp4mesh:border_routers"][0]["router_id"] = local
    config["bgp4mesh:lab"]["underlay"] = f"172.31.{slot}.0/23"
    shipped = {n["name"]: n for n in config["bgp4mesh:mesh"]["nodes"]}
    config["bgp4mesh:mesh"]["nodes"] = [shipped.get(name, {"name": name}) for name in names]
    return config


def generated(name: str, count: int) -> Stack:
    """Stack `name` (a key of SLOTS) with mesh nodes node1..node<count>."""
    return Stack(name, config_with_nodes(SLOTS[name], node_names(count)))


def set_nodes(stack: Stack, names: list[str]) -> None:
    """Change a generated stack's mesh nodes to `names` (the next `up` adds or removes)."""
    stack.config = config_with_nodes(SLOTS[stack.name], names)
