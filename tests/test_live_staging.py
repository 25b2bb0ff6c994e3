"""Live tier, the prod code path on simulated remote hosts (`staging`, issue 9): the real
Pulumi engine deploys over SSH to hosts with their own Docker engines (harness/sim),
images come through the registry mirror, the TLS front gets its certificate from Pebble,
one node sits behind NAT, the upstream ISP (not ours: started by the fixture) peers with
TCP-MD5. Every check goes over SSH or through the simulated Internet, as an operator's would."""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import sys
import time
from ipaddress import ip_address, ip_network

import pytest

from bgp4mesh.birdc import protocols, routes
from bgp4mesh.naming import docker_name
from bgp4mesh.naming import bird_protocol
from bgp4mesh.netmaker_api import NetmakerClient
from bgp4mesh.stack import load_file
from harness import sim
from harness.engine import CACHE, EngineError, Stack
from tests.live import RemoteDeployment as Deployment, eventually, staging_deployed
from tests.prometheus_api import all_up, alerts, firing, plan_targets, query, wait_for
from tests.test_live_edge import captured, counters, inside, open_ports

STACK = "staging"
PROBE = "198.51.100.1"  # the ISP's Internet test address
PUBLIC = {"edge": "203.0.113.10", "control": "203.0.113.20", "node-a": "203.0.113.30", "node-b": "203.0.113.40"}


def netmaker(d: Deployment) -> NetmakerClient:
    """The Netmaker API as the stack's resources reach it (connection from the state)."""
    state = json.loads(d.stack.run("stack", "export", "--show-secrets").stdout)
    network = next(r for r in state["deployment"]["resources"] if r["type"].endswith("NetmakerNetwork"))
    conn = network["outputs"]["connection"]
    conn = json.loads(conn["plaintext"]) if "plaintext" in conn else conn
    return NetmakerClient(conn["api_url"], conn["master_key"], ca_pem=conn.get("ca_pem"))


def verify(wait: float = 60) -> subprocess.CompletedProcess:
    """The operator's `verify`, reading the stack config the engine ran with."""
    return subprocess.run(
        [sys.executable, "-m", "bgp4mesh", "verify", "--stack", STACK, "--project-dir", str(CACHE / "stacks"), "--wait", str(wait)],
        capture_output=True, text=True, timeout=900,
    )


@pytest.fixture(scope="module")
def deployed():
    yield from staging_deployed(STACK)


def test_verify_passes_over_ssh_and_outputs_name_every_address(deployed):
    proc = verify()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS ping node-b -> every other node, transit 198.51.100.1: all 2 answer" in proc.stdout and "FAIL" not in proc.stdout
    assert "PASS ping6 node-b -> every other node, transit 2001:db8:5100::1: all 2 answer" in proc.stdout, proc.stdout
    out = deployed.outputs
    assert out["mesh_nodes"]["node-a"] == "44.30.127.10"
    assert out["mesh_nodes"]["node-b"].startswith("44.30.127.")
    assert out["border_routers"]["border"]["upstream_sessions"] == [{"upstream": "transit", "peer": "192.0.2.9", "asn": 65001},
                                                                    {"upstream": "transit", "peer": "2001:db8:ac2e::9", "asn": 65001}]
    assert out["border_routers"]["border"]["internet_gateway"] is True
    assert out["netmaker_endpoint"] == "nm.staging.test:443"


def test_a_second_up_changes_nothing(deployed):
    """Host preparation and every join and gate are idempotent: a preview right after `up`
    plans no change."""
    deployed.stack.preview("--expect-no-changes")


def test_every_image_runs_the_digest_the_registry_served(deployed):
    """Staging pins every image it pulls by digest (from the simulated registry), so each
    host pulled `name@sha256:...` and runs exactly those bytes."""
    state = json.loads(deployed.stack.run("stack", "export").stdout)
    pulled = [r["inputs"]["name"] for r in state["deployment"]["resources"] if r["type"] == "docker:index/remoteImage:RemoteImage"]
    assert pulled and all("@sha256:" in name for name in pulled), pulled
    assert {name.split("@")[1] for name in pulled} <= set(deployed.info["digests"].values()), (pulled, deployed.info["digests"])
    border = deployed.out("edge", f"docker image inspect -f '{{{{json .RepoDigests}}}}' $(docker inspect -f '{{{{.Image}}}}' {docker_name(STACK, 'border')})")
    assert any(d.split("@")[1] in border for d in pulled if "/border" in d), (border, pulled)


def test_inbound_from_the_isp_reaches_every_public_mesh_address(deployed):
    for node, address in deployed.outputs["mesh_nodes"].items():
        proc = subprocess.run(["docker", "exec", sim.PREFIX + "isp", "ping", "-c", "2", "-W", "2", "-I", PROBE, address], capture_output=True, text=True)
        assert proc.returncode == 0, f"{PROBE} -> {node} {address}: {proc.stdout}"


def test_node_behind_nat_found_its_endpoint_with_stun(deployed):
    """node-b has no configured endpoint: netclient learned 203.0.113.40 (the NAT's public
    address) from the simulated Internet's public-IP service and STUN, and tunnels work."""
    env = json.loads(deployed.out("node-b", f"docker inspect -f '{{{{json .Config.Env}}}}' {docker_name(STACK, 'node-b')}"))
    assert not any(e.startswith("NETCLIENT_ENDPOINT=") for e in env) and "NETCLIENT_OFFLINE=0" in env
    with netmaker(deployed) as client:
        host = client.find_host_by_name("node-b")
    assert (host["endpointip"], host["nat_type"]) == (sim.NAT_WAN, "behind_nat")
    assert host["isstatic"] is False


def test_without_a_kernel_wireguard_module_members_fall_back_to_userspace(deployed):
    """This kernel has no wireguard module: netclient uses wireguard-go, and says so."""
    logs = deployed.out("node-a", f"docker logs {docker_name(STACK, 'node-a')} 2>&1")
    assert "WireGuard: no kernel module on this host; netclient runs it in userspace" in logs


def test_host_keeps_its_management_route_while_the_kernel_holds_what_bgp_learned(deployed):
    bird_routes = deployed.out("edge", f"ip -4 route show table {KERNEL_TABLE} proto bird")  # BGP's own table
    assert "default via 192.0.2.9" in bird_routes and "198.51.100.0/24 via 192.0.2.9" in bird_routes
    defaults = deployed.out("edge", "ip -4 route show default").splitlines()
    management = [r for r in defaults if "via 203.0.113.1" in r]
    assert management and "metric" not in management[0], defaults  # metric 0: it still wins
    assert deployed.out("edge", "echo reachable") == "reachable"


def test_only_the_roles_ports_are_open_from_the_internet(deployed):
    found = sim.scan(list(PUBLIC.values()))
    print("\nopen ports from the simulated Internet:", json.dumps(found))
    assert found == {
        PUBLIC["edge"]: ["22/tcp"],  # BGP is admitted from the ISP's address alone
        PUBLIC["control"]: ["22/tcp", "80/tcp", "443/tcp"],
        PUBLIC["node-a"]: ["22/tcp"],
        PUBLIC["node-b"]: [f"{sim.NAT_SSH_PORT}/tcp"],  # the home router's port-forward
    }
    rules = deployed.out("edge", "nft list table inet bgp4mesh")
    assert 'ip saddr 192.0.2.9 tcp dport 179 accept comment "BGP from transit"' in rules


def test_an_outsider_on_the_internet_gets_no_admin_route(deployed):
    """From the scanner's address (neither an operator's nor a member's): every admin and
    user route answers 403 at the control host's front, what netclients call still reaches
    Netmaker, and the place of the super-admin is taken by bgp4mesh's."""
    from tests.test_live_control import ANSWERED, REFUSED

    codes = sim.outsider_http(sim.NETS["internet"].name, sim.SCAN_ADDRESS, "nm.staging.test", PUBLIC["control"], REFUSED + list(ANSWERED))
    print("\nthe front as an outsider sees it:", json.dumps({f"{m} {p}": c for (m, p), c in codes.items()}))
    assert {c: codes[c] for c in REFUSED} == {c: 403 for c in REFUSED}
    assert {c: codes[c] for c in ANSWERED} == ANSWERED
    with netmaker(deployed) as api:
        assert [(u["username"], u["issuperadmin"]) for u in api.list_users()] == [(deployed.cfg.netmaker.admin_user, True)]
        assert api.server_settings()["basic_auth"] is False


def test_md5_password_is_needed_and_never_in_clear(deployed):
    border = deployed.target("border", "edge")
    peer = bird_protocol("transit")
    password = deployed.info["isp"]["md5_password"]
    sim.set_isp_password("not-the-password")
    try:
        eventually(lambda: not protocols(border)[peer].info.startswith("Established"), 30, what="session down with a wrong password")
        for _ in range(6):  # three hold times: it never comes up
            assert not protocols(border)[peer].info.startswith("Established")
            time.sleep(4.5)
    finally:
        sim.set_isp_password(password)
    eventually(lambda: protocols(border)[peer].info.startswith("Established"), 60, what="session back with the right password")
    assert password not in deployed.stack.state()
    assert password not in deployed.stack.config_file.read_text()
    container = docker_name(STACK, "border")
    assert deployed.out("edge", f"docker exec {container} stat -c %a /etc/bird/bird.conf") == "600"
    assert password not in deployed.out("edge", f"docker inspect {container}")


def test_verify_fails_and_the_session_alert_fires_while_the_isp_is_down(deployed):
    """The ISP stopped: verify fails naming the session, and the control host's Prometheus
    fires BgpSessionDown from the border's exporter; both clear once it is back."""
    session = {"router": "border", "peer": "transit"}
    wait_for(lambda: not alerts(deployed, "BgpSessionDown", **session), wait=60, what="no BgpSessionDown before the stop")
    sim.stop_isp()
    try:
        proc = verify(wait=15)
        assert proc.returncode == 1 and "FAIL bgp border -> transit (AS 65001) Established" in proc.stdout, proc.stdout
        # two 10 s scrapes and an evaluation; a loaded CI machine gets twice that
        fired = wait_for(lambda: firing(deployed, "BgpSessionDown", **session), wait=60, every=2, what="BgpSessionDown firing")
        print(f"\nISP stopped -> BgpSessionDown firing on the control host: seen {fired:.1f}s after verify's 15 s")
    finally:
        sim.start_isp()
    assert verify().returncode == 0
    wait_for(lambda: not alerts(deployed, "BgpSessionDown", **session), wait=90, every=2, what="BgpSessionDown resolved")


# ---- monitoring on real hosts: Prometheus on the control host, exporters on the members' hosts ----


def test_prometheus_on_the_control_host_scrapes_every_reachable_member(deployed):
    """Every target of the plan is up, scraped from the control host's address over the
    Internet; the control-plane exporter reads Netmaker's API by its name (the control host
    resolves nm.staging.test) and the broker's loopback listener; node-b, behind NAT, is
    listed by Netmaker though no exporter of its own is reached."""
    expected = plan_targets(deployed.cfg)
    assert {(job, address) for job, address, _ in expected} == {
        ("bird", "203.0.113.10:9324"), ("member", "203.0.113.10:9586"), ("member", "203.0.113.30:9586"), ("control", "127.0.0.1:9587"),
    }
    wait_for(lambda: all_up(deployed, expected), wait=90, every=2, what="every planned target up")
    assert {r["metric"]["source"]: r["value"][1] for r in query(deployed, "bgp4mesh_control_scrape_ok")} == {"netmaker": "1", "broker": "1"}
    online = eventually(lambda: _online(deployed), wait=60, every=2, what="every member online in Netmaker")
    assert online == {"border": "1", "node-a": "1", "node-b": "1"}
    assert float(query(deployed, "bgp4mesh_broker_clients_connected")[0]["value"][1]) >= 3  # netmaker and the members


def _online(d: Deployment) -> dict[str, str]:
    found = {r["metric"]["member"]: r["value"][1] for r in query(d, "bgp4mesh_netmaker_member_online")}
    assert set(found.values()) == {"1"}, found
    return found


EXPORTERS = ("203.0.113.10:9586", "203.0.113.10:9324", "203.0.113.30:9586")


def test_exporters_answer_the_monitoring_hosts_address_alone(deployed):
    """From the control host (Prometheus's source) every exporter answers; from a member host
    (node-a, edge), which is on the Internet like anyone, the same ports time out. The scan
    from the Internet (test_only_the_roles_ports_are_open_from_the_internet) finds none of
    them, nor Prometheus (9090), Alertmanager (9093) or the broker's plain listener (1883)."""
    for address in EXPORTERS:
        assert "# TYPE " in deployed.out("control", f"curl -sf -m 10 http://{address}/metrics"), address
    for host, address in (("node-a", EXPORTERS[0]), ("node-a", EXPORTERS[1]), ("edge", EXPORTERS[2])):
        proc = deployed.on(host, f"curl -s -o /dev/null -m 5 http://{address}/metrics")
        assert proc.returncode == 28, f"{host} reached {address} (curl exit {proc.returncode}; 28 is a timeout: dropped)"


def test_certificate_survives_a_replaced_front(deployed):
    def serial() -> int:
        ctx = ssl.create_default_context(cadata=deployed.info["acme_root_pem"])
        with socket.create_connection((PUBLIC["control"], 443), timeout=10) as raw, ctx.wrap_socket(raw, server_hostname="nm.staging.test") as tls:
            return int(tls.getpeercert()["serialNumber"], 16)

    before = serial()
    urn = f"urn:pulumi:{STACK}::bgp4mesh::bgp4mesh:index:NetmakerServer$docker:index/container:Container::netmaker-tls"
    front = docker_name(STACK, "netmaker-tls")
    started = deployed.out("control", f"docker inspect -f '{{{{.Id}}}}' {front}")
    deployed.stack.up("--replace", urn)
    assert deployed.out("control", f"docker inspect -f '{{{{.Id}}}}' {front}") != started
    assert eventually(serial, 60, what="the new front answers") == before


def test_a_border_alone_clears_the_forwarding_a_two_router_deployment_left(deployed):
    """On a real host the border runs in the host's namespace, so border-health's rules
    and table 44 (inbound for the mesh sent to the active gateway over iBGP) outlive its
    container. Seen running staging-ha and then staging on the same hosts: the single
    border went on sending the mesh's inbound traffic to the gone border-b, and no node
    could reach the Internet. Here that leftover is planted and the border restarted: it
    clears it, and the ISP's test address reaches node-a again."""
    stale = "ip rule add pref 1003 to 44.30.127.0/24 lookup 44 && ip route replace 44.30.127.0/24 via 203.0.113.11 table 44"
    deployed.out("edge", stale)
    try:
        deployed.out("edge", f"docker restart {docker_name(STACK, 'border')}")
        eventually(lambda: not [r for r in deployed.out("edge", "ip -4 rule show").splitlines() if r.startswith("1003:")], 60, what="the stale rule cleared")
        assert deployed.out("edge", "ip -4 route show table 44") == ""
        ping = ["docker", "exec", sim.PREFIX + "isp", "ping", "-c", "1", "-W", "2", "-I", PROBE, deployed.outputs["mesh_nodes"]["node-a"]]
        eventually(lambda: subprocess.run(ping, capture_output=True).returncode == 0, 90, what="the ISP's test address reaches node-a")
    finally:
        deployed.on("edge", "ip rule del pref 1003 2>/dev/null; ip route flush table 44 2>/dev/null")
    assert verify().returncode == 0


def test_edge_host_reboot_brings_everything_back_without_up(deployed):
    sim.restart_host("edge")
    proc = verify(wait=120)
    assert proc.returncode == 0, proc.stdout
    # what boot applied before Docker: the firewall, the policy-routing rules (and BIRD refilled its table)
    assert "policy drop" in deployed.out("edge", "nft list table inet bgp4mesh")
    assert _edge_rules(deployed) == EDGE_RULES
    assert "default via 192.0.2.9" in deployed.out("edge", f"ip -4 route show table {KERNEL_TABLE} proto bird")


@pytest.mark.parametrize("fault", ["unreachable", "wrong key", "changed host key"])
def test_a_wrong_host_fails_preview_fast_naming_it(deployed, fault, tmp_path):
    config = json.loads(json.dumps(deployed.stack.config))
    hosts = config["bgp4mesh:hosts"]
    node_a = next(h for h in hosts if h["name"] == "node-a")
    if fault == "unreachable":
        node_a["ssh"]["address"] = "203.0.113.61"  # on the simulated Internet, nobody there
    elif fault == "wrong key":
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
        node_a["ssh"]["private_key_file"] = str(tmp_path / "other")
    else:
        node_a["ssh"]["host_key"] = next(h for h in hosts if h["name"] == "control")["ssh"]["host_key"]
    wrong = Stack(STACK, config)
    started = time.monotonic()
    try:
        with pytest.raises(EngineError) as failed:
            wrong.preview()
        took = time.monotonic() - started
    finally:
        deployed.stack.prepare()  # the stack's own config file again, for what runs next
    message = str(failed.value)
    print(f"\n{fault}: preview failed after {took:.1f}s")
    assert "host node-a (root@" in message
    assert {"unreachable": "unreachable", "wrong key": "refused the operator's key", "changed host key": "host key mismatch"}[fault] in message
    assert took < 60, f"preview took {took:.0f}s to report {fault}"


def test_only_listed_ports_are_open_on_the_public_mesh_addresses(deployed):
    """The members' public mesh addresses as the Internet reaches them: through the ISP, from
    its test address (issue 16). No member lists `inbound` in staging, so nothing is open,
    neither sshd nor netclient's port; ICMP echo still answers."""
    targets = {"border": str(deployed.cfg.border_routers[0].mesh_ip), **deployed.outputs["mesh_nodes"]}
    isp = sim.PREFIX + "isp"
    route = subprocess.run(["docker", "exec", isp, "ip", "-4", "route", "get", targets["node-a"], "from", PROBE],
                           capture_output=True, text=True, check=True).stdout
    iface = route.split(" dev ")[1].split()[0]
    proc = subprocess.run(
        ["docker", "run", "--rm", "--network", f"container:{isp}", "--cap-add", "NET_RAW", "--cap-add", "NET_ADMIN", sim.SCAN_IMAGE,
         "-n", "-Pn", "-sS", "-S", PROBE, "-e", iface, "-p-", "--min-rate", "5000", "--max-retries", "1", "-oX", "-", *targets.values()],
        capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    import xml.etree.ElementTree as ET

    found = {address: [] for address in targets.values()}
    for host in ET.fromstring(proc.stdout).iter("host"):
        found[host.find("address").get("addr")] = [p.get("portid") for p in host.iter("port") if p.find("state").get("state") == "open"]
    print("\nopen ports on the public mesh addresses from", PROBE, json.dumps(found))
    assert found == {address: [] for address in targets.values()}
    for name, address in targets.items():
        ping = subprocess.run(["docker", "exec", isp, "ping", "-c", "2", "-W", "2", "-I", PROBE, address], capture_output=True, text=True)
        assert ping.returncode == 0, f"{name}: {ping.stdout}"
    assert "bgp4mesh: closed" in deployed.out("edge", f"docker exec {docker_name(STACK, 'border')} iptables -w -nvxL BGP4MESH-OPEN")


# ---- the hardened BGP edge: BGP's routes in a table of their own -------------------------

KERNEL_TABLE = load_file("staging").policy.kernel_table
EDGE_RULES = [
    "2000:\tnot from all iif lo lookup main suppress_prefixlength 0",
    f"2001:\tnot from all iif lo lookup {KERNEL_TABLE}",
    "2002:\tfrom 44.30.127.0/24 lookup main suppress_prefixlength 0",
    f"2003:\tfrom 44.30.127.0/24 lookup {KERNEL_TABLE}",
]
OFF_LINK = "45.67.89.0/24"
"""Stands in for the operator's network, off the edge's links (reached by its management
default): public, so the border's import policy accepts it from the ISP."""


def _edge_rules(d: Deployment) -> list[str]:
    return [r.strip() for r in d.out("edge", "ip -4 rule show").splitlines() if r.split(":")[0] in ("2000", "2001", "2002", "2003")]


def _isp_announces_also(route: str | None, password: str) -> None:
    """The sim ISP's config plus one more static route (None: as the simulation wrote it)."""
    text = sim.isp_conf(password)
    if route is not None:
        text = text.replace("  route 0.0.0.0/0 blackhole;\n", f"  route 0.0.0.0/0 blackhole;\n  route {route} blackhole;\n", 1)
        assert route in text
    sim.set_isp_conf(text)


def test_a_more_specific_from_the_isp_does_not_take_the_hosts_own_traffic(deployed):
    """The ISP announces a /24 covering the operator's (off-link) network: the border learns
    it, forwarded and mesh-sourced traffic use it, the host's own traffic (SSH replies,
    management) stays on the management default. Today's code put it in the main table,
    where the /24 beat the default and took the host's traffic out of the uplink."""
    border = deployed.target("border", "edge")
    _isp_announces_also(OFF_LINK, deployed.info["isp"]["md5_password"])
    try:
        eventually(lambda: OFF_LINK in {r.prefix for r in routes(border, "protocol", bird_protocol("transit"))}, 30, what=f"border learns {OFF_LINK}")
        eventually(lambda: OFF_LINK in deployed.out("edge", f"ip -4 route show table {KERNEL_TABLE}"), 15, what="in BGP's kernel table")
        assert OFF_LINK not in deployed.out("edge", "ip -4 route show table main")
        host = deployed.out("edge", "ip -4 route get 45.67.89.7")
        assert "via 203.0.113.1" in host and "192.0.2.9" not in host, host
        mesh = deployed.out("edge", "ip -4 route get 45.67.89.7 from 44.30.127.1")
        assert f"table {KERNEL_TABLE}" in mesh and "via 192.0.2.9" in mesh, mesh
        node = deployed.out("node-a", f"docker exec {docker_name(STACK, 'node-a')} ping -c 2 -W 2 {sim.ISP_TEST_ADDRESS}")
        assert " 0% packet loss" in node, node  # forwarded traffic still takes BGP's routes
        assert deployed.out("edge", "echo reachable") == "reachable"  # SSH kept
    finally:
        _isp_announces_also(None, deployed.info["isp"]["md5_password"])


def test_own_space_is_unreachable_not_sent_out_when_the_mesh_is_gone(deployed):
    """The own prefix's last-resort route in the main table (BIRD, metric 4200): with the
    mesh interface gone, traffic for own space is refused, never sent out the default."""
    own = deployed.out("edge", "ip -4 route show table main 44.30.127.0/24")
    assert "unreachable 44.30.127.0/24 proto bird metric 4200" in own, own
    assert _edge_rules(deployed) == EDGE_RULES
    get = deployed.out("edge", "ip -4 route get 44.30.127.10 from 198.51.100.1 iif uplink")
    assert "dev netmaker" in get, get  # while the mesh is up, inbound is delivered


# ---- IPv6 dual stack on real hosts (issue 19) ----------------------------------------------

PROBE6 = sim.ISP_TEST_ADDRESS6  # the ISP's Internet test address in IPv6, 2001:db8:5100::1


def _members6(d: Deployment) -> dict[str, str]:
    """Every member's IPv6 mesh address, as the stack outputs give them."""
    return {"border": d.outputs["border_routers"]["border"]["mesh_ip6"], **d.outputs["mesh_nodes_ipv6"]}


def _isp_interface6(address: str) -> str:
    """The sim ISP's interface towards `address` from its v6 test address (nmap and scapy need it)."""
    route = subprocess.run(["docker", "exec", sim.PREFIX + "isp", "ip", "-6", "route", "get", address, "from", PROBE6],
                           capture_output=True, text=True, check=True).stdout
    return route.split(" dev ")[1].split()[0]


def _isp_birdc(*args: str) -> str:
    return subprocess.run(["docker", "exec", sim.PREFIX + "isp", "birdc", *args], capture_output=True, text=True, check=True).stdout


def test_the_isp_holds_exactly_our_v6_block_over_its_v6_session_and_no_v6_over_v4(deployed):
    """From the ISP's side (not ours, configured by the simulation): the v6 session with the
    edge's uplink address carries 2001:db8:4430::/48 alone, from our AS; the v4 session has
    no IPv6 channel."""
    v6 = _isp_birdc("show", "route", "protocol", "peer6_edge", "all")
    held = re.findall(r"^(\S+/\d+)\s+unicast", v6, re.M)
    assert held == [sim.EDGE_PREFIX6] and f"BGP.as_path: {sim.EDGE_ASN}" in v6, v6
    assert "Channel ipv6" not in _isp_birdc("show", "protocols", "all", "peer_edge")
    sessions = deployed.outputs["border_routers"]["border"]["upstream_sessions"]
    assert {"upstream": "transit", "peer": sim.ISP_IP6, "asn": 65001} in sessions, sessions


def test_inbound_v6_from_the_isp_reaches_every_member(deployed):
    """The ISP's IPv6 test address pings each member's public v6 mesh address, node-b's
    behind the home router's IPv4 NAT too: IPv6 rides the mesh's tunnels."""
    members = _members6(deployed)
    assert all(ip_address(a) in ip_network("2001:db8:4430::/64") for a in members.values()), members
    for name, address in members.items():
        proc = subprocess.run(["docker", "exec", sim.PREFIX + "isp", "ping", "-6", "-c", "2", "-W", "2", "-I", PROBE6, address],
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"{PROBE6} -> {name} {address}: {proc.stdout}"


def test_every_node_reaches_the_internet_in_v6_through_the_gateway_with_its_own_source(deployed):
    """netclient gives an internet gateway's clients ::/0 but routes IPv4's default alone;
    bgp4mesh's agent adds IPv6's. Each node, node-b behind NAT too, pings the ISP's v6 test
    address, and the ISP sees the node's own v6 mesh address (no NAT in either family)."""
    nodes = deployed.outputs["mesh_nodes_ipv6"]

    def ping_all():
        for node in nodes:
            deployed.out(node, f"docker exec {docker_name(STACK, node)} ping -6 -c 2 -W 2 {PROBE6}")

    for node in nodes:
        route = deployed.out(node, f"ip -6 route get {PROBE6}")
        assert "dev netmaker" in route and "table 112" in route, f"{node}: {route}"
    seen = captured(sim.SCAN_IMAGE, sim.PREFIX + "isp", "bgp4mesh-staging-ipv6-capture", f"icmp6 and dst host {PROBE6}", ping_all)
    sources = set(re.findall(rf"IP6 (\S+) > {re.escape(PROBE6)}: ICMP6, echo request", seen))
    assert sources == set(nodes.values()), seen


def test_nothing_is_open_on_the_public_v6_mesh_addresses(deployed):
    """nmap -6 from the ISP's v6 test address over every member's v6 address: no member
    lists `inbound` in staging, so nothing is open in IPv6 either, sshd included, which
    listens on every address of its host."""
    targets = list(_members6(deployed).values())
    isp = sim.PREFIX + "isp"
    xml = inside(isp, sim.SCAN_IMAGE, "nmap", "-6", "-n", "-Pn", "-sS", "-S", PROBE6, "-e", _isp_interface6(targets[0]),
                 "-p", "1-1024,5201,8000-8100,9100-9600,51821", "--min-rate", "5000", "--max-retries", "1", "-oX", "-", *targets)
    found = open_ports(xml, targets)
    print("\nopen ports on the public v6 mesh addresses from", PROBE6, json.dumps(found))
    assert found == {t: [] for t in targets}
    for address in targets:  # reachable, so the closed ports are the rules (sshd listens on every address)
        ping = subprocess.run(["docker", "exec", isp, "ping", "-6", "-c", "2", "-W", "2", "-I", PROBE6, address], capture_output=True, text=True)
        assert ping.returncode == 0, f"{address}: {ping.stdout}"
    assert "[::]:22" in deployed.out("node-a", "ss -Hltn 'sport = :22'"), "sshd listens on node-a's v6 mesh address too"


SPOOFED6 = {"2001:db8:4430::99": "own source in", "fc00::1": "bogon source in"}


def test_spoofed_v6_sources_from_the_isp_never_reach_a_node_and_are_counted(deployed):
    """scapy in the ISP's namespace sends echo requests to node-a's v6 mesh address from our
    own space and a ULA, then from its genuine test address: node-a's host sees the genuine
    one alone, and the edge host's ip6tables (the border's edge rules, host networking) count
    the spoofed ones."""
    isp, node = sim.PREFIX + "isp", deployed.outputs["mesh_nodes_ipv6"]["node-a"]

    def spoof_in() -> dict[str, int]:
        return counters(sim.PREFIX + "edge", "BGP4MESH-SPOOF-IN", "ip6tables")

    iface = _isp_interface6(node)
    mac = json.loads(deployed.out("edge", "ip -j link show uplink"))[0]["address"]
    script = ("from scapy.all import Ether, IPv6, ICMPv6EchoRequest, sendp\n"
              f"for s in {[*SPOOFED6, PROBE6]!r}:\n    sendp(Ether(dst={mac!r})/IPv6(src=s, dst={node!r})/ICMPv6EchoRequest(id=4242), "
              f"iface={iface!r}, count=5, verbose=False)\n")
    before = spoof_in()
    seen = captured(sim.SCAN_IMAGE, sim.PREFIX + "node-a", "bgp4mesh-staging-ipv6-spoof-capture", "icmp6 and ip6[40] = 128",
                    lambda: inside(isp, sim.SCAN_IMAGE, "python3", "-c", script))
    assert f"{PROBE6} > {node}" in seen, seen
    for src in SPOOFED6:
        assert f"{src} > " not in seen, f"spoofed {src} reached node-a:\n{seen}"
    after = spoof_in()
    for why in set(SPOOFED6.values()):
        assert after.get(why, 0) - before.get(why, 0) >= 5, (why, before, after)
