"""Unit tier: the harness' generated stacks (harness.generated), the phases read from an
engine event log (harness.events), and `./scripts/lab` finding a stack that exists only
in the config the engine last ran it with (harness.labctl)."""

from __future__ import annotations

import json
from ipaddress import IPv4Network

import pytest
import yaml

from bgp4mesh.addressing import underlay_plan
from bgp4mesh.stack import load_file
from harness import engine, events, labctl
from harness.generated import SLOTS, config_with_nodes, generated, node_names, set_nodes


def lab_subnets(cfg) -> list[IPv4Network]:
    """Every Docker network a lab stack makes: underlay, its control /28, links, exchange."""
    nets = [cfg.lab.underlay, underlay_plan(cfg).control, *(u.link for u in cfg.upstreams)]
    return nets + ([cfg.lab.exchange] if cfg.lab.exchange else [])


@pytest.mark.parametrize("name", sorted(SLOTS))
def test_generated_stacks_keep_clear_of_the_shipped_labs_and_each_other(name):
    cfg = generated(name, 110).model()
    taken = [n for shipped in ("dev", "lab") for n in lab_subnets(load_file(shipped))]
    taken += [IPv4Network("172.31.8.0/24"), IPv4Network("172.30.8.0/24")]  # daytwo (tests/test_live_engine.py)
    taken += [IPv4Network("172.31.48.0/20"), IPv4Network("172.31.64.0/28"), IPv4Network("172.30.48.0/24")]  # the join helper's stacks
    taken += [n for other in SLOTS if other != name for n in lab_subnets(generated(other, 110).model())]
    clashes = [(mine, theirs) for mine in lab_subnets(cfg) for theirs in taken if mine.overlaps(theirs)]
    assert not clashes


def test_generated_stack_is_dev_with_its_nodes():
    config = config_with_nodes(SLOTS["bench"], node_names(3))
    nodes = config["bgp4mesh:mesh"]["nodes"]
    assert [n["name"] for n in nodes] == ["node1", "node2", "node3"]
    assert nodes[0]["ip"] == "44.30.127.10" and nodes[0]["inbound"] == ["tcp/8080"]  # node1 as in dev
    assert nodes[1] == {"name": "node2"} and nodes[2] == {"name": "node3"}
    stack = generated("bench", 3)
    set_nodes(stack, node_names(2, first=2))
    assert [n.name for n in stack.model().mesh.nodes] == ["node2", "node3"]


def _event(kind: str, op: str, urn: str, at: int) -> str:
    return json.dumps({"timestamp": at, kind: {"metadata": {"op": op, "urn": urn}}})


JOIN = "urn:pulumi:s::bgp4mesh::bgp4mesh:index:MeshNode$command:local:Command::node2-join"
GATE = "urn:pulumi:s::bgp4mesh::bgp4mesh:index:BorderRouter$command:local:Command::border-address-applied"
CONTAINER = "urn:pulumi:s::bgp4mesh::bgp4mesh:index:MeshNode$docker:index/container:Container::node2-netclient"
KEY = "urn:pulumi:s::bgp4mesh::bgp4mesh:index:MeshNode$pulumi-python:dynamic/bgp4mesh:EnrollmentKey::node3-key"
CONVERGED = "urn:pulumi:s::bgp4mesh::command:local:Command::node2-converged"


def test_join_phase_spans_the_steps_inside_mesh_joins(tmp_path):
    log = tmp_path / "events.jsonl"
    log.write_text("\n".join([
        _event("resourcePreEvent", "create", CONTAINER, 100),
        _event("resourcePreEvent", "same", KEY, 101),  # unchanged: no step
        _event("resourcePreEvent", "create", JOIN, 105),
        _event("resOutputsEvent", "create", CONTAINER, 106),
        _event("resOutputsEvent", "create", JOIN, 131),
        _event("resourcePreEvent", "create", GATE, 132),
        _event("resOutputsEvent", "create", GATE, 134),
        _event("resourcePreEvent", "create", CONVERGED, 135),  # not a join resource
        _event("resourcePreEvent", "create", CONTAINER.replace("node2", "node9"), 140),
        json.dumps({"timestamp": 141, "summaryEvent": {}}),
    ]))
    phase = events.phase(log, events.in_joins)
    assert (phase.start, phase.end, phase.seconds, phase.steps) == (105, 134, 29, 2)
    assert events.phase(log, lambda urn: False) is None


def test_lab_finds_a_stack_known_only_by_the_config_it_ran_with(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "CACHE", tmp_path)
    config = config_with_nodes(SLOTS["downfail"], node_names(2))
    engine.ran_with("downfail").parent.mkdir(parents=True)
    engine.ran_with("downfail").write_text(yaml.safe_dump({"config": config, "encryptionsalt": "x"}))
    assert labctl.stack_for("downfail").config == config
    assert labctl.stack_for("dev").config["bgp4mesh:lab"]["underlay"] == "172.31.0.0/24"  # shipped: its own file
