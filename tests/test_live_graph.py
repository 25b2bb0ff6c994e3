"""Live tier, `graph --live`: the dev stack drawn from what its containers show, through
the real command. The failure comes from outside: the mock ISP's container is stopped (an
upstream gone), the picture turns that session red while the mesh stays green, and after
`docker start` the session is green again exactly when the ISP itself shows it
Established."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bgp4mesh.birdc import Target, protocols
from bgp4mesh.docker_cli import docker
from bgp4mesh.naming import bird_protocol, docker_name
from tests.live import eventually
from tests.test_graph import coloured

ROOT = Path(__file__).resolve().parent.parent
STACK = "dev"
ISP = docker_name(STACK, "isp")
SESSION = ("router_border", "upstream_isp")
TUNNELS = {("node_node1", "router_border"), ("node_node2", "router_border")}


def drawn(fmt: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(source, target) -> (label, colour) of every coloured edge of `graph --live`."""
    proc = subprocess.run([sys.executable, "-m", "bgp4mesh", "graph", "--stack", STACK, "--format", fmt, "--live"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {(s, t): (label, colour) for (s, label, t), colour in coloured(proc.stdout).items() if colour}


def healthy(fmt: str = "dot") -> dict[tuple[str, str], tuple[str, str]]:
    live = drawn(fmt)
    assert set(live) == {SESSION} | TUNNELS, live
    assert all(colour == "green" for _, colour in live.values()), live
    return live


def test_the_running_stack_is_drawn_green_in_both_formats(dev_lab):
    live = eventually(healthy, wait=120, what="graph --live all green")
    assert live[SESSION][0] == "eBGP, local-pref 100: Established"
    assert all(label.startswith("WireGuard: handshake ") for edge, (label, _) in live.items() if edge in TUNNELS)
    assert healthy("mermaid")[SESSION] == live[SESSION]


def test_a_stopped_mock_isp_turns_its_session_red_and_back(dev_lab):
    eventually(healthy, wait=120, what="graph --live all green")
    docker("stop", ISP)
    try:
        def session_red() -> dict:
            live = drawn("dot")
            assert live[SESSION][1] == "red" and not live[SESSION][0].endswith(": Established"), live[SESSION]
            return live

        live = eventually(session_red, wait=60, what="the session to the stopped ISP drawn red")
        assert all(live[t][1] == "green" for t in TUNNELS), live  # the mesh is not the upstream
    finally:
        docker("start", ISP)
    eventually(lambda: drawn("dot")[SESSION] == ("eBGP, local-pref 100: Established", "green"), wait=120, what="the session green again")
    assert protocols(Target(ISP))[bird_protocol("border")].info.startswith("Established")
