"""Live tier, `graph --live`: the dev stack drawn from what its containers show, through
the real command. The failure comes from outside: the mock ISP's container is stopped (an
upstream gone), the picture turns that session red while the mesh stays green, and after
`docker start` the session is green again exactly when the ISP itself shows it
Established."""

from __future__ import annotations

import re
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
SESSION, SESSION6 = ("router_border", "upstream_isp", "eBGP"), ("router_border", "upstream_isp", "eBGP IPv6")
SESSIONS = (SESSION, SESSION6)
TUNNELS = {("node_node1", "router_border", "WireGuard"), ("node_node2", "router_border", "WireGuard")}


def drawn(fmt: str) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(source, target, kind: the label up to its first ',' or ':') -> (label, colour) of every
    coloured edge of `graph --live` (the border and the ISP have a session per family)."""
    proc = subprocess.run([sys.executable, "-m", "bgp4mesh", "graph", "--stack", STACK, "--format", fmt, "--live"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {(s, t, re.split("[,:]", label)[0]): (label, colour) for (s, label, t), colour in coloured(proc.stdout).items() if colour}


def healthy(fmt: str = "dot") -> dict[tuple[str, str, str], tuple[str, str]]:
    live = drawn(fmt)
    assert set(live) == {*SESSIONS} | TUNNELS, live
    assert all(colour == "green" for _, colour in live.values()), live
    return live


def test_the_running_stack_is_drawn_green_in_both_formats(dev_lab):
    live = eventually(healthy, wait=120, what="graph --live all green")
    assert live[SESSION][0] == "eBGP, local-pref 100: Established" and live[SESSION6][0] == "eBGP IPv6, local-pref 100: Established"
    assert all(label.startswith("WireGuard: handshake ") for edge, (label, _) in live.items() if edge in TUNNELS)
    assert healthy("mermaid")[SESSION] == live[SESSION]


def test_a_stopped_mock_isp_turns_its_session_red_and_back(dev_lab):
    eventually(healthy, wait=120, what="graph --live all green")
    docker("stop", ISP)
    try:
        def session_red() -> dict:
            live = drawn("dot")
            for session in SESSIONS:
                assert live[session][1] == "red" and not live[session][0].endswith(": Established"), live[session]
            return live

        live = eventually(session_red, wait=60, what="the session to the stopped ISP drawn red")
        assert all(live[t][1] == "green" for t in TUNNELS), live  # the mesh is not the upstream
    finally:
        docker("start", ISP)
    green = {SESSION: ("eBGP, local-pref 100: Established", "green"), SESSION6: ("eBGP IPv6, local-pref 100: Established", "green")}
    eventually(lambda: {s: drawn("dot")[s] for s in SESSIONS} == green, wait=120, what="the sessions green again")
    assert all(protocols(Target(ISP))[bird_protocol("border", v)].info.startswith("Established") for v in (4, 6))
