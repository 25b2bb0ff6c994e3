"""Live tier, scale (issue #18): a 30-node mesh through the real Pulumi engine. The
stack `scale` is the dev stack with node1..node30 (node1 pinned, the rest assigned by
Netmaker) on lab subnets of its own (harness.generated). Every `verify` check passes,
every node holds the mesh address the outputs report, and each answers a ping from the
mock ISP's Internet test address; `destroy` leaves nothing behind. The bench
(bench/scale_live.py) measures the same at 20, 50 and 100 nodes."""

from __future__ import annotations

import time
from ipaddress import ip_address

import pytest

from bgp4mesh.birdc import Target
from bgp4mesh.naming import docker_name
from bgp4mesh.verify import build_checks, mesh_ip, run_checks
from harness.generated import generated, node_names
from tests import plans
from tests.live import leftovers

STACK = "scale"
NODES = 30
WAIT = 180
"""Seconds each verify check may retry: 30 nodes' handshakes settle after the up."""


@pytest.fixture(scope="module")
def scale():
    stack = generated(STACK, NODES)
    stack.destroy()  # whatever an interrupted run left
    assert not leftovers(STACK), f"objects of stack {STACK} exist outside Pulumi's state: {leftovers(STACK)}"
    try:
        result = stack.up()  # inside: a failed up is destroyed too
        print(f"\n{NODES}-node up: {result.seconds:.1f}s")
        yield stack
    finally:
        stack.destroy()
        left = leftovers(STACK)
        assert not left, f"pulumi destroy left {left}"


@pytest.fixture(scope="module")
def verified(scale) -> list[str]:
    lines: list[str] = []
    started = time.monotonic()
    code = run_checks(build_checks(plans.of(scale.model()), STACK), WAIT, lines.append)
    print(f"verify: {time.monotonic() - started:.1f}s, {lines[-1]}")
    assert code == 0, "\n".join(line for line in lines if not line.startswith("PASS"))
    return lines


def test_every_verify_check_passes(verified):
    assert verified[-1].endswith(" 0 failed"), verified[-1]


def test_every_node_holds_its_mesh_address(scale):
    cfg, reported = scale.model(), scale.outputs()["mesh_nodes"]
    assert sorted(reported) == sorted(node_names(NODES))
    held = {name: mesh_ip(Target(docker_name(STACK, name))) for name in node_names(NODES)}
    assert held == reported
    assert len(set(held.values())) == NODES and all(ip_address(a) in cfg.mesh.range for a in held.values())


def test_every_node_answers_the_internet_test_address(scale, verified):
    """verify pings each node's mesh address from the mock ISP's test address (one batch,
    which passes only when every node answered)."""
    (isp,) = plans.of(scale.model()).isps
    inbound = [line for line in verified if line.startswith("PASS ping inbound ")]
    assert inbound == [f"PASS ping inbound {isp.name} {isp.test_address} -> every node: all {NODES} answer"], inbound
