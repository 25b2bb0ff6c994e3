"""`python -m bgp4mesh graph`: the plan drawn as Mermaid and Graphviz dot (no Docker).

Golden files under tests/golden/ hold each shipped stack's picture in both formats; a change
to the output fails here until they are regenerated on purpose and the diff reviewed:

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
from bgp4mesh.graph import dot, mermaid
from bgp4mesh.plan import StackPlan
from bgp4mesh.stack import load_plan, plan_stack, raw_from_file

GOLDEN = Path(__file__).parent / "golden"
STACKS = ("dev", "lab", "staging-ha")
FORMATS = {"mermaid": (mermaid, "mmd"), "dot": (dot, "dot")}
MERMAID_NODE = re.compile(r'^ *(\w+)(\["|\{\{"|\[\("|\(\("|\("|\[/"|>")(.*?)("\]|"\}\}|"\)\]|"\)\)|"\)|"/\])$')
MERMAID_EDGE = re.compile(r'^ *(\w+) (---|===|-\.-)\|"([^"]*)"\| (\w+)$')
DOT_EDGE = re.compile(r'^ *(\w+) -- (\w+) \[label="((?:[^"\\]|\\.)*)", style=\w+\];$')


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
    assert [e for e in edges(text) if e[1].startswith("iBGP")] == [("router_border_a", "iBGP, BFD", "router_border_b")]
    assert labelled(text, "member, egress gateway 1 (preferred)") == [("router_border_a", "mesh_bgp4mesh")]
    assert labelled(text, "member, egress gateway 2") == [("router_border_b", "mesh_bgp4mesh")]
    assert labelled(text, "member") == [("node_node1", "mesh_bgp4mesh"), ("node_node2", "mesh_bgp4mesh")]
    assert labelled(text, "eBGP 172.30.18.3") == [("probe_probe", "exchange_exchange")]
    assert 'probe_probe>"probe<br/>AS 65010<br/>192.0.2.1"]' in text
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
