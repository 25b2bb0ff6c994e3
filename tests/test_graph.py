"""`python -m bgp4mesh graph`: the plan drawn as Mermaid and Graphviz dot (no Docker).

Golden files under tests/golden/ hold each shipped stack's picture in both formats, and
`--live` pictures drawn from a made-up observed state (graph-live-*); a change to the output
fails here until they are regenerated on purpose and the diff reviewed:

    GOLDEN_UPDATE=1 .venv/bin/python -m pytest -q tests/test_graph.py -k golden
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bgp4mesh import cli
from bgp4mesh.graph import COLOURS, Observed, dot, mermaid
from bgp4mesh.plan import StackPlan
from bgp4mesh.stack import load_plan, plan_stack, raw_from_file

GOLDEN = Path(__file__).parent / "golden"
STACKS = ("dev", "lab", "staging-ha")
FORMATS = {"mermaid": (mermaid, "mmd"), "dot": (dot, "dot")}
MERMAID_NODE = re.compile(r'^ *(\w+)(\["|\{\{"|\[\("|\(\("|\("|\[/"|>")(.*?)("\]|"\}\}|"\)\]|"\)\)|"\)|"/\])$')
MERMAID_EDGE = re.compile(r'^ *(\w+) (---|===|-\.-)\|"([^"]*)"\| (\w+)$')
MERMAID_LINK_STYLE = re.compile(r"^ *linkStyle (\d+(?:,\d+)*) stroke:(#[0-9a-f]{6}),stroke-width:2px,color:#[0-9a-f]{6}$")
DOT_EDGE = re.compile(r'^ *(\w+) -- (\w+) \[label="((?:[^"\\]|\\.)*)", style=\w+(?:, color="(#[0-9a-f]{6})", fontcolor="#[0-9a-f]{6}", penwidth=2)?\];$')


def edges(text: str) -> set[tuple[str, str, str]]:
    """(source, label, target) of every edge of a Mermaid or dot output."""
    found = {(m[1], m[3], m[4]) for m in map(MERMAID_EDGE.match, text.splitlines()) if m}
    found |= {(m[1], m[3], m[2]) for m in map(DOT_EDGE.match, text.splitlines()) if m}
    return found


def labelled(text: str, label: str) -> list[tuple[str, str]]:
    """(source, target) of the edges labelled exactly `label`."""
    return sorted((s, t) for s, lab, t in edges(text) if lab == label)


def variant(stack: str, change) -> StackPlan:
    """The plan of a shipped stack with its raw config edited by `change(raw)`."""
    raw, secret_keys = raw_from_file(stack)
    raw = copy.deepcopy(raw)
    change(raw)
    return plan_stack(raw, secret_keys)


# ---- golden files -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("stack", STACKS)
def test_golden(stack, fmt):
    draw, ext = FORMATS[fmt]
    path = GOLDEN / f"graph-{stack}.{ext}"
    text = draw(load_plan(stack))
    if os.environ.get("GOLDEN_UPDATE") == "1":
        path.write_text(text)
    assert path.exists(), f"no {path.name}: run with GOLDEN_UPDATE=1 (see this file's docstring)"
    assert text == path.read_text(), f"graph --stack {stack} --format {fmt} changed; review, then regenerate with GOLDEN_UPDATE=1"


# ---- the formats are well formed and agree ---------------------------------------------------


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed (scripts/bootstrap installs it)")
@pytest.mark.parametrize("stack", STACKS)
def test_dot_renders_to_svg_with_every_label(stack):
    plan = load_plan(stack)
    svg = subprocess.run(["dot", "-Tsvg"], input=dot(plan), capture_output=True, text=True, timeout=30, check=True).stdout
    root = ET.fromstring(svg)
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    wanted = {r.name for r in plan.routers} | {f"router id {r.spec.router_id}" for r in plan.routers}
    wanted |= {s.upstream.name for r in plan.routers for s in r.sessions} | {f"AS {s.upstream.asn}" for r in plan.routers for s in r.sessions}
    wanted |= {n.name for n in plan.nodes} | {"Netmaker control plane"}
    assert wanted <= texts, f"missing from the SVG: {sorted(wanted - texts)}"


def assert_well_formed_mermaid(text: str) -> None:
    """A flowchart header, then only node, edge and subgraph lines; identifiers declared once,
    every edge between declared nodes."""
    lines = text.splitlines()
    assert re.fullmatch(r"flowchart (LR|RL|TB|TD|BT)", lines[0])
    declared, ends, opened = [], [], 0
    for line in lines[1:]:
        if node := MERMAID_NODE.match(line):
            declared.append(node[1])
        elif edge := MERMAID_EDGE.match(line):
            ends += [edge[1], edge[4]]
        elif re.fullmatch(r' *subgraph \w+\["[^"]*"\]', line):
            opened += 1
        elif line.strip() == "end":
            opened -= 1
        elif MERMAID_LINK_STYLE.match(line):
            pass
        else:
            pytest.fail(f"not a node, edge, subgraph or end: {line!r}")
    assert opened == 0 and ends
    assert len(declared) == len(set(declared)), f"an identifier is declared twice: {sorted(declared)}"
    assert set(ends) <= set(declared), f"edges to undeclared nodes: {sorted(set(ends) - set(declared))}"


@pytest.mark.parametrize("stack", STACKS)
def test_mermaid_is_a_flowchart_whose_edges_join_declared_nodes(stack):
    assert_well_formed_mermaid(mermaid(load_plan(stack)))


def test_identifiers_stay_apart_when_the_mesh_is_named_like_a_router():
    plan = variant("dev", lambda raw: raw["mesh"].update(network="border"))
    assert_well_formed_mermaid(mermaid(plan))


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed (scripts/bootstrap installs it)")
def test_a_label_that_would_end_its_string_is_escaped_in_both_formats():
    """Config names cannot hold quotes today; the layout must not rely on that."""
    plan = load_plan("dev")
    hostile = 'nm"lab <b>x</b> \\'
    model = plan.model.model_copy(update={"netmaker": plan.model.netmaker.model_copy(update={"domain": hostile})})
    plan = dataclasses.replace(plan, model=model)
    assert_well_formed_mermaid(mermaid(plan))
    assert "nm#quot;lab #lt;b#gt;x#lt;/b#gt;" in mermaid(plan)
    svg = subprocess.run(["dot", "-Tsvg"], input=dot(plan), capture_output=True, text=True, timeout=30, check=True).stdout
    assert hostile in {t.text for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")}


@pytest.mark.parametrize("stack", STACKS)
def test_both_formats_draw_the_same_edges(stack):
    plan = load_plan(stack)
    assert edges(mermaid(plan)) == edges(dot(plan)) != set()


# ---- what the picture shows ---------------------------------------------------------------------


def test_lab_shows_sessions_ibgp_gateway_order_and_the_probe():
    text = mermaid(load_plan("lab"))
    assert labelled(text, "eBGP, local-pref 200, BFD 100 ms x 3") == [("router_border_a", "upstream_isp_a")]
    assert labelled(text, "eBGP, local-pref 100, prepend 2, BFD 100 ms x 3") == [("router_border_b", "upstream_isp_b")]
    # dual stack: each family's session an edge of its own, with the same policy
    assert labelled(text, "eBGP IPv6, local-pref 200, BFD 100 ms x 3") == [("router_border_a", "upstream_isp_a")]
    assert labelled(text, "eBGP IPv6, local-pref 100, prepend 2, BFD 100 ms x 3") == [("router_border_b", "upstream_isp_b")]
    assert sorted(e for e in edges(text) if e[1].startswith("iBGP")) == [
        ("router_border_a", "iBGP IPv6, BFD", "router_border_b"), ("router_border_a", "iBGP, BFD", "router_border_b")]
    assert labelled(text, "member, egress gateway 1 (preferred)") == [("router_border_a", "mesh_bgp4mesh")]
    assert labelled(text, "member, egress gateway 2") == [("router_border_b", "mesh_bgp4mesh")]
    assert labelled(text, "member") == [("node_node1", "mesh_bgp4mesh"), ("node_node2", "mesh_bgp4mesh")]
    assert labelled(text, "eBGP 172.30.18.3, 2001:db8:ac1e:12::3") == [("probe_probe", "exchange_exchange")]  # both families
    assert labelled(text, "eBGP 172.30.18.1, 2001:db8:ac1e:12::1") == [("upstream_isp_a", "exchange_exchange")]
    assert 'probe_probe>"probe<br/>AS 65010<br/>192.0.2.1<br/>2001:db8:1920::1"]' in text
    assert 'upstream_isp_b{{"isp-b<br/>AS 65002<br/>mock<br/>172.30.17.1"}}' in text
    assert 'node_node2("node2<br/>mesh assigned at join<br/>host local")' in text


def test_gateway_order_is_the_plans():
    plan = load_plan("lab")
    plan = dataclasses.replace(plan, gateways=dataclasses.replace(plan.gateways, egress=plan.gateways.egress[::-1]))
    text = dot(plan)
    assert labelled(text, "member, egress gateway 1 (preferred)") == [("router_border_b", "mesh_bgp4mesh")]
    assert labelled(text, "member, egress gateway 2") == [("router_border_a", "mesh_bgp4mesh")]


def test_a_drained_router_shows_the_prepends_its_upstream_sees():
    plan = variant("lab", lambda raw: raw["border_routers"][1].update(maintenance=True))
    text = mermaid(plan)
    seen = len(plan.router("border-b").sessions[0].as_path) - 1
    assert seen > 2
    assert labelled(text, f"eBGP, local-pref 100, prepend {seen}, BFD 100 ms x 3") == [("router_border_b", "upstream_isp_b")]
    assert "mesh 44.30.127.2<br/>MAINTENANCE: drained" in text


def test_staging_ha_shows_real_upstreams_and_the_internet_gateway():
    text = dot(load_plan("staging-ha"))
    assert labelled(text, "member, egress gateway 1 (preferred), internet gateway") == [("router_border_a", "mesh_bgp4mesh")]
    assert 'upstream_transit_b [shape=hexagon, label="transit-b\\nAS 65001\\nreal\\n192.0.2.9"];' in text
    assert 'netmaker_netmaker [shape=cylinder, label="Netmaker control plane\\nnm.staging.test\\nhost control"];' in text
    assert "probe" not in text and "exchange" not in text


# ---- what must be absent ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_router_stack_has_no_ibgp_and_no_gateway_order(fmt):
    text = FORMATS[fmt][0](load_plan("dev"))
    assert not [e for e in edges(text) if "iBGP" in e[1]]
    assert labelled(text, "member, egress gateway") == [("router_border", "mesh_bgp4mesh")]
    assert not re.search(r"gateway \d|preferred", text)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_upstream_password_never_appears(fmt):
    password = "md5-Secret-4711"
    plan = variant("dev", lambda raw: raw["upstreams"][0].update(password=password))
    assert plan.model.upstreams[0].password.get_secret_value() == password
    text = FORMATS[fmt][0](plan)
    assert "upstream_isp" in text and password not in text


# ---- the subcommand ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_cli_prints_the_stack_in_the_format_asked(fmt, capsys):
    assert cli.main(["graph", "--stack", "lab", "--format", fmt]) == 0
    assert capsys.readouterr().out == FORMATS[fmt][0](load_plan("lab"))


def test_cli_refuses_an_invalid_stack_as_check_does(tmp_path, capsys):
    text = (cli.PROJECT_DIR / "Pulumi.dev.yaml").read_text().replace("asn: 65001", "asn: 23456", 1)
    (tmp_path / "Pulumi.t.yaml").write_text(text)
    results = []
    for command in ("check", "graph"):
        code = cli.main([command, "--stack", "t", "--project-dir", str(tmp_path)])
        results.append((code, capsys.readouterr()))
    (check_code, check_out), (graph_code, graph_out) = results
    assert check_code == graph_code == cli.EXIT_INVALID
    assert graph_out.out == "" and "AS_TRANS" in graph_out.err
    assert graph_out.err == check_out.err


# ---- --live: the same picture coloured by an observed state -----------------------------------

COLOUR_NAMES = {COLOURS[True]: "green", COLOURS[False]: "red"}
DEV_HEALTHY = Observed(
    {("border", "peer_isp"): "Established", ("border", "peer6_isp"): "Established"}, {}, {("node1", "border"): 12.0, ("node2", "border"): 3.4}
)
LAB_MIXED = Observed(
    # each family's sessions by themselves: isp-b's IPv6 session is up while its IPv4 one is
    # not, and the IPv6 iBGP session is down at border-b while the IPv4 one is up
    sessions={("border-a", "peer_isp_a"): "Established", ("border-b", "peer_isp_b"): "Active",
              ("border-a", "ibgp_border_b"): "Established", ("border-b", "ibgp_border_a"): "Established",
              ("border-a", "peer6_isp_a"): "Established", ("border-b", "peer6_isp_b"): "Established",
              ("border-a", "ibgp6_border_b"): "Established", ("border-b", "ibgp6_border_a"): "Connect"},
    # border-b's view of the iBGP BFD session is missing: not read
    bfd={("border-a", "172.30.16.1"): "Up", ("border-a", "172.31.16.11"): "Up", ("border-b", "172.30.17.1"): "Down",
         ("border-a", "2001:db8:ac1e:10::1"): "Up", ("border-b", "2001:db8:ac1e:11::1"): "Up",
         ("border-a", "2001:db8:ac1f:10::b"): "Up", ("border-b", "2001:db8:ac1f:10::a"): "Up"},
    # node2's tunnel to border-b is missing: not read
    handshakes={("node1", "border-a"): 5.0, ("node1", "border-b"): None, ("node2", "border-a"): 179.0, ("border-a", "border-b"): 200.0},
)
LIVE = {"dev": DEV_HEALTHY, "lab": LAB_MIXED}


def coloured(text: str) -> dict[tuple[str, str, str], str]:
    """Every edge (source, label, target) -> 'green', 'red' or '' (uncoloured), in either format."""
    lines = text.splitlines()
    in_order = [(m[1], m[3], m[4]) for m in map(MERMAID_EDGE.match, lines) if m]
    found = dict.fromkeys(in_order, "")
    for style in filter(None, map(MERMAID_LINK_STYLE.match, lines)):
        found.update({in_order[int(i)]: COLOUR_NAMES[style[2]] for i in style[1].split(",")})
    found.update({(m[1], m[3], m[2]): COLOUR_NAMES.get(m[4], "") for m in map(DOT_EDGE.match, lines) if m})
    return found


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("stack", LIVE)
def test_golden_live(stack, fmt):
    draw, ext = FORMATS[fmt]
    path = GOLDEN / f"graph-live-{stack}.{ext}"
    text = draw(load_plan(stack), LIVE[stack])
    if os.environ.get("GOLDEN_UPDATE") == "1":
        path.write_text(text)
    assert path.exists(), f"no {path.name}: run with GOLDEN_UPDATE=1 (see this file's docstring)"
    assert text == path.read_text(), f"graph --stack {stack} --format {fmt} --live changed; review, then regenerate with GOLDEN_UPDATE=1"


@pytest.mark.parametrize("fmt", FORMATS)
def test_live_colours_each_session_and_tunnel_by_what_was_seen(fmt):
    plan = load_plan("lab")
    text = FORMATS[fmt][0](plan, LAB_MIXED)
    live = {e: c for e, c in coloured(text).items() if c}
    assert live == {
        ("router_border_a", "eBGP, local-pref 200, BFD 100 ms x 3: Established, BFD Up", "upstream_isp_a"): "green",
        ("router_border_b", "eBGP, local-pref 100, prepend 2, BFD 100 ms x 3: Active, BFD Down", "upstream_isp_b"): "red",
        ("router_border_a", "iBGP, BFD: border-a Established, BFD Up; border-b Established, BFD no answer", "router_border_b"): "red",
        ("router_border_a", "eBGP IPv6, local-pref 200, BFD 100 ms x 3: Established, BFD Up", "upstream_isp_a"): "green",
        ("router_border_b", "eBGP IPv6, local-pref 100, prepend 2, BFD 100 ms x 3: Established, BFD Up", "upstream_isp_b"): "green",
        ("router_border_a", "iBGP IPv6, BFD: border-a Established, BFD Up; border-b Connect, BFD Up", "router_border_b"): "red",
        ("node_node1", "WireGuard: handshake 5 s ago", "router_border_a"): "green",
        ("node_node1", "WireGuard: no handshake", "router_border_b"): "red",
        ("node_node2", "WireGuard: handshake 179 s ago", "router_border_a"): "green",
        ("node_node2", "WireGuard: no answer", "router_border_b"): "red",
        ("router_border_a", "WireGuard: handshake 200 s ago", "router_border_b"): "red",
    }
    # everything else is the plan's picture, uncoloured
    assert {e for e, c in coloured(text).items() if not c} == edges(FORMATS[fmt][0](plan)) - {
        ("router_border_a", "eBGP, local-pref 200, BFD 100 ms x 3", "upstream_isp_a"),
        ("router_border_b", "eBGP, local-pref 100, prepend 2, BFD 100 ms x 3", "upstream_isp_b"),
        ("router_border_a", "iBGP, BFD", "router_border_b"),
        ("router_border_a", "eBGP IPv6, local-pref 200, BFD 100 ms x 3", "upstream_isp_a"),
        ("router_border_b", "eBGP IPv6, local-pref 100, prepend 2, BFD 100 ms x 3", "upstream_isp_b"),
        ("router_border_a", "iBGP IPv6, BFD", "router_border_b"),
    }


@pytest.mark.parametrize("stack", LIVE)
def test_live_formats_are_well_formed_and_agree(stack):
    plan = load_plan(stack)
    assert_well_formed_mermaid(mermaid(plan, LIVE[stack]))
    assert coloured(mermaid(plan, LIVE[stack])) == coloured(dot(plan, LIVE[stack]))


def test_nothing_observed_is_all_red_and_says_so():
    text = mermaid(load_plan("dev"), Observed({}, {}, {}))
    assert {e: c for e, c in coloured(text).items() if c} == {
        ("router_border", "eBGP, local-pref 100: no answer", "upstream_isp"): "red",
        ("router_border", "eBGP IPv6, local-pref 100: no answer", "upstream_isp"): "red",
        ("node_node1", "WireGuard: no answer", "router_border"): "red",
        ("node_node2", "WireGuard: no answer", "router_border"): "red",
    }


def test_a_stale_handshake_and_a_session_not_established_turn_red():
    seen = Observed({("border", "peer_isp"): "Connect", ("border", "peer6_isp"): "Established"}, {}, {("node1", "border"): 180.0, ("node2", "border"): 179.9})
    assert {e: c for e, c in coloured(dot(load_plan("dev"), seen)).items() if c} == {
        ("router_border", "eBGP, local-pref 100: Connect", "upstream_isp"): "red",
        ("router_border", "eBGP IPv6, local-pref 100: Established", "upstream_isp"): "green",  # each family's session by itself
        ("node_node1", "WireGuard: handshake 180 s ago", "router_border"): "red",
        ("node_node2", "WireGuard: handshake 179 s ago", "router_border"): "green",
    }


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed (scripts/bootstrap installs it)")
def test_live_dot_renders_the_colours_to_svg():
    svg = subprocess.run(["dot", "-Tsvg"], input=dot(load_plan("lab"), LAB_MIXED), capture_output=True, text=True, timeout=30, check=True).stdout
    strokes = [p.get("stroke") for p in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}path")]
    assert strokes.count(COLOURS[True]) == 5 and strokes.count(COLOURS[False]) == 6, strokes


FAKE_DOCKER = r"""#!/bin/sh
while [ "$1" != exec ] && [ $# -gt 0 ]; do shift; done
shift; container=$1; shift
case "$container $*" in
  "bgp4mesh-dev-border birdc show protocols")
    printf 'BIRD 2.0.12 ready.\nName       Proto      Table      State  Since         Info\n'
    printf 'device1    Device     ---        up     2026-12-06 20:56:30\npeer_isp   BGP        ---        up     2026-12-06 20:56:30  Established\n'
    printf 'peer6_isp  BGP        ---        start  2026-12-06 20:56:30  Active        Socket: Connection refused\n' ;;
  "bgp4mesh-dev-border wg show netmaker public-key") echo 'Qm9yZGVyS2V5=' ;;
  "bgp4mesh-dev-node1 wg show netmaker latest-handshakes") printf 'Qm9yZGVyS2V5=\t%s\nT3RoZXI=\t0\n' "$(( $(date +%s) - 10 ))" ;;
  "bgp4mesh-dev-node2 wg show netmaker latest-handshakes") printf 'Qm9yZGVyS2V5=\t0\n' ;;
  *) echo "Error response from daemon: container $container is not running" >&2; exit 1 ;;
esac
"""


def test_cli_live_reads_the_containers_as_verify_does(tmp_path, monkeypatch, capsys):
    """`graph --live` through a docker CLI that answers like a dev stack whose IPv4 session is
    up and IPv6 session is not, node1's tunnel fresh and node2's never handshaken (the border's
    own `wg` does not answer)."""
    exe = tmp_path / "docker"
    exe.write_text(FAKE_DOCKER)
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert cli.main(["graph", "--stack", "dev", "--format", "dot", "--live"]) == 0
    live = {e: c for e, c in coloured(capsys.readouterr().out).items() if c}
    node1 = next(e for e in live if e[0] == "node_node1")
    assert re.fullmatch(r"WireGuard: handshake (10|11|12) s ago", node1[1]), node1
    assert live == {
        ("router_border", "eBGP, local-pref 100: Established", "upstream_isp"): "green",
        ("router_border", "eBGP IPv6, local-pref 100: Active", "upstream_isp"): "red",
        node1: "green",
        ("node_node2", "WireGuard: no handshake", "router_border"): "red",
    }
