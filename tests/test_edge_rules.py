"""The edge firewall without a lab: `inbound` in the model (every bad form named by its
key path), the plan each member gets, and what the rendered iptables rules do to packets.
The rules are walked here by a small evaluator of exactly the matches the renderer writes,
so each case says which packet is dropped by which counter and which goes on."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from bgp4mesh.config import StackConfig
from bgp4mesh.scalars import PortRange
from bgp4mesh.edge_rules import edge_plan, render_edge_rules, uplink_token
from bgp4mesh.rules import cross_section_problems
from bgp4mesh.stack import problems_of

ROOT = Path(__file__).resolve().parent.parent


def stack_raw(name: str) -> dict:
    data = yaml.safe_load((ROOT / f"Pulumi.{name}.yaml").read_text())["config"]
    return {k.removeprefix("bgp4mesh:"): v for k, v in data.items()}


def config(name: str = "dev", **node1) -> StackConfig:
    raw = stack_raw(name)
    raw["mesh"]["nodes"][0].update(node1)
    return StackConfig.model_validate(raw)


def problems(raw: dict) -> list[tuple[str, str]]:
    try:
        model = StackConfig.model_validate(raw)
    except ValidationError as exc:
        return [(p.key, p.rule) for p in problems_of(exc)]
    found = cross_section_problems(model)
    assert found, "the config was accepted"
    return [(p.key, p.rule) for p in found]


# ---- the model -----------------------------------------------------------------------


def test_inbound_forms_parse_to_port_ranges():
    cfg = config(inbound=["tcp/8080", "udp/53", "tcp/8000-8010", " udp/60000-60100 "])
    assert cfg.mesh.nodes[0].inbound == [
        PortRange("tcp", 8080, 8080), PortRange("udp", 53, 53), PortRange("tcp", 8000, 8010), PortRange("udp", 60000, 60100)]
    assert [str(r) for r in cfg.mesh.nodes[0].inbound] == ["tcp/8080", "udp/53", "tcp/8000-8010", "udp/60000-60100"]
    assert config().border_routers[0].inbound == []


@pytest.mark.parametrize("bad", [8080, "8080", "icmp/8", "tcp/0", "tcp/65536", "tcp/10-9", "tcp/80,443", "TCP/80", "tcp/", True, "tcp/١٢"])
def test_bad_inbound_is_named_by_key_path(bad):
    raw = stack_raw("dev")
    raw["mesh"]["nodes"][0]["inbound"] = ["tcp/22", bad]
    found = problems(raw)
    assert [k for k, _ in found] == ["mesh.nodes[0].inbound[1]"], found


def test_inbound_needs_a_pinned_address_and_no_overlap():
    raw = stack_raw("dev")
    raw["mesh"]["nodes"][1]["inbound"] = ["tcp/22"]  # node2 has no pinned ip
    raw["mesh"]["nodes"][0]["inbound"] = ["tcp/8000-8010", "udp/8005", "tcp/8005"]
    raw["border_routers"][0]["inbound"] = ["tcp/179"]
    raw["border_routers"][0].pop("mesh_ip")
    found = dict(problems(raw))
    assert set(found) == {"mesh.nodes[1].ip", "mesh.nodes[0].inbound[2]", "border_routers[0].mesh_ip"}, found
    assert "overlaps tcp/8000-8010" in found["mesh.nodes[0].inbound[2]"]


# ---- an evaluator of the rendered rules ----------------------------------------------


@dataclass
class Packet:
    src: str
    dst: str
    iif: str = ""
    oif: str = ""
    proto: str = "tcp"
    dport: int = 0
    icmp_type: int = -1
    state: str = "NEW"


def _iface(want: str, have: str) -> bool:
    return have.startswith(want[:-1]) if want.endswith("+") else want == have


def _matches(args: list[str], p: Packet) -> bool:
    """Each match the renderer writes, and only those (anything else fails the test)."""
    i = 0
    while i < len(args):
        neg = args[i] == "!"
        i += neg
        opt, val = args[i], args[i + 1] if i + 1 < len(args) else ""
        if opt in ("-s", "-d"):
            ok = ip_address(p.src if opt == "-s" else p.dst) in ip_network(val)
        elif opt in ("-i", "-o"):
            ok = _iface(val, p.iif if opt == "-i" else p.oif)
        elif opt == "-p":
            ok = p.proto == val
        elif opt == "-m":
            ok, i = True, i + 2
            continue
        elif opt == "--dport":
            first, _, last = val.partition(":")
            ok = int(first) <= p.dport <= int(last or first)
        elif opt == "--icmp-type":
            ok = p.icmp_type == int(val)
        elif opt == "--ctstate":
            ok = p.state in val.split(",")
        elif opt == "--comment":
            ok = True
        else:
            raise AssertionError(f"the evaluator does not know {opt}")
        if ok == neg:
            return False
        i += 2
    return True


def verdict(rules: str, chain: str, p: Packet) -> str:
    """DROP (with the counter's comment) or RETURN, walking jumps as iptables does."""
    for line in rules.splitlines():
        if not line.startswith(f"-A {chain} "):
            continue
        args = shlex.split(line)[2:]
        target = args[args.index("-j") + 1]
        match = args[: args.index("-j")] + args[args.index("-j") + 2:]
        if not _matches(match, p):
            continue
        if target == "DROP":
            return "DROP " + args[args.index("--comment") + 1]
        if target == "RETURN":
            return "RETURN"
        inner = verdict(rules, target, p)
        if inner != "RETURN":
            return inner
    return "RETURN"


UPLINK = "eth1"


def rules_of(cfg: StackConfig, member: str) -> str:
    spec = next(m for m in [*cfg.border_routers, *cfg.mesh.nodes] if m.name == member)
    text = render_edge_rules(edge_plan(cfg, spec))
    for up in cfg.upstreams:
        text = text.replace(uplink_token(up.local_address), UPLINK)
    return text


def from_isp(src: str, dst: str, **kw) -> Packet:
    return Packet(src, dst, iif=UPLINK, **kw)


# ---- what the rules do -------------------------------------------------------------


def test_a_node_drops_what_it_did_not_open_from_outside_the_mesh_only():
    rules = rules_of(config(inbound=["tcp/8080"]), "node1")
    at = lambda **kw: verdict(rules, "BGP4MESH-INPUT", Packet(**kw))  # noqa: E731
    assert at(src="198.51.100.1", dst="44.30.127.10", iif="netmaker", dport=8080) == "RETURN"
    assert at(src="198.51.100.1", dst="44.30.127.10", iif="netmaker", dport=22) == "DROP bgp4mesh: closed"
    assert at(src="198.51.100.1", dst="44.30.127.10", iif="netmaker", proto="udp", dport=8080) == "DROP bgp4mesh: closed"
    assert at(src="198.51.100.1", dst="44.30.127.10", iif="netmaker", proto="icmp", icmp_type=8) == "RETURN"
    assert at(src="198.51.100.1", dst="44.30.127.10", iif="netmaker", dport=40000, state="ESTABLISHED") == "RETURN"
    # the mesh's own: member to member, the HA agents' probes of netclient's port
    assert at(src="44.30.127.1", dst="44.30.127.10", iif="netmaker", dport=51821) == "RETURN"
    assert at(src="44.30.127.11", dst="44.30.127.10", iif="netmaker", dport=22) == "RETURN"
    # WireGuard and the control plane arrive on the underlay, to the underlay address
    assert at(src="172.31.0.20", dst="172.31.0.30", iif="eth0", proto="udp", dport=51821) == "RETURN"


def test_the_border_drops_spoofed_sources_from_the_upstream_by_class():
    rules = rules_of(config(), "border")
    for chain in ("BGP4MESH-FORWARD", "BGP4MESH-INPUT"):
        at = lambda src: verdict(rules, chain, from_isp(src, "44.30.127.10", oif="netmaker", proto="icmp", icmp_type=8))  # noqa: E731
        assert at("44.30.127.2") == "DROP bgp4mesh: own source in"
        assert at("10.1.2.3") == "DROP bgp4mesh: bogon source in"
        assert at("192.168.1.1") == "DROP bgp4mesh: bogon source in"
        assert at("240.0.0.1") == "DROP bgp4mesh: bogon source in"
        # the lab's exemptions: the probe and the ISP's test addresses; the neighbor on its link
        for allowed in ("192.0.2.1", "198.51.100.1", "203.0.113.1", "172.30.0.1", "8.8.8.8"):
            assert at(allowed) == "RETURN", allowed


def test_without_exemptions_test_nets_are_bogons_but_the_link_is_not():
    cfg = config("staging")
    rules = rules_of(cfg, "border")
    at = lambda src: verdict(rules, "BGP4MESH-FORWARD", from_isp(src, "44.30.127.10", oif="netmaker", proto="icmp", icmp_type=8))  # noqa: E731
    assert at("203.0.113.7") == "DROP bgp4mesh: bogon source in"  # TEST-NET-3 is not exempt in staging
    assert at("198.51.100.1") == "RETURN"  # staging exempts the ISP's test net
    assert at("192.0.2.9") == "RETURN"  # the neighbor: the link 192.0.2.8/29 is TEST-NET-1
    assert at("192.0.2.100") == "DROP bgp4mesh: bogon source in"


def test_the_border_sends_only_own_and_link_sources_upstream():
    rules = rules_of(config(), "border")
    out = lambda src, chain="BGP4MESH-OUTPUT": verdict(rules, chain, Packet(src, "198.51.100.1", oif=UPLINK, proto="icmp", icmp_type=8))  # noqa: E731
    assert out("172.30.0.100") == "RETURN"  # its link address: BGP, pings
    assert out("44.30.127.1") == "RETURN"
    assert out("10.9.9.9") == "DROP bgp4mesh: spoofed source out"
    assert out("172.31.0.10") == "DROP bgp4mesh: spoofed source out"  # its underlay address
    fwd = lambda src: verdict(rules, "BGP4MESH-FORWARD", Packet(src, "198.51.100.1", iif="netmaker", oif=UPLINK, dport=443))  # noqa: E731
    assert fwd("44.30.127.10") == "RETURN"
    assert fwd("172.31.0.30") == "DROP bgp4mesh: spoofed source out"
    # elsewhere (the underlay, a Docker bridge on a real host) the router's own traffic is not ours
    assert verdict(rules, "BGP4MESH-OUTPUT", Packet("10.9.9.9", "172.31.0.2", oif="eth0")) == "RETURN"


def test_the_forward_path_into_the_mesh_opens_each_members_listed_ports_only():
    rules = rules_of(config(inbound=["tcp/8080", "udp/5000-5010"]), "border")
    into = lambda dst, **kw: verdict(rules, "BGP4MESH-FORWARD", from_isp("198.51.100.1", dst, oif="netmaker", **kw))  # noqa: E731
    assert into("44.30.127.10", dport=8080) == "RETURN"
    assert into("44.30.127.10", proto="udp", dport=5005) == "RETURN"
    assert into("44.30.127.10", dport=8081) == "DROP bgp4mesh: closed"
    assert into("44.30.127.11", dport=8080) == "DROP bgp4mesh: closed"  # another member: not opened there
    assert into("44.30.127.11", proto="icmp", icmp_type=8) == "RETURN"
    assert into("44.30.127.11", dport=40000, state="ESTABLISHED") == "RETURN"
    # relayed member to member, and the way out of the mesh
    assert verdict(rules, "BGP4MESH-FORWARD", Packet("44.30.127.10", "44.30.127.11", iif="netmaker", oif="netmaker", dport=22)) == "RETURN"
    # anything else touching the uplink is no edge flow: transit through the underlay
    assert verdict(rules, "BGP4MESH-FORWARD", from_isp("198.51.100.1", "172.31.0.30", oif="eth0")) == "DROP bgp4mesh: not an edge flow"


def test_the_border_keeps_its_own_mesh_address_closed_and_bgp_open():
    rules = rules_of(config(), "border")
    at = lambda **kw: verdict(rules, "BGP4MESH-INPUT", from_isp("198.51.100.1", **kw))  # noqa: E731
    assert at(dst="44.30.127.1", dport=22) == "DROP bgp4mesh: closed"
    assert at(dst="44.30.127.1", proto="icmp", icmp_type=8) == "RETURN"
    assert verdict(rules, "BGP4MESH-INPUT", from_isp("172.30.0.1", "172.30.0.100", dport=179)) == "RETURN"
    assert verdict(rules, "BGP4MESH-INPUT", Packet("44.30.127.10", "44.30.127.1", iif="netmaker", dport=51821)) == "RETURN"


def test_ha_routers_forward_to_the_active_gateway_and_open_each_others_ports():
    raw = stack_raw("lab")
    raw["border_routers"][1]["inbound"] = ["tcp/443"]
    cfg = StackConfig.model_validate(raw)
    rules = rules_of(cfg, "border-a")
    # border-b's inbound, delivered by border-a into the mesh
    assert verdict(rules, "BGP4MESH-FORWARD", from_isp("192.0.2.1", "44.30.127.2", oif="netmaker", dport=443)) == "RETURN"
    # border-b hands inbound for the mesh to border-a over the underlay (table 44): border-a filters it
    rules_b = rules_of(cfg, "border-b")
    assert verdict(rules_b, "BGP4MESH-FORWARD", from_isp("192.0.2.1", "44.30.127.10", oif="eth0", dport=22)) == "RETURN"
    assert verdict(rules, "BGP4MESH-FORWARD", Packet("192.0.2.1", "44.30.127.10", iif="eth0", oif="netmaker", dport=22)) == "DROP bgp4mesh: closed"


def test_rendering_is_plain_data_and_the_bogon_switch_is_honoured():
    cfg = config()
    node = render_edge_rules(edge_plan(cfg, cfg.mesh.nodes[0]))
    assert ":BGP4MESH-INPUT - [0:0]" in node and "FORWARD" not in node and "@uplink" not in node
    border = render_edge_rules(edge_plan(cfg, cfg.border_routers[0]))
    assert border.count(uplink_token(cfg.upstreams[0].local_address)) == 6
    assert render_edge_rules(edge_plan(cfg, cfg.border_routers[0])) == border
    raw = stack_raw("dev")
    raw["policy"] = {"bogon_filter": False, "timers": raw["policy"]["timers"]}
    raw["upstreams"][0]["asn"] = 65001
    off = StackConfig.model_validate(raw)
    assert "bogon source in" not in render_edge_rules(edge_plan(off, off.border_routers[0]))


def test_the_dev_stack_opens_node1s_listener_port():
    cfg = config()
    assert [str(r) for r in cfg.mesh.nodes[0].inbound] == ["tcp/8080"]
    assert "-A BGP4MESH-OPEN -d 44.30.127.10/32 -p tcp -m tcp --dport 8080 -j RETURN" in render_edge_rules(edge_plan(cfg, cfg.border_routers[0]))


def test_exporters_answer_prometheus_alone_and_the_looking_glass_its_allow_list_only():
    from bgp4mesh.plan import build_plan

    plan = build_plan(config())
    border = render_edge_rules(plan.router("border").member.edge).replace(uplink_token(plan.router("border").sessions[0].upstream.local_address), UPLINK)
    node = render_edge_rules(plan.nodes[0].member.edge)
    at = lambda rules, **kw: verdict(rules, "BGP4MESH-INPUT", Packet(**kw))  # noqa: E731
    for rules, own in ((border, "172.31.0.10"), (node, "172.31.0.20")):
        assert at(rules, src="172.31.0.8", dst=own, iif="eth0", dport=9586) == "RETURN"
        # another container on the underlay, or a mesh member, is not Prometheus
        assert at(rules, src="172.31.0.21", dst=own, iif="eth0", dport=9586) == "DROP bgp4mesh: member exporter closed"
        assert at(rules, src="44.30.127.2", dst=own, iif="netmaker", dport=9586) == "DROP bgp4mesh: member exporter closed"
    assert at(border, src="172.31.0.8", dst="172.31.0.10", iif="eth0", dport=9324) == "RETURN"
    assert at(border, src="172.31.0.21", dst="172.31.0.10", iif="eth0", dport=9324) == "DROP bgp4mesh: bird exporter closed"
    assert at(node, src="172.31.0.21", dst="172.31.0.20", iif="eth0", dport=9324) == "RETURN"  # nodes run no BIRD: nothing to close
    assert at(border, src="198.51.100.1", dst="172.30.0.100", iif=UPLINK, dport=8095) == "RETURN"
    assert at(border, src="203.0.113.1", dst="172.30.0.100", iif=UPLINK, dport=8095) == "DROP bgp4mesh: looking glass closed"
    assert at(border, src="44.30.127.10", dst="44.30.127.1", iif="netmaker", dport=8095) == "DROP bgp4mesh: looking glass closed"


def test_on_real_hosts_the_exporters_answer_the_monitoring_hosts_address_alone():
    from bgp4mesh.stack import plan_stack

    plan = plan_stack({**stack_raw("staging"), "monitoring": {}})
    border = render_edge_rules(plan.router("border").member.edge).replace(uplink_token(plan.router("border").sessions[0].upstream.local_address), UPLINK)
    node = render_edge_rules(plan.nodes[0].member.edge)
    at = lambda rules, **kw: verdict(rules, "BGP4MESH-INPUT", Packet(**kw))  # noqa: E731
    for rules, own, ports in ((border, "203.0.113.10", (9586, 9324)), (node, "203.0.113.30", (9586,))):
        for port in ports:
            assert at(rules, src="203.0.113.20", dst=own, iif="eth0", dport=port) == "RETURN"  # the control host, where Prometheus runs
            # the Internet, another member's host, a mesh member: not Prometheus
            for src, iif in (("198.51.100.1", "eth0"), ("203.0.113.30", "eth0"), ("44.30.127.10", "netmaker")):
                assert at(rules, src=src, dst=own, iif=iif, dport=port).startswith("DROP bgp4mesh:"), (own, port, src)
    assert at(border, src="198.51.100.1", dst="203.0.113.10", iif=UPLINK, dport=9324) == "DROP bgp4mesh: bird exporter closed"
