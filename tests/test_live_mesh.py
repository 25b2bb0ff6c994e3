"""Live tier, mesh: the dev stack end to end on the real Docker engine. Internet
(the mock ISP's test address) reaches every mesh node through BGP and WireGuard,
every node reaches the Internet through the border's egress gateway, nodes reach
each other, and the lab survives restarts of its parts."""

from __future__ import annotations

import json
import subprocess
import time
from ipaddress import ip_address

from bgp4mesh.birdc import Target, protocols
from bgp4mesh.naming import docker_name
from bgp4mesh.naming import bird_protocol
from bgp4mesh.stack import load_file
from bgp4mesh.verify import MESH_INTERFACE, build_checks, mesh_ip, run_checks
from bgp4mesh.docker_cli import docker
from tests.live import eventually, server_secrets
from tests import plans

CFG = load_file("dev")
NODES = [n.name for n in CFG.mesh.nodes]


def container(name: str) -> Target:
    return Target(docker_name("dev", name))


def verify_all(wait: float = 60) -> list[str]:
    lines: list[str] = []
    code = run_checks(build_checks(plans.of(CFG), "dev"), wait, lines.append)
    assert code == 0, "\n".join(lines)
    return lines


def node_identity(name: str) -> str:
    """The netclient host id kept on the node's identity volume."""
    text = container(name).run("cat", "/etc/netclient/netclient.json").stdout
    return json.loads(text)["id"]


def test_outputs_report_mesh_addresses_and_hide_secrets(dev_lab):
    out = dev_lab.outputs
    assert out["border_routers"]["border"]["mesh_ip"] == "44.30.127.1"  # pinned in config
    assert out["mesh_nodes"]["node1"] == "44.30.127.10"  # pinned in config
    auto = ip_address(out["mesh_nodes"]["node2"])  # assigned by Netmaker
    assert auto in CFG.mesh.range and str(auto) not in ("44.30.127.1", "44.30.127.10")
    assert out["border_routers"]["border"]["upstream_sessions"] == [
        {"upstream": "isp", "peer": "172.30.0.1", "asn": 65001}, {"upstream": "isp", "peer": "2001:db8:ac1e::1", "asn": 65001}]
    assert out["netmaker_endpoint"] == "nm.lab:443"
    assert not {"netmaker_master_key", "enrollment_token"} & set(out), "no credential is a stack output"
    # The addresses are real: each container holds the address the outputs report.
    for name in NODES:
        assert mesh_ip(container(name)) == out["mesh_nodes"][name]


def test_no_member_container_shows_the_enrollment_token(dev_lab):
    """The token went in on netclient-join's stdin: not in the environment, the
    config or any file left in the container, and the key it belongs to expires."""
    members = ["border", *NODES]
    for name in members:
        info = docker("inspect", docker_name("dev", name))
        assert "TOKEN" not in info.upper(), name
        left = container(name).run("sh", "-c", "grep -rl 'eyJzZXJ2ZXIi' /etc /run 2>/dev/null || true").stdout
        assert left.strip() == "", f"{name} keeps a token in {left}"
    with _client(dev_lab.outputs) as api:
        keys = [k for k in api.list_enrollment_keys() if CFG.mesh.network in (k.get("networks") or [])]
    from bgp4mesh.providers.enrollment_key import parse_time

    live_keys = [k["tags"] for k in keys if k.get("unlimited") or k.get("uses_remaining") or (parse_time(k.get("expiration")) or 0) > time.time()]
    assert keys and not live_keys, f"keys that still admit a member: {live_keys}"


def _client(outputs: dict):
    """An API client with the master key read from the server container (the program
    exports no credential)."""
    from bgp4mesh.netmaker_api import NetmakerClient

    key = server_secrets("dev")["masterkey"]
    return NetmakerClient(outputs["netmaker_api"], key, outputs["netmaker_ca_certificate"])


def test_internet_and_mesh_traffic_end_to_end(dev_lab):
    lines = verify_all()
    inbound = [line for line in lines if line.startswith("PASS ping inbound ")]
    assert len(inbound) == 1 and inbound[0].endswith(f"-> every node: all {len(NODES)} answer"), inbound  # one batch from the ISP
    (isp,) = plans.of(CFG).isps
    for node in NODES:  # each node: the other nodes and the ISP's test address, in one check
        assert f"PASS ping {node} -> every other node, {isp.name} {isp.test_address}: all {len(NODES)} answer" in lines, lines
    assert any(line.startswith("PASS mesh border: WireGuard handshakes") for line in lines)


def test_no_lab_packet_can_leave_the_machine(dev_lab):
    nets = docker("network", "ls", "-q", "--filter", "label=bgp4mesh.stack=dev").split()
    assert len(nets) == 3  # the ISP link, the underlay and the control plane's own network
    bridges, dual = set(), []
    for net in nets:
        info = json.loads(docker("network", "inspect", net))[0]
        assert info["Internal"] is True, info["Name"]
        bridges.add(f"br-{info['Id'][:12]}")
        dual += [info["Name"]] if info["EnableIPv6"] else []
    assert dual == ["bgp4mesh-dev-link-isp"], dual  # IPv6: test_no_lab_ipv6_packet_is_forwarded_off_its_bridge
    # Our only forwarding exception accepts what enters and leaves the same lab bridge.
    listed = subprocess.run(["iptables", "-S", "DOCKER-USER"], capture_output=True, text=True, check=True).stdout
    rules = [r for r in listed.splitlines() if any(b in r for b in bridges)]
    assert len(rules) == len(bridges)
    for rule in rules:
        parts = rule.split()
        assert parts[parts.index("-i") + 1] == parts[parts.index("-o") + 1], rule


LEAK_NET, LEAK_SUBNET = "bgp4mesh-leakcheck", "2001:db8:eeee::/64"
"""A throwaway IPv6 network outside the lab (not labelled, so no stack's), standing in for
the world beyond the lab's bridges; it is on this machine, so nothing leaves if a check fails."""


SEND = ("import socket, sys, time\ns = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
        "for _ in range(10):\n    s.sendto(b'leak', (sys.argv[1], 9)); time.sleep(0.5)\n")
"""Ten UDP datagrams over 5 s: a bridge made for the sender has its IPv6 address only after
duplicate address detection (a second or two), so the first ones may go nowhere."""


def _forwarded_to(listener: str, sender_network: str, image: str, address: str) -> bool:
    """Whether a container on `sender_network` (which Docker gives a default route to its
    bridge) gets datagrams through to `address`, as `listener` (tcpdump) sees them."""
    docker("run", "--rm", "--network", sender_network, "--entrypoint", "python3", image, "-c", SEND, address)
    time.sleep(1)
    return f"> {address}.9: UDP" in docker("logs", listener)


def test_no_lab_ipv6_packet_is_forwarded_off_its_bridge(dev_lab):
    """Debian's Docker 20.10 turns the host's IPv6 forwarding on and writes no ip6tables
    rules, and a container on a dual-stack lab network gets a default route to its bridge.
    A container on the lab's link network sends to a host on another IPv6 network of this
    machine: nothing arrives, while the same from a network outside the lab does."""
    from harness import sim

    image = sim.sim_image(sim.SCAN_IMAGE)
    listener, outside = "bgp4mesh-leakcheck-listener", "bgp4mesh-leakcheck-outside"
    for net in (LEAK_NET, outside):
        docker("network", "rm", net, check=False)
    docker("network", "create", "--internal", "--ipv6", "--subnet", "172.29.250.0/24", "--subnet", LEAK_SUBNET, LEAK_NET)
    docker("network", "create", "--internal", "--ipv6", "--subnet", "172.29.251.0/24", "--subnet", "2001:db8:eeef::/64", outside)
    try:
        docker("run", "-d", "--name", listener, "--network", LEAK_NET, "--ip6", "2001:db8:eeee::10", "--cap-add", "NET_RAW",
               "--cap-add", "NET_ADMIN", "--entrypoint", "tcpdump", image, "-i", "any", "-n", "-l", "ip6 and udp port 9")
        time.sleep(2)
        assert not _forwarded_to(listener, docker_name("dev", "link-isp"), image, "2001:db8:eeee::10"), docker("logs", listener)
        assert _forwarded_to(listener, outside, image, "2001:db8:eeee::10"), "the host forwards nothing at all: the check above proves nothing"
    finally:
        docker("rm", "-f", listener, check=False)
        for net in (LEAK_NET, outside):
            docker("network", "rm", net, check=False)


def test_border_restart_keeps_session_mesh_and_addresses(dev_lab):
    before = {n: mesh_ip(container(n)) for n in ["border", *NODES]}
    started = time.monotonic()
    docker("restart", docker_name("dev", "border"))
    eventually(lambda: protocols(container("isp"))[bird_protocol("border")].info == "Established", wait=30, what="session back")
    verify_all(wait=90)
    print(f"border restart: all checks pass again after {time.monotonic() - started:.1f}s")
    assert {n: mesh_ip(container(n)) for n in ["border", *NODES]} == before


def test_mesh_node_restart_keeps_identity_and_address(dev_lab):
    name = NODES[-1]
    ident, ip = node_identity(name), mesh_ip(container(name))
    started = time.monotonic()
    docker("restart", docker_name("dev", name))
    eventually(lambda: mesh_ip(container(name)) == ip, wait=60, what=f"{name} back on {ip}")
    verify_all(wait=90)
    print(f"{name} restart: all checks pass again after {time.monotonic() - started:.1f}s")
    assert node_identity(name) == ident


def test_the_converge_gate_repairs_a_node_that_lost_its_gateway_peer(dev_lab):
    """wireguard-go can refuse a reconfigure (its listen port briefly taken: "wguser:
    errno=-98") and leave the interface without its peers, which netclient does not retry.
    The gate (netclient-converge) waits for the handshake, then pulls, which restarts the
    daemon; the peer comes back and traffic through the gateway flows again. (One run found
    the peer list empty right after the gate passed: the restart was still rebuilding it.)"""
    node = container(NODES[-1])
    wants = [w for w in plans.of(CFG).node_wants if w.startswith("gateway:")]
    assert wants, "the dev stack's nodes wait for a gateway handshake"
    gateway = wants[0].split(":", 1)[1] + "/32"

    def gateway_peers() -> list[str]:
        dump = node.run("wg", "show", MESH_INTERFACE, "dump").stdout.splitlines()[1:]
        return [line.split("\t")[0] for line in dump if gateway in line.split("\t")[3].split(",")]

    [key] = gateway_peers()
    assert node.run("wg", "set", MESH_INTERFACE, "peer", key, "remove").returncode == 0
    assert gateway_peers() == []
    gate = node.run("env", "NETCLIENT_HANDSHAKE_SECONDS=5", "NETCLIENT_CONVERGE_SECONDS=90", "netclient-converge", *wants, timeout=120)
    assert gate.returncode == 0, gate.stderr
    assert "netclient pull" in gate.stderr and "(pulls: 0)" not in gate.stdout, (gate.stdout, gate.stderr)
    # the pull's daemon restart rebuilds the interface after the gate may have seen the
    # handshake: the peer is back once that restart has configured it
    eventually(lambda: gateway_peers() == [key], wait=60, what="the gateway's peer back on the interface")
    verify_all(wait=90)


def test_tunnels_keep_passing_traffic_while_netmaker_is_down(dev_lab):
    server = "bgp4mesh-dev-netmaker-server"
    docker("stop", server)
    try:
        assert docker("inspect", "-f", "{{.State.Running}}", server) == "false"
        lines: list[str] = []
        run_checks([c for c in build_checks(plans.of(CFG), "dev") if not c.name.startswith("mesh bgp4mesh: no reusable")], 30, lines.append)
        failed = [line for line in lines if line.startswith("FAIL")]
        assert not failed, "\n".join(lines)  # every check but the one that asks Netmaker for its keys
        # per family: inbound to every node (one batch); each node to every other one and the Internet
        for word in ("ping", "ping6"):
            assert sum(line.startswith(f"PASS {word} ") for line in lines) == 1 + len(NODES), (word, lines)
    finally:
        docker("start", server)
