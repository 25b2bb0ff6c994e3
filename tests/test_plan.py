"""The deployment plan: what it decides once for every consumer (join order, sessions,
gateways, hosts), and that planning problems come with the model's, all at once."""

from __future__ import annotations

import copy

import pytest

from bgp4mesh.plan import build_plan
from bgp4mesh.problems import ConfigError
from bgp4mesh.stack import load_plan, plan_stack, raw_from_file, validate

LAB, _ = raw_from_file("lab")


def test_members_pinned_low_join_one_after_another_then_the_other_pins_then_the_rest():
    raw = copy.deepcopy(LAB)
    # node1 pinned high and listed before node3, pinned among the low (handed-out) addresses
    raw["mesh"]["nodes"] = [{"name": "node1", "ip": "44.30.127.10"}, {"name": "node2"}, {"name": "node3", "ip": "44.30.127.3"}]
    raw["lab"] = {**raw["lab"], "underlay": "172.31.16.0/24"}
    plan = build_plan(validate(raw))
    after = {m.member.name: m.member.join_after for m in (*plan.routers, *plan.nodes)}
    assert after == {
        "border-a": (),
        "border-b": ("border-a",),
        "node3": ("border-b",),
        "node1": ("node3",),
        "node2": ("border-a", "border-b", "node1", "node3"),
    }
    order = plan.join_order
    assert all(order.index(a) < order.index(m) for m, deps in after.items() for a in deps), order
    assert set(order) == set(after)


@pytest.mark.parametrize("parallel", [1, 3, 8])
def test_members_without_a_pin_join_at_most_join_parallel_at_a_time(parallel):
    raw = copy.deepcopy(LAB)
    raw["mesh"]["nodes"] = [{"name": "node1", "ip": "44.30.127.10"}] + [{"name": f"free{i}"} for i in range(10)]
    raw["mesh"]["join_parallel"] = parallel
    plan = build_plan(validate(raw))
    after = {m.member.name: m.member.join_after for m in (*plan.routers, *plan.nodes)}
    pinned = ("border-a", "border-b", "node1")
    free = [f"free{i}" for i in range(10)]
    for i, name in enumerate(free):
        assert after[name] == (pinned if i < parallel else (free[i - parallel],)), name
    # pinned members keep their order; the queue follows the config's order
    assert after["node1"] == ("border-b",) and after["border-b"] == ("border-a",)
    order = plan.join_order
    assert all(order.index(a) < order.index(m) for m, deps in after.items() for a in deps), order
    # simulate: a join runs once what it waits for is done; never more than `parallel` at once
    done: set[str] = set(pinned)
    while len(done) < len(after):
        running = [m for m in free if m not in done and set(after[m]) <= done]
        assert 0 < len(running) <= parallel
        done |= set(running)


@pytest.mark.parametrize("bad", [0, -1, 65, "many"])
def test_join_parallel_is_a_small_positive_count(bad):
    raw = copy.deepcopy(LAB)
    raw["mesh"]["join_parallel"] = bad
    with pytest.raises(ConfigError) as err:
        validate(raw)
    assert "mesh.join_parallel" in str(err.value)


def test_sessions_carry_their_bird_names_links_and_the_path_an_upstream_must_see():
    raw = copy.deepcopy(LAB)
    raw["border_routers"][1]["maintenance"] = True
    plan = build_plan(validate(raw))
    a, b = plan.routers
    # one session per family, on the same link, each between the family's two addresses
    assert [(s.version, s.protocol, s.peer, s.kind, s.link.upstream, str(s.neighbor), str(s.local_address)) for s in a.sessions] == [
        (4, "peer_isp_a", "peer_border_a", "mock", "isp-a", "172.30.16.1", "172.30.16.100"),
        (6, "peer6_isp_a", "peer6_border_a", "mock", "isp-a", "2001:db8:ac1e:10::1", "2001:db8:ac1e:10::100"),
    ]
    assert [s.as_path for s in a.sessions] == [(65000,)] * 2
    drain = validate(raw).policy.drain_prepend
    assert [s.version for s in b.sessions] == [4, 6]
    assert [s.as_path for s in b.sessions] == [(65000,) * (1 + 2 + drain)] * 2, "prepend 2 towards isp-b, and drained, in both families"
    assert [(p.router, p.protocol, str(p.address), p.version) for p in a.ibgp] == [
        ("border-b", "ibgp_border_b", "172.31.16.11", 4), ("border-b", "ibgp6_border_b", "2001:db8:ac1f:10::b", 6)]
    assert plan.gateways.egress == ("44.30.127.1", "44.30.127.2")
    assert plan.gateways.health == (("44.30.127.1", "172.31.16.10", "2001:db8:ac1f:10::a"), ("44.30.127.2", "172.31.16.11", "2001:db8:ac1f:10::b"))


def test_real_upstreams_have_no_mock_isp_and_hosts_get_their_openings():
    plan = load_plan("staging-ha")
    assert plan.isps == () and plan.probe is None and plan.underlay is None
    assert {s.kind for r in plan.routers for s in r.sessions} == {"real"}
    edge = plan.host("edge")
    assert ("tcp", 179, "203.0.113.11") in {(o.proto, o.port, o.source) for o in edge.openings}, "iBGP from border-b's host"
    assert plan.gateways.internet == "border-a"


def test_planning_problems_come_with_the_rules_problems_all_at_once():
    raw = copy.deepcopy(LAB)
    raw["lab"] = {**raw["lab"], "underlay": "172.31.16.0/30"}  # too small: planning finds it
    raw["upstreams"][1]["router"] = "nowhere"  # a rule across sections finds it
    with pytest.raises(ConfigError) as exc:
        plan_stack(raw)
    message = str(exc.value)
    assert "bgp4mesh:lab.underlay" in message and "too small" in message, message
    assert "bgp4mesh:upstreams[1].router" in message, message


def test_the_agents_get_the_gateway_order_and_nodes_fail_over_only_with_a_choice_to_make():
    lab = load_plan("lab")
    a = lab.routers[0].agent.router
    assert a.bgp_protocols == ("peer_isp_a",) and a.self_ip == "44.30.127.1"
    assert (a.mesh_range, a.mesh_range6) == ("44.30.127.0/24", "2001:db8:4430::/64")
    assert [(g.mesh, g.ibgp, g.ibgp6) for g in a.gateways] == [
        ("44.30.127.1", "172.31.16.10", "2001:db8:ac1f:10::a"), ("44.30.127.2", "172.31.16.11", "2001:db8:ac1f:10::b")]
    node = lab.nodes[0].agent.node
    assert node.gateways == ("44.30.127.1", "44.30.127.2")
    assert node.ranges == ("198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24", "2001:db8:5100::/48", "2001:db8:2030::/48", "2001:db8:1920::/48")
    dev = load_plan("dev")
    assert all(n.agent is None for n in dev.nodes), "one gateway: nothing to fail over to"
    assert dev.routers[0].agent.router.gateways == () and dev.routers[0].agent.node is None


def test_check_json_prints_the_whole_plan_with_secrets_masked(tmp_path):
    """`check --json`: every router's sessions and the members' join order, as JSON; a
    TCP-MD5 password given to the CLI is never printed."""
    import json
    import os
    import subprocess
    import sys

    import yaml

    from bgp4mesh.stack import PROJECT_DIR, stack_file

    doc = yaml.safe_load(stack_file("lab").read_text())
    doc["config"]["bgp4mesh:upstreams"][0]["password"] = {"secure": "AAAAAQ=="}
    (tmp_path / "Pulumi.lab.yaml").write_text(yaml.safe_dump(doc))
    secret = "Sw0rdfish-in-the-plan-json"
    env = {**os.environ, "BGP4MESH_SECRET_UPSTREAMS_0_PASSWORD": secret}
    argv = [sys.executable, "-m", "bgp4mesh", "check", "--stack", "lab", "--project-dir", str(tmp_path), "--json"]
    proc = subprocess.run(argv, cwd=PROJECT_DIR, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert secret not in proc.stdout + proc.stderr
    plan = json.loads(proc.stdout)
    assert [r["spec"]["name"] for r in plan["routers"]] == ["border-a", "border-b"]
    assert plan["routers"][0]["sessions"][0]["protocol"] == "peer_isp_a"
    assert plan["routers"][0]["sessions"][0]["upstream"]["password"] == "**********"
    assert plan["join_order"] == ["border-a", "border-b", "node1", "node2"]


def test_a_node_is_done_once_it_routes_into_the_mesh_and_every_gateway_knows_it():
    assert load_plan("lab").node_wants == (
        "route:198.51.100.0/24", "route:203.0.113.0/24", "route:192.0.2.0/24",
        "route:2001:db8:5100::/48", "route:2001:db8:2030::/48", "route:2001:db8:1920::/48",
        "gateway:44.30.127.1", "gateway:44.30.127.2")
    assert load_plan("staging").node_wants == ("internet", "gateway:44.30.127.1")
    # an internet gateway's clients peer with it alone (Netmaker reaches them through it)
    assert load_plan("staging-ha").node_wants == ("internet", "gateway:44.30.127.1")
    raw = copy.deepcopy(LAB)
    raw["mesh"] = {**raw["mesh"], "egress_ranges": []}
    assert build_plan(validate(raw)).node_wants == (), "no egress: no gateway to wait for"


DEV, _ = raw_from_file("dev")


def test_monitoring_scrapes_every_member_router_and_mock_isp_from_its_own_address():
    plan = build_plan(validate(copy.deepcopy(DEV)))
    mon = plan.monitoring
    assert str(mon.address) == "172.31.0.8" and {k: str(v) for k, v in mon.links.items()} == {"isp": "172.30.0.253"}
    targets = {(t.job, t.address, t.labels) for t in mon.targets}
    assert targets == {
        ("bird", "172.31.0.10:9324", (("router", "border"),)),
        ("member", "172.31.0.10:9586", (("member", "border"),)),
        ("member", "172.31.0.20:9586", (("member", "node1"),)),
        ("member", "172.31.0.21:9586", (("member", "node2"),)),
        ("bird", "172.30.0.1:9324", (("upstream", "isp"),)),
        ("control", "127.0.0.1:9587", ()),
    }
    assert mon.scrape_interval == 5 and mon.unscraped == ()


def test_without_monitoring_nothing_is_planned_or_opened():
    raw = copy.deepcopy(DEV)
    del raw["monitoring"], raw["looking_glass"]
    plan = build_plan(validate(raw))
    assert plan.monitoring is None and plan.underlay.monitoring is None
    assert all(link.monitor_address is None for link in plan.links)
    assert all(m.member.edge.services == () for m in (*plan.routers, *plan.nodes))


def test_members_serve_their_exporters_to_prometheus_alone_and_routers_the_looking_glass_to_its_allow_list():
    plan = build_plan(validate(copy.deepcopy(DEV)))
    served = lambda m: {(s.name, str(s.port), tuple(map(str, s.sources))) for s in m.member.edge.services}  # noqa: E731
    assert served(plan.router("border")) == {
        ("member exporter", "tcp/9586", ("172.31.0.8/32",)),
        ("bird exporter", "tcp/9324", ("172.31.0.8/32",)),
        ("looking glass", "tcp/8095", ("198.51.100.0/24",)),
    }
    assert served(plan.nodes[0]) == {("member exporter", "tcp/9586", ("172.31.0.8/32",))}


STAGING, _ = raw_from_file("staging")


def staging_with(monitoring: dict, **changes) -> dict:
    raw = copy.deepcopy(STAGING)
    return {**raw, "monitoring": monitoring, **changes}


def test_monitoring_on_real_hosts_scrapes_each_member_at_its_host_from_the_control_hosts_address():
    plan = plan_stack(staging_with({}))
    mon = plan.monitoring
    assert (mon.host, str(mon.address), mon.links) == ("control", "203.0.113.20", {})
    assert {(t.job, t.address, t.labels) for t in mon.targets} == {
        ("bird", "203.0.113.10:9324", (("router", "border"),)),
        ("member", "203.0.113.10:9586", (("member", "border"),)),
        ("member", "203.0.113.30:9586", (("member", "node-a"),)),
        ("control", "127.0.0.1:9587", ()),
    }
    assert mon.unscraped == ("node-b",)  # behind NAT: no address to scrape
    assert mon.host_network and mon.web == "127.0.0.1:9090" and mon.url == "http://127.0.0.1:9090"
    assert mon.broker == "tcp://127.0.0.1:1883"  # the broker's plain listener, on the control host's loopback
    served = {m.member.name: {(s.name, str(s.port), tuple(map(str, s.sources))) for s in m.member.edge.services} for m in (*plan.routers, *plan.nodes)}
    assert served["border"] == {("member exporter", "tcp/9586", ("203.0.113.20/32",)), ("bird exporter", "tcp/9324", ("203.0.113.20/32",))}
    assert served["node-a"] == served["node-b"] == {("member exporter", "tcp/9586", ("203.0.113.20/32",))}


def test_a_lab_serves_prometheus_on_its_networks_and_reads_the_clients_broker_listener():
    mon = build_plan(validate(copy.deepcopy(DEV))).monitoring
    assert not mon.host_network and mon.web == "0.0.0.0:9090" and mon.url == "http://172.31.0.8:9090"
    assert mon.broker == "tcp://broker.nm.lab:1883"


def test_two_members_on_one_host_would_share_the_exporter_ports_and_are_refused_with_their_keys():
    raw = staging_with({})
    raw["mesh"] = {**raw["mesh"], "nodes": [{**raw["mesh"]["nodes"][0]}, {"name": "node-c", "host": "node-a"}]}
    with pytest.raises(ConfigError) as exc:
        plan_stack(raw)
    assert "bgp4mesh:mesh.nodes[1].host = 'node-a': node-a (mesh.nodes[0]) already runs on this address: both exporters would listen on 203.0.113.30:9586" in str(exc.value)
    del raw["monitoring"]
    assert plan_stack(raw).monitoring is None  # without monitoring nothing listens there


def test_the_monitoring_address_is_taken_on_the_underlay():
    raw = copy.deepcopy(DEV)
    raw["rpki"]["caches"] = [{"address": "172.31.0.8"}]
    with pytest.raises(ConfigError, match="172.31.0.8: already the underlay address of monitoring"):
        plan_stack(raw)


def test_check_says_where_prometheus_scrapes_from_and_how_an_operator_reaches_it():
    from bgp4mesh.cli import plan_data, summary

    plan = plan_stack(staging_with({}))
    text = summary("staging", plan)
    assert "  monitoring on host control with its network, scraping from 203.0.113.20: 4 targets every 15s" in text, text
    assert "    Prometheus at http://127.0.0.1:9090 (ssh -L 9090:127.0.0.1:9090 to host control); the control-plane exporter reads the broker at tcp://127.0.0.1:1883" in text
    assert "    not scraped (no address Prometheus reaches): node-b" in text
    data = plan_data(plan)["monitoring"]
    assert (data["address"], data["host_network"], data["web"], data["broker"]) == ("203.0.113.20", True, "127.0.0.1:9090", "tcp://127.0.0.1:1883")
    lab = summary("dev", build_plan(validate(copy.deepcopy(DEV))))
    assert "monitoring on host local at 172.31.0.8:" in lab and "Prometheus at http://172.31.0.8:9090; the control-plane exporter reads the broker at tcp://broker.nm.lab:1883" in lab
