"""The edge firewall without a lab: `inbound` in the model (every bad form named by its
key path), the plan each member gets, and what the rendered iptables rules do to packets,
in IPv4 and IPv6. The rules are walked here by a small evaluator of exactly the matches the
renderer writes, so each case says which packet is dropped by which counter and which goes
on; where a network namespace can be made, the kernel loads both texts as written and the
applier (images/netclient/edge-firewall) loads and keeps them."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass, replace
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from bgp4mesh.config import StackConfig
from bgp4mesh.scalars import PortRange
from bgp4mesh.edge_rules import PREFIX, Service, chains, edge_plan, render_edge_rules, render_edge_rules6, uplink_token
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
    hl: int = 64
    """IPv6 hop limit: 255 only from the link itself."""


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
        elif opt in ("--icmp-type", "--icmpv6-type"):
            ok = p.icmp_type == int(val)
        elif opt == "--hl-eq":
            ok = p.hl == int(val)
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


def rules_of(cfg: StackConfig, member: str, render=render_edge_rules) -> str:
    spec = next(m for m in [*cfg.border_routers, *cfg.mesh.nodes] if m.name == member)
    return resolve(cfg, render(edge_plan(cfg, spec)))


def resolve(cfg: StackConfig, text: str) -> str:
    """Every uplink token (an IPv4 or IPv6 address) as the interface UPLINK."""
    for up in cfg.upstreams:
        for address in (up.local_address, up.local_address6):
            text = text.replace(uplink_token(address), UPLINK) if address else text
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


# ---- IPv6 --------------------------------------------------------------------------

MESH6 = "2001:db8:4430::/64"
NODE6, OTHER6, BORDER6 = "2001:db8:4430::10", "2001:db8:4430::11", "2001:db8:4430::1"
"""Mesh addresses as Netmaker might assign them (the plan cannot know them)."""
OUTSIDE6 = "2001:db8:5100::1"
"""The Internet: the mock ISP's IPv6 test net (exempt from the lab's bogons, as 198.51.100.1)."""
ICMP6 = "ipv6-icmp"


def config6(name: str = "dev", **node1) -> StackConfig:
    """The dev stack with its mesh in IPv6 too (the dev stack may already say so)."""
    raw = stack_raw(name)
    raw["mesh"].setdefault("range6", MESH6)
    raw["mesh"]["nodes"][0].update(node1)
    return StackConfig.model_validate(raw)


def rules6_of(cfg: StackConfig, member: str) -> str:
    return rules_of(cfg, member, render_edge_rules6)


def echo6(src: str, dst: str, **kw) -> Packet:
    return Packet(src, dst, proto=ICMP6, icmp_type=128, **kw)


def test_ipv6_a_node_drops_what_it_did_not_open_from_outside_the_mesh_only():
    rules = rules6_of(config6(inbound=["tcp/8080"]), "node1")
    at = lambda **kw: verdict(rules, "BGP4MESH-INPUT", Packet(**kw))  # noqa: E731
    assert at(src=OUTSIDE6, dst=NODE6, iif="netmaker", dport=8080) == "RETURN"
    assert at(src=OUTSIDE6, dst=NODE6, iif="netmaker", dport=22) == "DROP bgp4mesh: closed"
    assert at(src=OUTSIDE6, dst=NODE6, iif="netmaker", proto="udp", dport=8080) == "DROP bgp4mesh: closed"
    assert at(src=OUTSIDE6, dst=NODE6, iif="netmaker", dport=40000, state="ESTABLISHED") == "RETURN"
    assert verdict(rules, "BGP4MESH-INPUT", echo6(OUTSIDE6, NODE6, iif="netmaker")) == "RETURN"
    # path MTU discovery and the other errors get in; an ICMPv6 type nobody opened does not
    for kind in (1, 2, 3, 4):
        assert at(src=OUTSIDE6, dst=NODE6, iif="netmaker", proto=ICMP6, icmp_type=kind) == "RETURN", kind
    assert at(src=OUTSIDE6, dst=NODE6, iif="netmaker", proto=ICMP6, icmp_type=129) == "DROP bgp4mesh: closed"
    assert at(src=OUTSIDE6, dst=NODE6, iif="netmaker", proto=ICMP6, icmp_type=137, hl=255) == "DROP bgp4mesh: redirect"
    assert at(src="fe80::1", dst="fe80::2", iif="eth0", proto=ICMP6, icmp_type=137, hl=255) == "DROP bgp4mesh: redirect"
    # the mesh's own, member to member
    assert at(src=OTHER6, dst=NODE6, iif="netmaker", dport=22) == "RETURN"


@pytest.mark.parametrize("member, iif", [("node1", "eth0"), ("border", UPLINK)])
def test_ipv6_neighbour_discovery_passes_before_any_drop(member, iif):
    rules = rules6_of(config6(), member)
    at = lambda src, kind, hl=255: verdict(rules, "BGP4MESH-INPUT", Packet(src, "ff02::1:ff00:100", iif=iif, proto=ICMP6, icmp_type=kind, hl=hl))  # noqa: E731
    for kind in (133, 134, 135, 136):
        assert at("fe80::1", kind) == "RETURN", kind
    assert at("::", 135) == "RETURN"  # duplicate address detection
    assert at("2001:db8:ac1e::1", 135) == "RETURN"
    assert at("fe80::1", 130, hl=1) == "RETURN"  # a multicast router's query
    if member == "border":
        # hop limit below 255: not from the link, so a link-local source is a bogon again
        assert at("fe80::1", 135, hl=64) == "DROP bgp4mesh: bogon source in"
        assert verdict(rules, "BGP4MESH-INPUT", from_isp("fe80::1", "2001:db8:ac1e::100", dport=179)) == "DROP bgp4mesh: bogon source in"


def test_ipv6_the_border_drops_spoofed_sources_from_the_upstream_by_class():
    rules = rules6_of(config6(), "border")
    for chain in ("BGP4MESH-FORWARD", "BGP4MESH-INPUT"):
        at = lambda src: verdict(rules, chain, echo6(src, NODE6, iif=UPLINK, oif="netmaker"))  # noqa: E731
        assert at("2001:db8:4430:1::2") == "DROP bgp4mesh: own source in"
        assert at(OTHER6) == "DROP bgp4mesh: own source in"  # the mesh is own space
        for bogon in ("fc00::1", "fe80::1", "::1", "2002:c000:201::1", "ff02::1"):
            assert at(bogon) == "DROP bgp4mesh: bogon source in", bogon
        # the neighbor on its link, the lab's exempt test net, the Internet
        for allowed in ("2001:db8:ac1e::1", OUTSIDE6, "2a00:1450:4001::1"):
            assert at(allowed) == "RETURN", allowed


def test_ipv6_without_exemptions_documentation_space_is_bogon_but_the_link_is_not():
    raw = stack_raw("dev")
    raw["mesh"].setdefault("range6", MESH6)
    raw["policy"]["bogon_exempt_prefixes"] = [p for p in raw["policy"]["bogon_exempt_prefixes"] if ":" not in p]
    rules = rules6_of(StackConfig.model_validate(raw), "border")
    at = lambda src: verdict(rules, "BGP4MESH-FORWARD", echo6(src, NODE6, iif=UPLINK, oif="netmaker"))  # noqa: E731
    assert at(OUTSIDE6) == "DROP bgp4mesh: bogon source in"
    assert at("2001:db8:ac1e::1") == "RETURN"  # the neighbor: link6 is documentation space
    assert at("2001:db8:ac1f::1") == "DROP bgp4mesh: bogon source in"


def test_ipv6_a_mesh_outside_the_own_prefixes_is_its_own_class():
    cfg = config6()
    plan = replace(edge_plan(cfg, cfg.border_routers[0]), own6=())
    rules = resolve(cfg, render_edge_rules6(plan))
    assert verdict(rules, "BGP4MESH-FORWARD", echo6(OTHER6, NODE6, iif=UPLINK, oif="netmaker")) == "DROP bgp4mesh: mesh source in"


def test_ipv6_the_border_sends_only_own_and_link_sources_upstream():
    rules = rules6_of(config6(), "border")
    out = lambda src, **kw: verdict(rules, "BGP4MESH-OUTPUT", Packet(src, OUTSIDE6, oif=UPLINK, **{"proto": ICMP6, "icmp_type": 128, **kw}))  # noqa: E731
    assert out("2001:db8:ac1e::100") == "RETURN"  # its link address: BGP, pings
    assert out(BORDER6) == "RETURN"
    assert out("2001:db8:9999::1") == "DROP bgp4mesh: spoofed source out"
    assert out("fc00::1") == "DROP bgp4mesh: spoofed source out"
    # neighbour discovery and duplicate address detection out of the uplink
    assert out("fe80::100", icmp_type=135, hl=255) == "RETURN"
    assert out("::", icmp_type=135, hl=255) == "RETURN"
    assert out("::", proto="tcp", icmp_type=-1, dport=179) == "DROP bgp4mesh: spoofed source out"
    fwd = lambda src: verdict(rules, "BGP4MESH-FORWARD", Packet(src, OUTSIDE6, iif="netmaker", oif=UPLINK, dport=443))  # noqa: E731
    assert fwd(NODE6) == "RETURN"
    assert fwd("2a00:1450:4001::1") == "DROP bgp4mesh: spoofed source out"


def test_ipv6_the_forward_path_opens_every_members_ports_towards_the_mesh_and_the_member_closes_the_rest():
    cfg = config6(inbound=["tcp/8080", "udp/5000-5010"])
    rules = rules6_of(cfg, "border")
    into = lambda dst, **kw: verdict(rules, "BGP4MESH-FORWARD", from_isp(OUTSIDE6, dst, oif="netmaker", **kw))  # noqa: E731
    assert into(NODE6, dport=8080) == "RETURN"
    assert into(NODE6, proto="udp", dport=5005) == "RETURN"
    assert into(NODE6, dport=8081) == "DROP bgp4mesh: closed"
    assert into(NODE6, proto=ICMP6, icmp_type=128) == "RETURN"
    assert into(NODE6, proto=ICMP6, icmp_type=2) == "RETURN"
    assert into(OTHER6, dport=40000, state="ESTABLISHED") == "RETURN"
    # node1's port reaches node2 through the border (its address is unknown to the plan)...
    assert into(OTHER6, dport=8080) == "RETURN"
    # ...and node2 drops it itself
    node2 = rules6_of(cfg, "node2")
    assert verdict(node2, "BGP4MESH-INPUT", Packet(OUTSIDE6, OTHER6, iif="netmaker", dport=8080)) == "DROP bgp4mesh: closed"
    assert verdict(rules, "BGP4MESH-FORWARD", Packet(NODE6, OTHER6, iif="netmaker", oif="netmaker", dport=22)) == "RETURN"
    assert verdict(rules, "BGP4MESH-FORWARD", from_isp(OUTSIDE6, "2001:db8:ffff::1", oif="eth0")) == "DROP bgp4mesh: not an edge flow"


def test_ipv6_services_are_closed_to_everyone():
    from bgp4mesh.plan import build_plan

    plan = build_plan(config6())
    router = plan.router("border")
    border = resolve(plan.model, render_edge_rules6(router.member.edge))
    node = render_edge_rules6(plan.nodes[0].member.edge)
    at = lambda rules, **kw: verdict(rules, "BGP4MESH-INPUT", Packet(**kw))  # noqa: E731
    for rules, own in ((border, BORDER6), (node, NODE6)):
        for src, iif in ((OUTSIDE6, "netmaker"), (OTHER6, "netmaker"), ("2001:db8:ac1e::1", "eth0")):
            assert at(rules, src=src, dst=own, iif=iif, dport=9586) == "DROP bgp4mesh: member exporter closed", (own, src)
    assert at(border, src=OUTSIDE6, dst="2001:db8:ac1e::100", iif=UPLINK, dport=8095) == "DROP bgp4mesh: looking glass closed"
    assert at(border, src=OUTSIDE6, dst="2001:db8:ac1e::100", iif=UPLINK, dport=9324) == "DROP bgp4mesh: bird exporter closed"


def test_ipv6_is_rendered_where_a_member_meets_it_and_filters_an_ipv4_only_uplink_too():
    raw = stack_raw("dev")
    raw["mesh"].pop("range6", None)
    cfg = StackConfig.model_validate(raw)
    assert render_edge_rules6(edge_plan(cfg, cfg.mesh.nodes[0])) is None
    border = rules6_of(cfg, "border")  # an IPv6 session, no IPv6 mesh: the uplink alone
    assert MESH6 not in border and "OPEN -d" not in border
    assert verdict(border, "BGP4MESH-INPUT", echo6("fc00::1", "2001:db8:ac1e::100", iif=UPLINK)) == "DROP bgp4mesh: bogon source in"
    raw = stack_raw("dev")
    raw["mesh"].setdefault("range6", MESH6)
    for key in ("link6", "neighbor6", "local_address6"):
        raw["upstreams"][0].pop(key, None)
    cfg = StackConfig.model_validate(raw)
    text = render_edge_rules6(edge_plan(cfg, cfg.border_routers[0]))
    assert uplink_token(cfg.upstreams[0].local_address) in text  # named by its IPv4 address
    rules = resolve(cfg, text)
    assert verdict(rules, "BGP4MESH-FORWARD", echo6(OTHER6, NODE6, iif=UPLINK, oif="netmaker")) == "DROP bgp4mesh: own source in"
    assert verdict(rules, "BGP4MESH-OUTPUT", echo6("2a00::1", OUTSIDE6, oif=UPLINK)) == "DROP bgp4mesh: spoofed source out"


def test_ipv6_bogon_switch_and_chains_match_ipv4():
    cfg = config6()
    for spec in (cfg.border_routers[0], cfg.mesh.nodes[0]):
        v4, v6 = render_edge_rules(edge_plan(cfg, spec)), render_edge_rules6(edge_plan(cfg, spec))
        declared = lambda text: [line[1:].split()[0] for line in text.splitlines() if line.startswith(":")]  # noqa: E731
        assert declared(v4) == declared(v6) == chains(edge_plan(cfg, spec))
    raw = stack_raw("dev")
    raw["mesh"].setdefault("range6", MESH6)
    raw["policy"] = {"bogon_filter": False, "timers": raw["policy"]["timers"]}
    raw["upstreams"][0]["asn"] = 65001
    off = StackConfig.model_validate(raw)
    assert "bogon source in" not in render_edge_rules6(edge_plan(off, off.border_routers[0]))


# ---- a v4-only stack: as before IPv6 ---------------------------------------------------


def _ipv6(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return ip_network(value, strict=False).version == 6
    except (TypeError, ValueError):
        return False


def v4_only(value):
    """A raw config without anything IPv6: keys ending in 6, IPv6 items, entries naming one."""
    if isinstance(value, dict):
        return {k: v4_only(v) for k, v in value.items() if not k.endswith("6")}
    if isinstance(value, list):
        kept = [v4_only(v) for v in value if not _ipv6(v)]
        return [v for v in kept if not (isinstance(v, dict) and any(map(_ipv6, v.values())))]
    return value


EXPORTER = (Service(PortRange("tcp", 9586, 9586), (ip_network("172.31.0.8/32"),), "member exporter"),)


def test_a_v4_only_stack_renders_its_ipv4_rules_as_before_and_no_ipv6():
    v4 = StackConfig.model_validate(v4_only(stack_raw("dev")))
    members = [*v4.border_routers, *v4.mesh.nodes]
    assert all(render_edge_rules6(edge_plan(v4, m, EXPORTER)) is None for m in members)
    assert render_edge_rules(edge_plan(v4, v4.border_routers[0], EXPORTER)) == V4_BORDER
    assert render_edge_rules(edge_plan(v4, v4.mesh.nodes[0], EXPORTER)) == V4_NODE1
    # the same stack in dual stack: its IPv4 rules do not change
    dual = config6()
    for spec4, spec in zip(members, [*dual.border_routers, *dual.mesh.nodes]):
        assert render_edge_rules(edge_plan(v4, spec4, EXPORTER)) == render_edge_rules(edge_plan(dual, spec, EXPORTER))


V4_NODE1 = """\
# bgp4mesh edge firewall: generated from the stack config (bgp4mesh/edge_rules.py)
*filter
:BGP4MESH-INPUT - [0:0]
:BGP4MESH-MEMBER - [0:0]
-A BGP4MESH-INPUT -s 172.31.0.8/32 -p tcp -m tcp --dport 9586 -j RETURN
-A BGP4MESH-INPUT -p tcp -m tcp --dport 9586 -m comment --comment "bgp4mesh: member exporter closed" -j DROP
-A BGP4MESH-INPUT -s 44.30.127.0/24 -j RETURN
-A BGP4MESH-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A BGP4MESH-INPUT -i netmaker+ -j BGP4MESH-MEMBER
-A BGP4MESH-INPUT -d 44.30.127.0/24 -j BGP4MESH-MEMBER
-A BGP4MESH-MEMBER -p icmp -m icmp --icmp-type 8 -j RETURN
-A BGP4MESH-MEMBER -p tcp -m tcp --dport 8080 -j RETURN
-A BGP4MESH-MEMBER -m comment --comment "bgp4mesh: closed" -j DROP
COMMIT
"""

V4_BORDER = """\
# bgp4mesh edge firewall: generated from the stack config (bgp4mesh/edge_rules.py)
*filter
:BGP4MESH-INPUT - [0:0]
:BGP4MESH-FORWARD - [0:0]
:BGP4MESH-OUTPUT - [0:0]
:BGP4MESH-MEMBER - [0:0]
:BGP4MESH-SPOOF-IN - [0:0]
:BGP4MESH-SPOOF-OUT - [0:0]
:BGP4MESH-OPEN - [0:0]
-A BGP4MESH-INPUT -i @uplink:172.30.0.100@ -j BGP4MESH-SPOOF-IN
-A BGP4MESH-INPUT -s 172.31.0.8/32 -p tcp -m tcp --dport 9586 -j RETURN
-A BGP4MESH-INPUT -p tcp -m tcp --dport 9586 -m comment --comment "bgp4mesh: member exporter closed" -j DROP
-A BGP4MESH-INPUT -s 44.30.127.0/24 -j RETURN
-A BGP4MESH-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A BGP4MESH-INPUT -i netmaker+ -j BGP4MESH-MEMBER
-A BGP4MESH-INPUT -d 44.30.127.0/24 -j BGP4MESH-MEMBER
-A BGP4MESH-MEMBER -p icmp -m icmp --icmp-type 8 -j RETURN
-A BGP4MESH-MEMBER -m comment --comment "bgp4mesh: closed" -j DROP
-A BGP4MESH-SPOOF-IN -s 172.30.0.0/24 -j RETURN
-A BGP4MESH-SPOOF-IN -s 44.30.127.0/24 -m comment --comment "bgp4mesh: own source in" -j DROP
-A BGP4MESH-SPOOF-IN -s 192.0.2.0/24 -j RETURN
-A BGP4MESH-SPOOF-IN -s 198.51.100.0/24 -j RETURN
-A BGP4MESH-SPOOF-IN -s 203.0.113.0/24 -j RETURN
-A BGP4MESH-SPOOF-IN -s 0.0.0.0/8 -m comment --comment "bgp4mesh: bogon source in" -j DROP
-A BGP4MESH-SPOOF-IN -s 10.0.0.0/8 -m comment --comment "bgp4mesh: bogon source in" -j DROP
-A BGP4MESH-SPOOF-IN -s 100.64.0.0/10 -m comment --comment "bgp4mesh: bogon source in" -j DROP
-A BGP4MESH-SPOOF-IN -s 127.0.0.0/8 -m comment --comment "bgp4mesh: bogon source in" -j DROP
-A BGP4MESH-SPOOF-IN -s 169.254.0.0/16 -m comment --comment "bgp4mesh: bogon source in" -j DROP
-A BGP4MESH-SPOOF-IN -s 172.16.0.0/12 -m comment --comment "bgp4mesh: bogon source in" -j DROP
-A BGP4MESH-SPOOF-IN -s 192.0.2.0/24 -m comment --comment "bgp4mesh: bogon source in" -j DROP
-A BGP4MESH-SPOOF-IN -s 192.88.99.0/24 -m comment --comment "bgp4mesh: bogon source in" -j DROP
-A BGP4MESH-SPOOF-IN -s 192.168.0.0/16 -m comment --comment "bgp4mesh: bogon source in" -j DROP
-A BGP4MESH-SPOOF-IN -s 198.18.0.0/15 -m comment --comment "bgp4mesh: bogon source in" -j DROP
-A BGP4MESH-SPOOF-IN -s 198.51.100.0/24 -m comment --comment "bgp4mesh: bogon source in" -j DROP
-A BGP4MESH-SPOOF-IN -s 203.0.113.0/24 -m comment --comment "bgp4mesh: bogon source in" -j DROP
-A BGP4MESH-SPOOF-IN -s 224.0.0.0/4 -m comment --comment "bgp4mesh: bogon source in" -j DROP
-A BGP4MESH-SPOOF-IN -s 240.0.0.0/4 -m comment --comment "bgp4mesh: bogon source in" -j DROP
-A BGP4MESH-SPOOF-OUT -s 44.30.127.0/24 -j RETURN
-A BGP4MESH-SPOOF-OUT -s 172.30.0.100/32 -j RETURN
-A BGP4MESH-SPOOF-OUT -m comment --comment "bgp4mesh: spoofed source out" -j DROP
-A BGP4MESH-OUTPUT -o @uplink:172.30.0.100@ -j BGP4MESH-SPOOF-OUT
-A BGP4MESH-FORWARD -i @uplink:172.30.0.100@ -j BGP4MESH-SPOOF-IN
-A BGP4MESH-FORWARD -o @uplink:172.30.0.100@ -j BGP4MESH-SPOOF-OUT
-A BGP4MESH-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A BGP4MESH-FORWARD -s 44.30.127.0/24 -j RETURN
-A BGP4MESH-FORWARD -o netmaker+ -j BGP4MESH-OPEN
-A BGP4MESH-FORWARD -d 44.30.127.0/24 -j RETURN
-A BGP4MESH-FORWARD -i netmaker+ -m comment --comment "bgp4mesh: not an edge flow" -j DROP
-A BGP4MESH-FORWARD -o netmaker+ -m comment --comment "bgp4mesh: not an edge flow" -j DROP
-A BGP4MESH-FORWARD -i @uplink:172.30.0.100@ -m comment --comment "bgp4mesh: not an edge flow" -j DROP
-A BGP4MESH-FORWARD -o @uplink:172.30.0.100@ -m comment --comment "bgp4mesh: not an edge flow" -j DROP
-A BGP4MESH-OPEN -d 44.30.127.10/32 -p tcp -m tcp --dport 8080 -j RETURN
-A BGP4MESH-OPEN -p icmp -m icmp --icmp-type 8 -j RETURN
-A BGP4MESH-OPEN -m comment --comment "bgp4mesh: closed" -j DROP
COMMIT
"""


# ---- in the kernel: a throwaway network namespace -------------------------------------

NETNS_TOOLS = ("unshare", "ip", "iptables-restore", "ip6tables-restore", "xtables-monitor", "md5sum", "flock")
APPLIER = ROOT / "images" / "netclient" / "edge-firewall"


def in_netns(script: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`script` (bash) in a network namespace of its own; whatever it leaves running (its
    process group) is killed after."""
    proc = subprocess.Popen(["unshare", "-rn", "bash", "-euo", "pipefail", "-c", script],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def netns():
    """in_netns; a host that cannot make a namespace with a veth pair fails these tests (CI must run them)."""
    missing = [t for t in NETNS_TOOLS if not shutil.which(t)]
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)}")
    probe = in_netns("ip link add x0 type veth peer name x1; iptables -S >/dev/null; ip6tables -S >/dev/null")
    if probe.returncode:
        pytest.fail(f"no network namespace with a veth pair and both ip(6)tables here: {probe.stderr.strip()}")
    return in_netns


def by_chain(lines) -> dict[str, list[str]]:
    chained: dict[str, list[str]] = {}
    for line in lines:
        if line.startswith(f"-A {PREFIX}-"):
            chained.setdefault(line.split()[1], []).append(line)
    return chained


@pytest.mark.parametrize("member", ["border", "node1"])
def test_the_kernel_holds_both_families_rules_as_written(netns, tmp_path, member):
    """What the evaluator walks is what the kernel runs: each chain reads back line for line."""
    cfg = config6(inbound=["tcp/8080"])
    (tmp_path / "4").write_text(rules_of(cfg, member))
    (tmp_path / "6").write_text(rules6_of(cfg, member))
    done = netns(f"iptables-restore --noflush <{tmp_path}/4; ip6tables-restore --noflush <{tmp_path}/6;"
                 "iptables -S; echo ====; ip6tables -S")
    assert done.returncode == 0, done.stderr
    read4, read6 = done.stdout.split("====\n")
    assert by_chain(read4.splitlines()) == by_chain((tmp_path / "4").read_text().splitlines())
    assert by_chain(read6.splitlines()) == by_chain((tmp_path / "6").read_text().splitlines())


def applier(tmp_path: Path) -> Path:
    """The applier with its library and run directory under tmp_path (not the image's)."""
    (tmp_path / "lib.sh").write_text('log() { echo "[edge-firewall] $*" >&2; }\n')
    text = APPLIER.read_text()
    assert "source /usr/local/lib/bgp4mesh/netclient.sh" in text and "/run/bgp4mesh/edge-firewall.lock" in text
    text = text.replace("/usr/local/lib/bgp4mesh/netclient.sh", str(tmp_path / "lib.sh")).replace("/run/bgp4mesh", str(tmp_path / "run"))
    (tmp_path / "edge-firewall").write_text(text)
    return tmp_path / "edge-firewall"


def results(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


FIRST = 'for t in iptables ip6tables; do for c in INPUT FORWARD OUTPUT; do echo "$1 $t $c=$($t -S $c 1)"; done; done'


def test_the_applier_loads_each_family_and_keeps_the_jumps_first_in_both(netns, tmp_path):
    cfg = config6()
    border = cfg.border_routers[0]
    (tmp_path / "edge.rules").write_text(render_edge_rules(edge_plan(cfg, border)))
    (tmp_path / "edge6.rules").write_text(render_edge_rules6(edge_plan(cfg, border)))
    up = cfg.upstreams[0]
    done = netns(f"""
        cd {tmp_path}; export EDGE_RULES=$PWD/edge.rules EDGE_RULES6=$PWD/edge6.rules EDGE_CHECK_S=1
        first() {{ {FIRST}; }}
        ip link add up0 type veth peer name up1; ip link set up0 up; ip link set up1 up
        ip addr add {up.local_address}/{up.link.prefixlen} dev up0
        rc=0; bash {applier(tmp_path)} apply || rc=$?; echo "without IPv6 address=$rc"; first before
        ip -6 addr add {up.local_address6}/{up.link6.prefixlen} dev up0 nodad
        rc=0; bash edge-firewall apply || rc=$?; echo "with it=$rc"; first after
        echo "uplink6=$(ip6tables -S BGP4MESH-OUTPUT | grep -c -- '-o up0 ')"
        bash edge-firewall watch >watch.log 2>&1 &
        sleep 2.5   # past the watcher's first look: what follows is an event's doing
        ip6tables -I FORWARD 1 -j ACCEPT   # as netclient does; an IPv6 change alone
        for _ in $(seq 30); do [[ "$(ip6tables -S FORWARD 1)" == *BGP4MESH-FORWARD ]] && break; sleep 0.1; done
        first watched; kill %1
    """)
    assert done.returncode == 0, done.stderr
    got = results(done.stdout)
    assert got["without IPv6 address"] == "1" and got["with it"] == "0", done.stderr
    for chain in ("INPUT", "FORWARD", "OUTPUT"):
        assert got[f"before iptables {chain}"] == f"-A {chain} -j BGP4MESH-{chain}"  # IPv4 does not wait for IPv6
        assert got[f"before ip6tables {chain}"] == ""
        for when in ("after", "watched"):
            for tool in ("iptables", "ip6tables"):
                assert got[f"{when} {tool} {chain}"] == f"-A {chain} -j BGP4MESH-{chain}", (when, tool)
    assert got["uplink6"] == "1"  # its token became the interface holding the IPv6 address


def test_the_applier_leaves_ipv6_alone_without_ipv6_rules(netns, tmp_path):
    cfg = StackConfig.model_validate(v4_only(stack_raw("dev")))
    (tmp_path / "edge.rules").write_text(render_edge_rules(edge_plan(cfg, cfg.mesh.nodes[0])))
    done = netns(f"""
        cd {tmp_path}; export EDGE_RULES=$PWD/edge.rules EDGE_RULES6=$PWD/edge6.rules
        bash {applier(tmp_path)} apply; first() {{ {FIRST}; }}; first node
        echo "chains6=$(ip6tables -S | grep -c BGP4MESH || true)"
    """)
    assert done.returncode == 0, done.stderr
    got = results(done.stdout)
    assert got["node iptables INPUT"] == "-A INPUT -j BGP4MESH-INPUT" and got["chains6"] == "0"
