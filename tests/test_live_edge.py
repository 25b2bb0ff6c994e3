"""Live tier, the edge (issue 16, sections 1 and 2) on the dev stack: seen from the mock
ISP's network namespace with its Internet test address 198.51.100.1, as an attacker on the
Internet would see it. Each member's public mesh address answers only on what its
`inbound` lists (node1: tcp/8080 in Pulumi.dev.yaml); spoofed sources from the upstream
never reach a node and the border counts them; a spoofed source sent out is dropped at the
border; the mesh's own traffic still flows.

Tools run in throwaway containers of the scan image (images/sim/scan: nmap, scapy, tcpdump,
curl, python3) joined to a lab container's namespace (`--network container:<name>`)."""

from __future__ import annotations

import re
from ipaddress import ip_address
import time
import xml.etree.ElementTree as ET

import pytest

from bgp4mesh.naming import docker_name
from bgp4mesh.stack import load_file
from bgp4mesh.docker_cli import docker
from harness import sim
from tests.live import eventually

CFG = load_file("dev")
PROBE = "198.51.100.1"  # the mock ISP's Internet test address (exempt from the lab's bogons)
ISP = docker_name("dev", "isp")
BORDER = docker_name("dev", "border")
NODE1, NODE2 = docker_name("dev", "node1"), docker_name("dev", "node2")
SPOOFED = {"44.30.127.2": "own source in", "10.1.2.3": "bogon source in", "192.168.1.1": "bogon source in"}
PORTS = "1-1024,5201,8000-8100,51821"




@pytest.fixture(scope="module")
def tools():
    """The scan image, built from images/sim/scan when missing or stale."""
    return sim.sim_image(sim.SCAN_IMAGE)


def inside(netns: str, image: str, entrypoint: str, *args: str, timeout: float = 600, check: bool = True) -> str:
    """A throwaway tool container in `netns`'s network namespace."""
    return docker("run", "--rm", "--network", f"container:{netns}", "--cap-add", "NET_RAW", "--cap-add", "NET_ADMIN",
                  "--entrypoint", entrypoint, image, *args, timeout=timeout, check=check)


def addresses(outputs: dict) -> dict[str, str]:
    return {"border": outputs["border_routers"]["border"]["mesh_ip"], **outputs["mesh_nodes"]}


def isp_interface() -> str:
    """The ISP's interface towards the border (nmap needs it with a chosen source)."""
    route = docker("exec", ISP, "ip", "-4", "route", "get", "44.30.127.10", "from", PROBE)
    return re.search(r" dev (\S+)", route).group(1)


def scan(image: str, targets: list[str]) -> dict[str, list[str]]:
    xml = inside(ISP, image, "nmap", "-n", "-Pn", "-sS", "-S", PROBE, "-e", isp_interface(), "-p", PORTS,
                 "--max-retries", "1", "-oX", "-", *targets)
    return open_ports(xml, targets)


def open_ports(xml: str, targets: list[str]) -> dict[str, list[str]]:
    """nmap's XML report: each target's open ports (`8080/tcp`)."""
    found: dict[str, list[str]] = {t: [] for t in targets}
    for host in ET.fromstring(xml).iter("host"):
        addr = host.find("address").get("addr")
        found[addr] = [f"{p.get('portid')}/{p.get('protocol')}" for p in host.iter("port") if p.find("state").get("state") == "open"]
    return found


def captured(image: str, netns: str, name: str, what: str, act) -> str:
    """What tcpdump (filter `what`) in `netns`'s namespace sees while `act()` runs."""
    docker("rm", "-f", name, check=False)
    docker("run", "-d", "--name", name, "--network", f"container:{netns}", "--cap-add", "NET_RAW", "--cap-add", "NET_ADMIN",
           "--entrypoint", "tcpdump", image, "-i", "any", "-n", "-l", what)
    try:
        time.sleep(2)
        act()
        time.sleep(2)
        return docker("logs", name)
    finally:
        docker("rm", "-f", name, check=False)


def counters(container: str, chain: str, tool: str = "iptables") -> dict[str, int]:
    """Packets dropped per counter comment (`bgp4mesh: <why>`) in `chain` (ip6tables: IPv6's)."""
    out = docker("exec", container, tool, "-w", "-nvxL", chain)
    found: dict[str, int] = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)\s+\d+\s+DROP\b.*/\* bgp4mesh: (.+?) \*/", line)
        if m:
            found[m.group(2)] = found.get(m.group(2), 0) + int(m.group(1))
    return found


class Listeners:
    """Web servers in node1's namespace: 8080 (listed in inbound) and 8081 (not)."""

    def __init__(self, image: str):
        self.names = []
        for port in (8080, 8081):
            name = f"bgp4mesh-dev-edge-listen-{port}"
            docker("rm", "-f", name, check=False)
            docker("run", "-d", "--name", name, "--network", f"container:{NODE1}", "--entrypoint", "python3", image,
                   "-m", "http.server", str(port), "--bind", "0.0.0.0")
            self.names.append(name)
        time.sleep(2)

    def close(self):
        for name in self.names:
            docker("rm", "-f", name, check=False)


@pytest.fixture(scope="module")
def listeners(dev_lab, tools):
    served = Listeners(tools)
    yield served
    served.close()


def curl_from_probe(image: str, url: str) -> str:
    return inside(ISP, image, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5", "--interface", PROBE, url, check=False)


def test_only_listed_ports_are_open_on_each_public_mesh_address(dev_lab, tools, listeners):
    public = addresses(dev_lab.outputs)
    found = scan(tools, list(public.values()))
    print("\nopen ports from", PROBE, found)
    # the border's looking glass is open to the ISP's test net, which looking_glass.allow lists
    assert ip_address(PROBE) in CFG.looking_glass.allow[0]
    assert found == {public["border"]: [f"{CFG.looking_glass.port}/tcp"], public["node1"]: ["8080/tcp"], public["node2"]: []}


def test_a_listener_on_a_listed_port_answers_and_one_on_another_port_does_not(dev_lab, tools, listeners):
    node1 = dev_lab.outputs["mesh_nodes"]["node1"]
    assert curl_from_probe(tools, f"http://{node1}:8080/") == "200"
    assert curl_from_probe(tools, f"http://{node1}:8081/") == "000"  # dropped: no answer, not even a reset
    # inside the mesh both answer: member to member is not filtered
    for port in (8080, 8081):
        docker("exec", NODE2, "bash", "-c", f"exec 3<>/dev/tcp/{node1}/{port}")


def test_spoofed_sources_from_the_upstream_never_reach_a_node_and_are_counted(dev_lab, tools):
    node1 = dev_lab.outputs["mesh_nodes"]["node1"]
    before = counters(BORDER, "BGP4MESH-SPOOF-IN")
    sources = [*SPOOFED, PROBE]  # the last one is genuine: proves the capture sees what arrives
    script = (f"from scapy.all import IP, ICMP, send\n"
              f"for s in {sources!r}:\n    send(IP(src=s, dst={node1!r})/ICMP(id=4242), count=5, verbose=False)\n")
    seen = captured(tools, NODE1, "bgp4mesh-dev-edge-capture", "icmp and icmp[icmptype] = icmp-echo",
                    lambda: inside(ISP, tools, "python3", "-c", script))
    assert f"{PROBE} > {node1}" in seen, seen
    for src in SPOOFED:
        assert f"{src} > " not in seen, f"spoofed {src} reached node1:\n{seen}"
    after = counters(BORDER, "BGP4MESH-SPOOF-IN")
    assert after.get("own source in", 0) - before.get("own source in", 0) >= 5
    assert after.get("bogon source in", 0) - before.get("bogon source in", 0) >= 10


def sent_upstream(tools: str, container: str, spoof: str, target: str) -> str:
    """What the ISP's namespace sees from `spoof` while `container` pings `target` from it."""
    prefix = 128 if ":" in spoof else 32
    docker("exec", container, "ip", "addr", "add", f"{spoof}/{prefix}", "dev", "lo")
    try:
        return captured(tools, ISP, "bgp4mesh-dev-edge-upstream", f"src host {spoof}",
                        lambda: docker("exec", container, "ping", "-c", "3", "-W", "1", "-I", spoof, target, check=False))
    finally:
        docker("exec", container, "ip", "addr", "del", f"{spoof}/{prefix}", "dev", "lo", check=False)


def test_the_border_sends_no_spoofed_source_upstream(dev_lab, tools):
    before = counters(BORDER, "BGP4MESH-SPOOF-OUT").get("spoofed source out", 0)
    seen = sent_upstream(tools, BORDER, "10.9.9.9", str(CFG.upstreams[0].neighbor))
    assert "10.9.9.9" not in seen, seen
    assert counters(BORDER, "BGP4MESH-SPOOF-OUT").get("spoofed source out", 0) - before >= 3


def test_a_node_sending_a_spoofed_source_out_is_dropped_at_the_border(dev_lab, tools):
    """WireGuard at the border takes from node1 only its own address's packets, and the
    border's rules let out only own prefixes: the ISP sees nothing from the spoofed source."""
    seen = sent_upstream(tools, NODE1, "10.9.9.9", PROBE)
    assert "10.9.9.9" not in seen, seen


def test_the_mesh_and_its_agents_still_work(dev_lab):
    public = addresses(dev_lab.outputs)
    docker("exec", NODE1, "ping", "-c", "2", "-W", "2", public["node2"])
    docker("exec", NODE2, "ping", "-c", "2", "-W", "2", public["border"])
    # netclient's port, the one the HA agents probe, answers inside the mesh
    docker("exec", NODE1, "bash", "-c", f"exec 3<>/dev/tcp/{public['node2']}/51821")
    docker("exec", ISP, "ping", "-c", "2", "-W", "2", "-I", PROBE, public["node2"])  # ICMP echo stays open
    for container in (BORDER, NODE1, NODE2):
        assert docker("exec", container, "iptables", "-w", "-S", "INPUT", "1").strip() == "-A INPUT -j BGP4MESH-INPUT"
    assert docker("exec", BORDER, "iptables", "-w", "-S", "FORWARD", "1").strip() == "-A FORWARD -j BGP4MESH-FORWARD"


def _first_rule(container: str, chain: str) -> str:
    return docker("exec", container, "iptables", "-w", "-S", chain, "1").strip()


def _watcher_children(container: str) -> set[str]:
    """What the edge watcher (its bash and subshells) runs right now, by command line."""
    rows = [line.split(None, 2) for line in docker("top", container, "-eo", "pid,ppid,args").splitlines()[1:]]
    watchers = {pid for pid, _, args in rows if "edge-firewall watch" in args}
    return {args for pid, ppid, args in rows if ppid in watchers and pid not in watchers}


def test_a_rule_put_ahead_of_the_edge_is_put_behind_it_on_the_change_itself(dev_lab):
    """netclient inserts its rules at the top of INPUT on every start and peer update.
    edge-firewall watch hears the change (xtables-monitor) and puts the edge's jump first
    again; between changes it runs nothing (a 2 s poll cost each member about 1 % of a core)."""
    rule = ["INPUT", "1", "-s", "192.0.2.99", "-j", "ACCEPT"]
    docker("exec", NODE1, "iptables", "-w", "-I", *rule)
    try:
        eventually(lambda: _first_rule(NODE1, "INPUT") == "-A INPUT -j BGP4MESH-INPUT", wait=10, every=0.1)
    finally:
        docker("exec", NODE1, "iptables", "-w", "-D", rule[0], *rule[2:])
    seen = []
    for _ in range(12):
        seen.append(_watcher_children(NODE1))
        time.sleep(0.5)
    assert all("xtables-monitor --event" in children for children in seen), seen
    assert not any(args.startswith("sleep") for children in seen for args in children), seen
