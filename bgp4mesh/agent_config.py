"""The HA agent's config as bgp4mesh writes it, and its state files as `verify` reads them.
The schema has one definition, the image's (images/netclient/agent/bgp4mesh_agent/schema.py,
stdlib only), loaded here by path: the image builds from its own directory alone."""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Optional, Sequence

from .config import FAILOVER_PORT, Failover
from .image_schema import load_image_schema

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "images" / "netclient" / "agent" / "bgp4mesh_agent" / "schema.py"
schema = load_image_schema("bgp4mesh_agent_schema", SCHEMA_FILE)
AgentConfig = schema.AgentConfig
ROUTER_STATE, NODE_STATE = schema.ROUTER_STATE, schema.NODE_STATE
AGENT_DIR, AGENT_FILE = posixpath.split(schema.CONFIG_PATH)
decode_state = schema.decode_state


def probe(failover: Failover) -> "schema.Probe":
    return schema.Probe(port=FAILOVER_PORT, interval_ms=failover.interval_ms, timeout_ms=failover.timeout_ms,
                        down_after=failover.down_after, up_after=failover.up_after)


def router_config(protocols: Sequence[str], gateways: Sequence[tuple[str, str, str]], self_ip: Optional[str],
                  mesh_range: Optional[str], failover: Failover, mesh_range6: Optional[str] = None) -> AgentConfig:
    """A border router's: its eBGP sessions' BIRD protocols; with several routers, every
    router as (mesh address, iBGP address, IPv6 iBGP address or "") in the nodes' order, its
    own mesh address and the mesh ranges."""
    several = len(gateways) > 1
    router = schema.Router(
        bgp_protocols=tuple(protocols),
        gateways=tuple(schema.Gateway(mesh=m, ibgp=i, ibgp6=i6) for m, i, i6 in gateways) if several else (),
        self_ip=(self_ip or "") if several else "",
        mesh_range=(mesh_range or "") if several else "",
        mesh_range6=(mesh_range6 or "") if several else "",
    )
    return AgentConfig(probe=probe(failover), router=router)


def node_config(gateways: Sequence[str], ranges: Sequence[str], failover: Failover, internet6: bool = False) -> Optional[AgentConfig]:
    """A node's, with several gateways and egress ranges to keep on one of them, or as a
    client of an internet gateway in a v6 mesh (`internet6`); else none."""
    fails_over = len(gateways) > 1 and bool(ranges)
    if not (fails_over or internet6):
        return None
    kept = (tuple(gateways), tuple(ranges)) if fails_over else ((), ())
    return AgentConfig(probe=probe(failover), node=schema.Node(gateways=kept[0], ranges=kept[1], internet6=internet6))


def agent_files(config: Optional[AgentConfig]) -> dict[str, str]:
    """The container's files under AGENT_DIR: the agent runs when its config is there."""
    return {AGENT_FILE: config.to_json()} if config else {}
