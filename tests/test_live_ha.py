"""Live tier, high availability through the real Pulumi engine: the `lab` stack (two mock ISPs
peering on an exchange, the probe beyond them, two border routers with one upstream each, iBGP
and BFD between them, both egress gateways) on subnets of its own, beside dev and daytwo.

`verify` passes with every session Established; each ISP receives exactly our prefix with its
prepends, never a route of the other ISP or one learned over iBGP; BFD is up. A killed router, a
cut upstream link and a router whose mesh is gone cost the probe's ping trains a short window and
recover without `pulumi up`; a drained router stops without losing a packet; destroy leaves
nothing. The lab is dual-stack: every one of those holds for IPv6 as for IPv4 (a train of each
family each way, IPv6 sessions and iBGP of their own). Loss windows are printed, never asserted
(bench/ha_failover.py measures them)."""

from __future__ import annotations

import subprocess
import time
from typing import Optional

import pytest

from bgp4mesh.birdc import Target, bfd_sessions, import_limit, protocols, routes
from bgp4mesh.config import FAILOVER_PORT
from bgp4mesh.naming import docker_name
from bgp4mesh.netmaker_api import BadRequest, NetmakerClient
from bgp4mesh.naming import bird_protocol, bird_symbol
from bgp4mesh.verify import mesh_ip
from bgp4mesh.verify import BORDER_HEALTH, EGRESS_FAILOVER, GSHUT, STATE_WITH_AGE, STALE_SECONDS, CheckFailed, build_checks, run_checks, state_file
from bgp4mesh.docker_cli import docker
from harness.engine import Stack
from tests.live import PingTrain, eventually, leftovers, server_secrets
from tests import plans
from tests.prometheus_api import all_up, firing, plan_targets, query, wait_for

STACK = "lab"
PROBE = "192.0.2.1"  # the probe's Internet test address (lab.probe.prefix)
PROBE6 = "2001:db8:1920::1"  # its IPv6 one (lab.probe.prefix6)
NODE, NODE_IP = "node1", "44.30.127.10"
OWN, OWN6 = "44.30.127.0/24", "2001:db8:4430::/48"
TRAIN = 400  # 20 s at 50 ms


def t(member: str) -> Target:
    return Target(docker_name(STACK, member))


def verify(stack: Stack, wait: float = 90) -> list[str]:
    cfg = stack.model()
    lines: list[str] = []
    assert run_checks(build_checks(plans.of(cfg), STACK), wait, lines.append) == 0, "\n".join(lines + diagnosis())
    return lines


def diagnosis() -> list[str]:
    """What a failed verify leaves to read: each gateway's listener and refusal on the
    failover port, and the agents' last words."""
    out = []
    for member in ("border-a", "border-b", "node1", "node2"):
        agent = BORDER_HEALTH if member.startswith("border") else EGRESS_FAILOVER
        shown = t(member).run("sh", "-c", f"({STATE_WITH_AGE}); echo listeners=$(ss -Htln 'sport = :{FAILOVER_PORT}' | wc -l)"
                              f" refusals=$(iptables -S INPUT | grep -c 'dport {FAILOVER_PORT} .*REJECT')", "state", agent)
        out.append(f"{member}: {' '.join(shown.stdout.split())}")
        out += [f"  {line}" for line in logs(member, "10m").splitlines() if line.startswith(("[border-health]", "[egress-failover]", "[netclient-entrypoint]", "entrypoint:"))][-12:]
    return out


def trains() -> dict[str, PingTrain]:
    """From the Internet to a node and from the node to the Internet, in both families."""
    node6 = mesh_ip(t(NODE), 6)
    return {
        "probe -> node": PingTrain(docker_name(STACK, "probe"), NODE_IP, TRAIN, source=PROBE),
        "node -> probe": PingTrain(docker_name(STACK, NODE), PROBE, TRAIN),
        "probe -> node IPv6": PingTrain(docker_name(STACK, "probe"), node6, TRAIN, source=PROBE6),
        "node -> probe IPv6": PingTrain(docker_name(STACK, NODE), PROBE6, TRAIN),
    }


def recovered(running: dict[str, PingTrain], what: str) -> None:
    """Every train ends answered: the last 40 requests (2 s) all came back."""
    for direction, train in running.items():
        result = train.result()
        tail = set(range(result.count - 39, result.count + 1))
        print(f"{what}, {direction}: {result}")
        assert tail <= result.answered, f"{what}, {direction}: no recovery ({result}; unanswered at the end: {sorted(tail - result.answered)})"


def isp_view(isp: str, router: str, version: int = 4) -> list[tuple[str, list[int], bool]]:
    return [(r.prefix, r.as_path, GSHUT in r.communities) for r in routes(t(isp), "protocol", bird_protocol(router, version))]


def both_views(isp: str, router: str) -> list[tuple[str, list[int], bool]]:
    """What the ISP holds from the router over its IPv4 and its IPv6 session."""
    return isp_view(isp, router) + isp_view(isp, router, 6)


def best_protocol(target: Target, prefix: str) -> str:
    return next(r.protocol for r in routes(target, prefix) if r.best)


def egress_via() -> str:
    return state_file(t(NODE), EGRESS_FAILOVER)["active"]


def logs(member: str, since: str) -> str:
    """A container's log, both streams (the agents beside BIRD log on stderr)."""
    proc = subprocess.run(["docker", "logs", "--since", since, docker_name(STACK, member)], capture_output=True, text=True, timeout=60)
    return proc.stdout + proc.stderr


def link_interface(router: str, address: str) -> str:
    out = t(router).run("ip", "-4", "-o", "addr", "show").stdout
    return next(line.split()[1] for line in out.splitlines() if f" {address}/" in line)


@pytest.fixture(scope="module")
def ha():
    stack = Stack(STACK)
    stack.destroy()  # whatever an earlier, interrupted session left
    assert not leftovers(STACK), f"objects of stack {STACK} exist outside Pulumi's state: {leftovers(STACK)}"
    started = time.monotonic()
    stack.up()
    verify(stack)
    print(f"lab: from empty to every verify check passing in {time.monotonic() - started:.0f}s")
    try:
        yield stack
    finally:
        stack.destroy()
        assert not leftovers(STACK), f"pulumi destroy left {leftovers(STACK)}"


def test_verify_passes_with_every_session_established(ha):
    lines = verify(ha)
    established = [line for line in lines if line.startswith("PASS bgp") and line.endswith(": Established")]
    assert len(established) == 12, lines  # per family: two eBGP sessions seen from both ends, iBGP both ways
    assert sum(line.startswith("PASS bfd") for line in lines) == 8, lines
    assert sum(line.startswith(("PASS ping inbound", "PASS ping6 inbound")) for line in lines) == 6, lines  # 2 ISPs + the probe, per family
    assert any(line.startswith("PASS paths probe") and "via isp-a" in line for line in lines), lines
    assert sum(line.startswith("PASS paths node") and "egress via border-a" in line for line in lines) == 2, lines


def test_each_isp_receives_exactly_our_prefix_with_its_prepends(ha):
    """Not vacuous: border-b holds isp-a's routes (learned over iBGP, they are its best) and
    the routes isp-b sends; isp-b still receives our prefix alone, prepended twice."""
    from_a = bird_symbol("ibgp", "border-a")
    eventually(lambda: {r.protocol for r in routes(t("border-b"), "198.51.100.0/24")} >= {from_a, bird_protocol("isp-b")}, wait=15)
    assert best_protocol(t("border-b"), "198.51.100.0/24") == from_a  # local-pref 200 beats 100
    assert both_views("isp-a", "border-a") == [(OWN, [65000], False), (OWN6, [65000], False)]
    assert both_views("isp-b", "border-b") == [(OWN, [65000, 65000, 65000], False), (OWN6, [65000, 65000, 65000], False)]
    # the Internet prefers the unprepended path, isp-b included, in both families
    assert best_protocol(t("isp-b"), OWN) == bird_protocol("isp-a")
    assert best_protocol(t("probe"), OWN) == bird_protocol("isp-a")
    assert best_protocol(t("isp-b"), OWN6) == bird_protocol("isp-a", 6)
    assert best_protocol(t("probe"), OWN6) == bird_protocol("isp-a", 6)


def test_each_session_takes_its_upstreams_policy(ha):
    """Import limit, limit action and local preference per upstream, as BIRD runs them (the
    two upstreams differ in limit and preference)."""
    cfg = ha.model()
    for up in cfg.upstreams:
        router = t(cfg.router_of(up).name)
        limit, action, imported = import_limit(router, bird_protocol(up.name))
        assert (limit, action) == (up.max_prefixes, up.limit_action), up.name
        assert 0 < imported <= up.max_prefixes, (up.name, imported)
        learned = routes(router, "protocol", bird_protocol(up.name))
        assert learned and {r.local_pref for r in learned} == {up.local_pref}, (up.name, learned)


def test_bfd_is_up_on_every_session(ha):
    assert bfd_sessions(t("border-a")) == {"172.30.16.1": "Up", "172.31.16.11": "Up", "2001:db8:ac1e:10::1": "Up", "2001:db8:ac1f:10::b": "Up"}
    assert bfd_sessions(t("border-b")) == {"172.30.17.1": "Up", "172.31.16.10": "Up", "2001:db8:ac1e:11::1": "Up", "2001:db8:ac1f:10::a": "Up"}
    assert bfd_sessions(t("isp-a")) == {"172.30.16.100": "Up", "2001:db8:ac1e:10::100": "Up"}


def test_netmaker_ce_takes_one_routing_node_per_egress(ha):
    """Why bgp4mesh declares an egress per router and fails over by itself."""
    key = server_secrets(STACK)["masterkey"]
    out = ha.outputs()
    with NetmakerClient(out["netmaker_api"], key, out["netmaker_ca_certificate"]) as api:
        hosts = {h["id"]: h["name"] for h in api.list_hosts()}
        routers = [n["id"] for n in api.list_nodes("bgp4mesh") if hosts.get(n["hostid"]) in ("border-a", "border-b")]
        with pytest.raises(BadRequest, match="can only set one routing node on CE"):
            api.create_egress("bgp4mesh", "two-gateways", "100.64.0.0/24", nat=False, nodes={n: 256 for n in routers})
        by_range: dict[str, list[int]] = {}
        for e in api.list_egress("bgp4mesh"):
            by_range.setdefault(e["range"], []).extend(int(m) for m in e["nodes"].values())
    ranges = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8:5100::/48", "2001:db8:2030::/48", "2001:db8:1920::/48")
    assert {r: sorted(m) for r, m in by_range.items()} == {r: [256, 257] for r in ranges}


def test_inbound_through_the_standby_router(ha):
    """A node's WireGuard takes a packet only from the peer that holds its source's range:
    border-b hands what it receives for the mesh to the active gateway, border-a."""
    isp_b, node6 = t("isp-b"), mesh_ip(t(NODE), 6)
    peers = [bird_protocol(p, v) for p in ("isp-a", "probe") for v in (4, 6)]
    for peer in peers:
        isp_b.birdc("disable", peer)
    try:
        eventually(lambda: best_protocol(isp_b, OWN) == bird_protocol("border-b"), wait=15)
        eventually(lambda: best_protocol(isp_b, OWN6) == bird_protocol("border-b", 6), wait=15)
        assert isp_b.run("ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", "203.0.113.1", NODE_IP).returncode == 0
        assert isp_b.run("ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", "2001:db8:2030::1", node6).returncode == 0
        assert egress_via() == "44.30.127.1"
    finally:
        for peer in peers:
            isp_b.birdc("enable", peer)
    verify(ha)


def test_killed_router_traffic_recovers_and_returns(ha):
    running = trains()
    time.sleep(3)
    docker("kill", docker_name(STACK, "border-a"))
    recovered(running, "border-a killed")
    assert egress_via() == "44.30.127.2"
    assert best_protocol(t("probe"), OWN) == bird_protocol("isp-b") and best_protocol(t("probe"), OWN6) == bird_protocol("isp-b", 6)
    # back without `pulumi up`: sessions, mesh, egress and the preferred path
    running = trains()
    time.sleep(3)
    docker("start", docker_name(STACK, "border-a"))
    recovered(running, "border-a back")
    verify(ha)
    assert egress_via() == "44.30.127.1" and best_protocol(t("probe"), OWN) == bird_protocol("isp-a")
    assert best_protocol(t("probe"), OWN6) == bird_protocol("isp-a", 6)


def test_cut_upstream_link_moves_traffic_to_the_other_router(ha):
    interface = link_interface("border-a", "172.30.16.100")
    running = trains()
    time.sleep(3)
    t("border-a").run("ip", "link", "set", interface, "down")
    try:
        recovered(running, "isp-a link cut (both families)")
        health = state_file(t("border-a"), BORDER_HEALTH)
        assert (health["upstream"], health["available"], health["active"]) == ("0", "0", "44.30.127.2")
        assert egress_via() == "44.30.127.2"
        assert both_views("isp-a", "border-a") == []
    finally:
        t("border-a").run("ip", "link", "set", interface, "up")
    verify(ha)


def test_router_without_mesh_deprefers_its_announcement(ha):
    """netclient's tunnels at border-a carry nothing (its WireGuard port dropped: the
    interface stays up) while BIRD runs on: the announcement goes drained, not away."""
    wireguard = [["INPUT", "-p", "udp", "--dport", "51821", "-j", "DROP"], ["OUTPUT", "-p", "udp", "--sport", "51821", "-j", "DROP"]]
    running = trains()
    time.sleep(3)
    for rule in wireguard:
        t("border-a").run("iptables", "-I", *rule)
    try:
        recovered(running, "border-a mesh lost")
        assert both_views("isp-a", "border-a") == [(OWN, [65000] * 4, True), (OWN6, [65000] * 4, True)]  # 65535:0 and 3 prepends
        assert protocols(t("isp-a"))[bird_protocol("border-a")].info.startswith("Established")
        assert best_protocol(t("isp-a"), OWN) == bird_protocol("isp-b")
        assert state_file(t("border-a"), BORDER_HEALTH)["mesh"] == "0"
    finally:
        for rule in wireguard:
            t("border-a").run("iptables", "-D", *rule)
    eventually(lambda: both_views("isp-a", "border-a") == [(OWN, [65000], False), (OWN6, [65000], False)], wait=30, what="normal announcement back")
    verify(ha)


def test_router_reaches_the_mesh_range_only_through_the_mesh(ha):
    """With border-a's mesh interface down, no other way to the mesh range is found (over
    table 44 to border-b, or out through isp-a and back in at border-b), so border-health
    keeps seeing no mesh: the other gateway answering over such a path once made a restarted
    router take inbound traffic seconds before its tunnels worked."""
    router = t("border-a")
    router.run("ip", "link", "set", "netmaker", "down")
    try:
        eventually(lambda: state_file(router, BORDER_HEALTH)["active"] == "44.30.127.2", wait=10, what="border-a hands over")
        route = router.run("ip", "route", "get", "44.30.127.2")
        assert route.returncode != 0 and "No route to host" in route.stderr, route
        for _ in range(10):  # border-health's rounds: a probe answered any other way would bring it back
            assert state_file(router, BORDER_HEALTH)["mesh"] == "0"
            time.sleep(0.3)
    finally:
        router.run("ip", "link", "set", "netmaker", "up")
    verify(ha)


REFUSAL = ["INPUT", "-i", "netmaker", "-p", "tcp", "--dport", str(FAILOVER_PORT), "-j", "REJECT", "--reject-with", "tcp-reset"]
"""border-health's refusal of the nodes' probes (images/border/border-health, set_refused)."""


def test_refusal_left_behind_is_removed(ha):
    """A refusal iptables still holds while border-a can serve (a delete that failed, say)
    keeps every node off border-a while border-a takes inbound traffic for them: border-health
    checks its refusal against iptables every few seconds and takes it away."""
    router = t("border-a")
    assert router.run("iptables", "-C", *REFUSAL).returncode == 1  # serving: no refusal
    router.run("iptables", "-I", *REFUSAL)
    eventually(lambda: router.run("iptables", "-C", *REFUSAL).returncode == 1, wait=15, what="the stale refusal removed")
    assert "iptables did not match available=1: removed 1 refusal rule(s)" in logs("border-a", "30s")
    verify(ha)


def test_router_whose_netclient_port_closes_hands_over_and_restarts_netclient(ha):
    """netclient's port can close while its daemon runs on, and then every node's probe of
    border-a fails whatever border-a says. border-health probes the port itself: border-a
    stops serving (refuses the nodes, hands inbound to border-b) and, the port still closed
    after 15 s, restarts the netclient daemon. Injected by refusing the port to border-a's
    own probe (on lo), which the nodes' probes do not cross."""
    router = t("border-a")
    closed = ["INPUT", "-i", "lo", "-p", "tcp", "--dport", str(FAILOVER_PORT), "-j", "REJECT", "--reject-with", "tcp-reset"]
    daemon = router.run("cat", "/run/bgp4mesh-netclient-daemon.pid").stdout.strip()
    router.run("iptables", "-I", *closed)
    try:
        eventually(lambda: egress_via() == "44.30.127.2", wait=10, what="egress moved to border-b")
        health = state_file(router, BORDER_HEALTH)
        assert (health["port"], health["available"], health["active"]) == ("0", "0", "44.30.127.2"), health
        assert router.run("iptables", "-C", *REFUSAL).returncode == 0
        assert t("probe").run("ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", PROBE, NODE_IP).returncode == 0
        eventually(lambda: router.run("cat", "/run/bgp4mesh-netclient-daemon.pid").stdout.strip() not in ("", daemon), wait=30, what="netclient daemon restarted")
        assert "restarted the netclient daemon" in logs("border-a", "60s")
    finally:
        router.run("iptables", "-D", *closed)
    verify(ha)
    assert egress_via() == "44.30.127.1"


AGENT_PID = 'for p in /proc/[0-9]*; do [ "$(tr "\\0" " " < $p/cmdline 2>/dev/null)" = "/usr/bin/python3 /usr/local/bin/$1 run " ] && echo ${p#/proc/}; done | sort -n | head -1'
"""An agent's process (the image has no pgrep)."""


def test_verify_does_not_believe_a_hung_agent(ha):
    """border-health frozen (SIGSTOP): its last state still says border-a serves, and verify
    must say the state is stale rather than pass on it."""
    router = t("border-a")
    pid = router.run("sh", "-c", AGENT_PID, "pid", "bgp4mesh-agent").stdout.strip()
    assert pid and router.run("sh", "-c", f"kill -STOP {pid}").returncode == 0  # the shell's kill: the image has no procps
    try:
        time.sleep(STALE_SECONDS + 2)
        assert state_file(router, BORDER_HEALTH)["available"] == "1"  # what a stale state says
        check = next(c for c in build_checks(plans.of(ha.model()), STACK) if c.name.startswith("paths border-a"))
        with pytest.raises(CheckFailed, match="hangs or is gone"):
            check.run()
    finally:
        router.run("sh", "-c", f"kill -CONT {pid}")
    verify(ha)


# ---- the drain in the metrics (monitoring) --------------------------------------------------


def agent_field(member: str, field: str) -> Optional[float]:
    result = query(STACK, f'bgp4mesh_agent_state{{member="{member}",field="{field}"}}')
    return float(result[0]["value"][1]) if result else None


def test_every_target_is_scraped_and_the_routers_serve_normally_in_their_metrics(ha):
    wait_for(lambda: all_up(STACK, plan_targets(ha.model())), wait=120, what="every HA target up")
    for router in ("border-a", "border-b"):
        assert (agent_field(router, "maintenance"), agent_field(router, "announce")) == (0.0, 1.0), router


def drain_in_metrics() -> float:
    """border-a drained: its member exporter shows the agent in maintenance, announcing
    drained; border-b's stays normal; no session alert, and isp-a still imports the own
    prefix (prometheus-bird-exporter publishes counts, not communities: the ISP's view
    with the graceful-shutdown community is checked with birdc). Seconds it took."""
    took = wait_for(lambda: (agent_field("border-a", "maintenance"), agent_field("border-a", "announce")) == (1.0, 0.0),
                    wait=60, what="border-a in maintenance, announcing drained, in its metrics")
    assert (agent_field("border-b", "maintenance"), agent_field("border-b", "announce")) == (0.0, 1.0)
    assert not firing(STACK, "BgpSessionDown") and not firing(STACK, "OwnPrefixNotSeenUpstream")
    seen = query(STACK, 'bird_protocol_prefix_import_count{upstream="isp-a",name="peer_border_a"}')
    assert [float(r["value"][1]) for r in seen] == [1.0], seen
    return took


def test_drained_router_stops_without_losing_a_packet(ha):
    ha.config["bgp4mesh:border_routers"][0]["maintenance"] = True
    running = trains()
    ha.up()
    print("drain applied by pulumi up: " + ", ".join(f"{d} {train.result()}" for d, train in running.items()))
    eventually(lambda: egress_via() == "44.30.127.2", wait=10, what="egress moved to border-b")
    print(f"drain: in border-a's metrics {drain_in_metrics():.1f}s after pulumi up returned")
    assert both_views("isp-a", "border-a") == [(OWN, [65000] * 4, True), (OWN6, [65000] * 4, True)]
    assert best_protocol(t("probe"), OWN) == bird_protocol("isp-b") and best_protocol(t("probe"), OWN6) == bird_protocol("isp-b", 6)
    running = trains()
    time.sleep(3)
    docker("stop", docker_name(STACK, "border-a"))
    for what, train in running.items():
        result = train.result()
        print(f"drained border-a stopped, {what}: {result}")
        assert result.lost == 0, f"{what}: {result}"
    docker("start", docker_name(STACK, "border-a"))
    eventually(lambda: state_file(t("border-a"), BORDER_HEALTH)["mesh"] == "1", wait=60, what="border-a back on the mesh")
    assert state_file(t("border-a"), BORDER_HEALTH)["announce"] == "drained"  # still in maintenance
    verify(ha)  # with the switch on: drained, and egress via border-b
    ha.config["bgp4mesh:border_routers"][0]["maintenance"] = False
    ha.up()
    verify(ha)
    assert egress_via() == "44.30.127.1"


def test_destroy_leaves_nothing(ha):
    ha.destroy()
    assert not leftovers(STACK)
    assert ha.outputs() == {}
