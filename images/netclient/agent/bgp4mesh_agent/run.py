"""The agent's loop and command line. One round per probe interval: look, decide (core),
act (adapters), report.

  bgp4mesh-agent run                      the agent of this member (router or node, by its config)
  bgp4mesh-agent maintenance on|off       set a router's drain switch and wait until it is applied
                                          (bgp4mesh runs it on `pulumi up`; kept on restarts)
"""

from __future__ import annotations

import os
import sys
import time

from . import adapters, core
from .schema import CONFIG_PATH, MAINTENANCE_FLAG, NODE_FIELDS, NODE_STATE, ROUTER_FIELDS, ROUTER_STATE, AgentConfig, encode_state

INTERFACE = os.environ.get("NETCLIENT_INTERFACE", "netmaker")


def run_router(config: AgentConfig) -> None:
    router, probe = config.router, config.probe
    log = adapters.Log("border-health")
    ibgp6 = {g.ibgp: g.ibgp6 for g in router.gateways if g.ibgp6}
    system = adapters.System(log, INTERFACE, probe.port, router.mesh_range, router.mesh_range6, ibgp6)
    report = adapters.Reporter(ROUTER_STATE)
    state, actions = core.start_router(router, time.monotonic())
    state = _carry_out(system, state, actions)
    while True:
        started = time.monotonic()
        peers = None
        if core.wants_peers(state):
            peers = core.pick_peers(router, adapters.mesh_allowed_ips(INTERFACE)) if adapters.has_address(INTERFACE) else ()
        targets = core.router_targets(router, state.peers if peers is None else peers)
        probes = adapters.probe(targets, probe.port, probe.timeout_ms)
        seen = core.RouterSeen(now=time.monotonic(), probes=probes, maintenance=os.path.exists(MAINTENANCE_FLAG),
                               upstream=adapters.upstream_established(router.bgp_protocols), peers=peers)
        state, actions = core.decide_router(router, probe, state, seen)
        state = _carry_out(system, state, actions)
        report(encode_state(ROUTER_FIELDS, core.router_report(state)))
        _nap(started, probe.interval_ms)


def run_node(config: AgentConfig) -> None:
    node, probe = config.node, config.probe
    system, report = adapters.System(adapters.Log("egress-failover"), INTERFACE, probe.port), adapters.Reporter(NODE_STATE)
    state, actions = core.start_node(node)
    _carry_out(system, state, actions)
    while True:
        started = time.monotonic()
        seen = core.NodeSeen(probes=adapters.probe(node.gateways, probe.port, probe.timeout_ms),
                             allowed_ips=adapters.mesh_allowed_ips(INTERFACE), routed=adapters.routed(INTERFACE),
                             default6=node.internet6 and adapters.has_default6(INTERFACE))
        state, actions = core.decide_node(node, probe, state, seen)
        _carry_out(system, state, actions)
        report(encode_state(NODE_FIELDS, {"active": state.active}))
        _nap(started, probe.interval_ms)


def _carry_out(system: adapters.System, state, actions):
    for action in actions:
        state = core.confirm(state, action, system.do(action))
    return state


def _nap(started: float, interval_ms: int) -> None:
    """One round per interval."""
    time.sleep(max(0.0, interval_ms / 1000 - (time.monotonic() - started)))


def maintenance(switch: str) -> int:
    if switch == "on":
        os.makedirs(os.path.dirname(MAINTENANCE_FLAG), exist_ok=True)
        open(MAINTENANCE_FLAG, "a").close()
    elif os.path.exists(MAINTENANCE_FLAG):
        os.remove(MAINTENANCE_FLAG)
    want = f"maintenance={int(switch == 'on')}"
    for _ in range(300):
        try:
            text = open(ROUTER_STATE).read()
        except OSError:
            text = ""
        if want in text.splitlines():
            print(text, end="")
            return 0
        time.sleep(0.1)
    print(f"the agent did not apply {want} within 30s", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    if argv[:1] == ["maintenance"] and argv[1:] in (["on"], ["off"]):
        return maintenance(argv[1])
    if argv != ["run"]:
        print(__doc__, file=sys.stderr)
        return 2
    with open(CONFIG_PATH) as f:
        config = AgentConfig.from_json(f.read())
    (run_router if config.router else run_node)(config)
    return 0
