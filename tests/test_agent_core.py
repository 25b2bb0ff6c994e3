"""The HA agent's decisions (images/netclient/agent/bgp4mesh_agent/core.py), table-driven:
every transition the live HA tier exercises, round by round, without a system."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "images" / "netclient" / "agent"))

from bgp4mesh_agent import core  # noqa: E402
from bgp4mesh_agent.core import (  # noqa: E402
    Announce, ClearRules, FallbackRoute, Flip, ForwardTo, InstallRules, Log, Refuse, RestartDaemon, SetAllowedIps,
)
from bgp4mesh_agent.schema import Gateway, Node, Probe, Router  # noqa: E402

PROBE = Probe(port=51821, interval_ms=200, timeout_ms=200, down_after=2, up_after=3)
A, B, PEER = "44.30.127.1", "44.30.127.2", "44.30.127.10"
A_IBGP, B_IBGP = "172.31.16.10", "172.31.16.11"
ROUTER_A = Router(bgp_protocols=("peer_isp_a",), gateways=(Gateway(A, A_IBGP), Gateway(B, B_IBGP)), self_ip=A, mesh_range="44.30.127.0/24")
ROUTER_B = replace(ROUTER_A, self_ip=B)
ALONE = Router(bgp_protocols=("peer_isp",))
NODE = Node(gateways=(A, B), ranges=("198.51.100.0/24", "192.0.2.0/24"))


# ---- debouncing ---------------------------------------------------------------------------
@pytest.mark.parametrize("start, seen, after, want", [
    (Flip(False), [True, True], Flip(False, 2), "two answers are not yet up (up_after 3)"),
    (Flip(False), [True, True, True], Flip(True, 0), "up after up_after answers in a row"),
    (Flip(False), [True, True, False, True, True], Flip(False, 2), "a miss restarts the count"),
    (Flip(True), [False], Flip(True, 1), "one miss is not down (down_after 2)"),
    (Flip(True), [False, False], Flip(False, 0), "down after down_after misses in a row"),
    (Flip(True), [False, True, False], Flip(True, 1), "an answer restarts the count"),
])
def test_flip_debounces(start, seen, after, want):
    value = start
    for ok in seen:
        value = core.flip(value, ok, up_after=3, down_after=2)
    assert value == after, want


# ---- border router ------------------------------------------------------------------------
def seen(t: float, answers=(), maintenance=False, upstream=True, peers=None, self_port=True, router=ROUTER_A):
    probes = {a: a in answers for a in (PEER, A, B)}
    probes[router.self_ip] = self_port
    return core.RouterSeen(now=t, probes=probes, maintenance=maintenance, upstream=upstream, peers=peers)


def rounds(state, count, router=ROUTER_A, start=0.0, **kw):
    """`count` rounds 0.2 s apart seeing the same; every action taken succeeds."""
    actions = []
    for i in range(count):
        state, acts = core.decide_router(router, PROBE, state, seen(start + 0.2 * (i + 1), router=router, **kw))
        for act in acts:
            state = core.confirm(state, act, True)
        actions += acts
    return state, actions


def serving(router=ROUTER_A):
    """A router whose mesh, upstream and port work, settled as the active gateway."""
    state, _ = core.start_router(router, 0.0)
    state, _ = rounds(state, 10, router, peers=(PEER,), answers=(PEER, A, B))
    return state


def of(kind, actions):
    return [a for a in actions if isinstance(a, kind)]


def test_router_starts_drained_refusing_with_earlier_rules_cleared():
    state, actions = core.start_router(ROUTER_A, 5.0)
    assert actions[:3] == [ClearRules("44.30.127.0/24"), InstallRules("44.30.127.0/24", A_IBGP), Refuse(True, "starting")]
    assert (state.announced, state.refused, state.mesh.up, state.port.up, state.closed_since) == ("drained", True, False, False, 5.0)


def test_router_alone_installs_no_forwarding_and_its_port_counts_as_open():
    state, actions = core.start_router(ALONE, 0.0)
    assert not of(InstallRules, actions) and of(ClearRules, actions) == [ClearRules("")]
    state, actions = rounds(state, 3, ALONE, peers=(PEER,), answers=(PEER,))
    assert state.report["available"] and not of(ForwardTo, actions) and not of(RestartDaemon, actions)


@pytest.mark.parametrize("count, announced, available", [(2, "drained", False), (3, "normal", True)])
def test_mesh_up_after_up_after_rounds_announces_normally_and_serves(count, announced, available):
    state, _ = core.start_router(ROUTER_A, 0.0)
    state, actions = rounds(state, count, peers=(PEER,), answers=(PEER, A, B))
    assert (state.announced, state.report["mesh"], state.report["available"]) == (announced, available, available)
    assert (Refuse(False, "available=1") in actions) == available
    assert (Announce("normal") in actions) == available


@pytest.mark.parametrize("misses, mesh", [(1, True), (2, False)])
def test_mesh_lost_after_down_after_rounds_drains_and_refuses(misses, mesh):
    state, actions = rounds(serving(), misses, answers=(A,))
    assert state.report["mesh"] == mesh and state.announced == ("normal" if mesh else "drained")
    assert (Refuse(True, "available=0") in actions) == (not mesh) and (Log("mesh down") in actions) == (not mesh)


def test_maintenance_drains_and_refuses_with_the_mesh_up():
    state, actions = rounds(serving(), 1, peers=(PEER,), answers=(PEER, A, B), maintenance=True)
    assert Announce("drained") in actions and Refuse(True, "available=0") in actions
    assert state.report["mesh"] and not state.report["available"] and state.report["maintenance"]
    state, actions = rounds(state, 1, answers=(PEER, A, B), maintenance=False)
    assert Announce("normal") in actions and Refuse(False, "available=1") in actions


def test_upstream_lost_refuses_but_announces_normally_and_hands_inbound_over():
    state, actions = rounds(serving(), 1, answers=(PEER, A, B), upstream=False)
    assert Refuse(True, "available=0") in actions and not of(Announce, actions)
    assert state.report["active"] == B and ForwardTo(B_IBGP, B) in actions


def test_refusal_is_checked_against_iptables_every_slow_rounds():
    state = serving()
    gap = core.SLOW_ROUNDS - state.rounds % core.SLOW_ROUNDS
    state, actions = rounds(state, gap - 1, answers=(PEER, A, B))
    assert not of(Refuse, actions)
    state, actions = rounds(state, 1, answers=(PEER, A, B))
    assert of(Refuse, actions) == [Refuse(False, "iptables did not match available=1")]


def test_failed_announcement_is_tried_again():
    state = serving()
    state, actions = core.decide_router(ROUTER_A, PROBE, state, seen(3.0, answers=(A,)))
    state, actions = core.decide_router(ROUTER_A, PROBE, state, seen(3.2, answers=(A,)))
    assert Announce("drained") in actions
    state = core.confirm(state, Announce("drained"), False)
    state, actions = core.decide_router(ROUTER_A, PROBE, state, seen(3.4, answers=(A,)))
    assert Announce("drained") in actions


# ---- own port ------------------------------------------------------------------------------
@pytest.mark.parametrize("closed_rounds, port", [(core.CLOSED_AFTER - 1, True), (core.CLOSED_AFTER, False)])
def test_own_port_closed_for_closed_after_rounds_stops_serving(closed_rounds, port):
    state, actions = rounds(serving(), closed_rounds, start=10.0, answers=(PEER, A, B), self_port=False)
    assert state.report["port"] == port and state.report["available"] == port
    assert (Refuse(True, "available=0") in actions) == (not port)
    if not port:
        assert state.report["active"] == B and ForwardTo(B_IBGP, B) in actions


def closed(state, start, until, **kw):
    """Rounds from `start` to `until` seconds with our own port closed."""
    return rounds(state, round((until - start) / 0.2), start=start, answers=(PEER, A, B), self_port=False, **kw)


def test_own_port_closed_restarts_the_daemon_with_backoff():
    """The clock runs from the round the port is seen closed (CLOSED_AFTER rounds)."""
    state, _ = closed(serving(), 0.0, 0.2 * core.CLOSED_AFTER)
    down = 0.2 * core.CLOSED_AFTER
    assert not state.report["port"] and state.closed_since == pytest.approx(down - 0.2)
    state, actions = closed(state, down, down + core.RESTART_AFTER_S - 0.4)
    assert not of(RestartDaemon, actions)
    state, actions = closed(state, down + core.RESTART_AFTER_S - 0.4, down + core.RESTART_AFTER_S)
    assert of(RestartDaemon, actions) == [RestartDaemon(core.RESTART_AFTER_S)] and state.restart_after == 2 * core.RESTART_AFTER_S
    again = state.closed_since
    state, actions = closed(state, again, again + 2 * core.RESTART_AFTER_S - 0.2)
    assert not of(RestartDaemon, actions)
    state, actions = closed(state, again + 2 * core.RESTART_AFTER_S - 0.2, again + 2 * core.RESTART_AFTER_S + 0.2)
    assert of(RestartDaemon, actions) == [RestartDaemon(2 * core.RESTART_AFTER_S)]
    state = replace(state, restart_after=core.RESTART_MAX_S * 0.75)
    state, actions = closed(state, state.closed_since, state.closed_since + core.RESTART_MAX_S)
    assert len(of(RestartDaemon, actions)) == 1 and state.restart_after == core.RESTART_MAX_S


def test_own_port_back_resets_the_backoff():
    state = replace(serving(), restart_after=120.0)
    state, _ = rounds(state, 1, start=5.0, answers=(PEER, A, B), self_port=True)
    assert state.restart_after == core.RESTART_AFTER_S


def test_own_port_closed_without_mesh_restarts_nothing():
    state = replace(serving(), closed_since=0.0)
    state, actions = rounds(state, 200, start=1.0, answers=(), self_port=False)
    assert not state.report["mesh"] and not of(RestartDaemon, actions)


# ---- gateway choice (the router's view of it) ---------------------------------------------
def test_first_router_serving_is_active_and_delivers_here():
    state, actions = core.start_router(ROUTER_A, 0.0)
    state, actions = rounds(state, 6, peers=(PEER,), answers=(PEER, A, B))
    assert state.report["active"] == A and state.forwarding == ""


def test_router_not_yet_settled_forwards_to_a_gateway_that_answers_now():
    """Back from a restart: border-b answered once and is not up yet, but the nodes are there."""
    state, _ = core.start_router(ROUTER_A, 0.0)
    state, actions = rounds(state, 1, peers=(PEER,), answers=(PEER, A, B))
    assert state.report["active"] == B and ForwardTo(B_IBGP, B) in actions


def test_second_router_forwards_to_the_first_while_it_is_up():
    state = serving(ROUTER_B)
    assert state.report["active"] == A and state.forwarding == A_IBGP
    state, actions = rounds(state, 2, ROUTER_B, answers=(PEER, B))
    assert state.report["active"] == B and ForwardTo("", B) in actions


def test_router_without_mesh_hands_inbound_to_the_next_gateway():
    state, _ = core.start_router(ROUTER_A, 0.0)
    state, actions = rounds(state, 5, peers=(PEER,), answers=(A,))
    assert state.report["active"] == B and ForwardTo(B_IBGP, B) in actions


def test_failed_forwarding_is_tried_again():
    state, _ = core.start_router(ROUTER_A, 0.0)
    state, actions = core.decide_router(ROUTER_A, PROBE, state, seen(0.2, peers=(PEER,), answers=(A,)))
    assert ForwardTo(B_IBGP, B) in actions
    state = core.confirm(state, ForwardTo(B_IBGP, B), False)
    state, actions = core.decide_router(ROUTER_A, PROBE, state, seen(0.4, answers=(A,)))
    assert ForwardTo(B_IBGP, B) in actions
    state = core.confirm(state, ForwardTo(B_IBGP, B), True)
    state, actions = core.decide_router(ROUTER_A, PROBE, state, seen(0.6, answers=(A,)))
    assert not of(ForwardTo, actions)


def test_unsettled_router_with_mesh_forwards_to_a_gateway_answering_now():
    """Its mesh works but it cannot serve yet (no upstream): border-b, answering now but not
    yet up again in this router's count, takes inbound rather than nobody."""
    state = replace(serving(), gateways={B: Flip(False)})
    state, actions = rounds(state, 1, answers=(PEER, A, B), upstream=False)
    assert state.report["mesh"] and state.report["active"] == B and ForwardTo(B_IBGP, B) in actions


def test_mesh_counts_through_the_other_gateway_alone():
    state, _ = core.start_router(ROUTER_A, 0.0)
    state, actions = rounds(state, 3, peers=(), answers=(A, B))
    assert state.report["mesh"] and Log("mesh up") in actions


def test_peers_are_looked_up_every_slow_rounds_and_while_none():
    state, _ = core.start_router(ROUTER_A, 0.0)
    assert core.wants_peers(state)
    state, _ = rounds(state, 1, peers=(), answers=())
    assert core.wants_peers(state)
    state, _ = rounds(state, 1, peers=(PEER,), answers=())
    assert not core.wants_peers(state) and core.router_targets(ROUTER_A, state.peers) == (PEER, B, A)
    state, _ = rounds(state, core.SLOW_ROUNDS - 2, answers=())
    assert core.wants_peers(state)


def test_peers_are_members_besides_the_gateways_at_most_four():
    allowed = [("k1", (f"{A}/32", "198.51.100.0/24")), ("k2", (f"{B}/32",))] + [(f"n{i}", (f"44.30.127.{10 + i}/32",)) for i in range(6)]
    assert core.pick_peers(ROUTER_A, allowed) == ("44.30.127.10", "44.30.127.11", "44.30.127.12", "44.30.127.13")


# ---- node ------------------------------------------------------------------------------------
HOLDS = [("keyA", (f"{A}/32",)), ("keyB", (f"{B}/32", "198.51.100.0/24", "192.0.2.0/24"))]
ROUTED = frozenset(NODE.ranges)


def node_rounds(state, count, answers, allowed=HOLDS, routed=ROUTED):
    actions = []
    for _ in range(count):
        state, acts = core.decide_node(NODE, PROBE, state, core.NodeSeen({g: g in answers for g in NODE.gateways}, allowed, routed))
        actions += acts
    return state, actions


@pytest.mark.parametrize("answers, count, active", [
    ((A, B), 2, ""), ((A, B), 3, A), ((B,), 3, B), ((), 5, ""),
])
def test_node_takes_the_first_gateway_that_is_up(answers, count, active):
    state, _ = core.start_node(NODE)
    state, _ = node_rounds(state, count, answers)
    assert state.active == active


def test_node_fails_over_after_down_after_and_back_after_up_after():
    state, _ = node_rounds(core.start_node(NODE)[0], 3, (A, B))
    state, _ = node_rounds(state, 1, (B,))
    assert state.active == A
    state, actions = node_rounds(state, 1, (B,))
    assert state.active == B and Log(f"gateway {A} down") in actions
    state, _ = node_rounds(state, 2, (A, B))
    assert state.active == B
    state, _ = node_rounds(state, 1, (A, B))
    assert state.active == A


def test_node_moves_the_missing_ranges_to_the_active_gateway():
    state, _ = node_rounds(core.start_node(NODE)[0], 2, (A, B))
    state, actions = node_rounds(state, 1, (A, B))
    assert of(SetAllowedIps, actions) == [SetAllowedIps("keyA", (f"{A}/32", "198.51.100.0/24", "192.0.2.0/24"))]
    _, actions = node_rounds(state, 1, (A, B), allowed=[("keyA", (f"{A}/32", *NODE.ranges))])
    assert not of(SetAllowedIps, actions)


def test_node_routes_a_range_netclient_lost_into_the_mesh():
    state, _ = node_rounds(core.start_node(NODE)[0], 2, (A, B))
    _, actions = node_rounds(state, 1, (A, B), allowed=[("keyA", (f"{A}/32", *NODE.ranges))], routed=frozenset({"198.51.100.0/24"}))
    assert of(FallbackRoute, actions) == [FallbackRoute("192.0.2.0/24")]


def test_node_changes_nothing_without_a_peer_for_the_gateway():
    state, _ = node_rounds(core.start_node(NODE)[0], 2, (A, B))
    _, actions = node_rounds(state, 1, (A, B), allowed=[("keyB", (f"{B}/32",))], routed=frozenset())
    assert not of(SetAllowedIps, actions) and not of(FallbackRoute, actions)


INTERNET6 = Node(gateways=(), ranges=(), internet6=True)
WITH_DEFAULT = [("keyA", (f"{A}/32", "0.0.0.0/0", "::/0", "2001:db8:4430::1/128"))]


@pytest.mark.parametrize("allowed, default6, wanted", [
    (WITH_DEFAULT, False, True),
    (WITH_DEFAULT, True, False),
    ([("keyA", (f"{A}/32", "0.0.0.0/0"))], False, False),
])
def test_an_internet_client_keeps_ipv6s_default_in_the_mesh_while_a_peer_holds_it(allowed, default6, wanted):
    """netclient routes an internet gateway's default in IPv4 alone: the node adds IPv6's
    once a peer holds ::/0, and not again while it is there."""
    state, _ = core.start_node(INTERNET6)
    state, actions = core.decide_node(INTERNET6, PROBE, state, core.NodeSeen({}, allowed, frozenset(), default6))
    assert (core.DefaultRoute6() in actions) is wanted
    assert state.active == "" and not of(SetAllowedIps, actions)
    _, plain = core.decide_node(NODE, PROBE, core.start_node(NODE)[0], core.NodeSeen({}, allowed, frozenset(), False))
    assert core.DefaultRoute6() not in plain, "a node without internet6 leaves IPv6's default alone"
