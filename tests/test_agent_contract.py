"""The contract between bgp4mesh and the HA agent: the config bgp4mesh writes
(bgp4mesh/agent_config.py) is what the agent reads, through one schema file, and the state
the agent writes is what `verify` reads; plus the agent's probe and report adapters."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "images" / "netclient" / "agent"))

from bgp4mesh import agent_config  # noqa: E402
from bgp4mesh.config import Failover  # noqa: E402
from bgp4mesh_agent import adapters, schema  # noqa: E402

GATEWAYS = [("44.30.127.1", "172.31.16.10", ""), ("44.30.127.2", "172.31.16.11", "")]


def test_product_and_image_share_one_schema_file():
    assert agent_config.SCHEMA_FILE == Path(schema.__file__).resolve()
    assert (agent_config.AGENT_DIR, agent_config.AGENT_FILE) == ("/etc/bgp4mesh", "agent.json")


def test_router_config_round_trips_through_the_agents_reader():
    written = agent_config.router_config(["peer_isp_a"], GATEWAYS, "44.30.127.1", "44.30.127.0/24", Failover(interval_ms=100))
    text = agent_config.agent_files(written)["agent.json"]
    read = schema.AgentConfig.from_json(text)
    assert read.router.gateways == (schema.Gateway("44.30.127.1", "172.31.16.10"), schema.Gateway("44.30.127.2", "172.31.16.11"))
    assert (read.router.self_ip, read.router.mesh_range, read.probe.interval_ms, read.probe.port) == ("44.30.127.1", "44.30.127.0/24", 100, 51821)


def test_one_router_has_no_gateways_and_a_node_without_several_has_no_agent():
    alone = agent_config.router_config(["peer_isp"], GATEWAYS[:1], "44.30.127.1", "44.30.127.0/24", Failover())
    assert (alone.router.gateways, alone.router.self_ip, alone.router.mesh_range) == ((), "", "")
    assert agent_config.node_config(["44.30.127.1"], ["192.0.2.0/24"], Failover()) is None
    assert agent_config.node_config(["44.30.127.1", "44.30.127.2"], [], Failover()) is None
    assert agent_config.agent_files(None) == {}


@pytest.mark.parametrize("raw, error", [
    ({"probe": {}}, "exactly one of router and node"),
    ({"node": {"gateways": ["a", "b"], "ranges": ["r"]}, "router": {"bgp_protocols": []}}, "exactly one"),
    ({"node": {"gateways": ["a"], "ranges": ["r"]}}, "several gateways"),
    ({"node": {"gateways": ["a", "b"], "ranges": ["r"], "extra": 1}}, r"node has unknown keys \['extra'\]"),
    ({"probe": {"port": "51821"}, "node": {"gateways": ["a", "b"], "ranges": ["r"]}}, "probe.port must be int"),
    ({"router": {"bgp_protocols": ["p"], "gateways": [{"mesh": "a", "ibgp": "b"}, {"mesh": "c", "ibgp": "d"}]}}, "self_ip and router.mesh_range"),
    ({"router": {"bgp_protocols": [1]}}, "bgp_protocols must be a list of strings"),
])
def test_a_bad_config_is_refused_by_key(raw, error):
    with pytest.raises(ValueError, match=error):
        schema.AgentConfig.from_json(json.dumps(raw))


def test_state_is_written_in_schema_order_and_read_back_by_verify():
    text = schema.encode_state(schema.ROUTER_FIELDS, {"active": "44.30.127.2", "announce": "drained", "maintenance": False, "mesh": True,
                                                       "upstream": True, "port": False, "available": False})
    assert text.splitlines()[:2] == ["maintenance=0", "mesh=1"]
    assert agent_config.decode_state(agent_config.ROUTER_STATE, text + "age=0\n")["port"] == "0"
    with pytest.raises(ValueError, match="lacks announce, active"):
        agent_config.decode_state(agent_config.ROUTER_STATE, "maintenance=0\nmesh=1\nupstream=1\nport=1\navailable=1\n")


def test_probe_tells_open_closed_and_silent_apart_within_the_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    started = time.monotonic()
    got = adapters.probe(["127.0.0.1", "127.0.0.3", "192.0.2.254"], port, 300)
    elapsed = time.monotonic() - started
    listener.close()
    assert got == {"127.0.0.1": True, "127.0.0.3": False, "192.0.2.254": False}
    assert elapsed < 1.0


def test_report_writes_the_time_every_round_and_the_state_when_it_changed(tmp_path):
    report = adapters.Reporter(str(tmp_path / "state"))
    report("active=a\n")
    first = (tmp_path / "state").stat().st_mtime_ns
    (tmp_path / "state.at").unlink()
    time.sleep(0.01)
    report("active=a\n")
    assert (tmp_path / "state.at").read_text().strip().isdigit()
    assert (tmp_path / "state").stat().st_mtime_ns == first
    report("active=b\n")
    assert (tmp_path / "state").read_text() == "active=b\n"


@pytest.mark.parametrize("since", ["04:00:00.000", "2026-12-05", "2026-12-06 20:56:30"], ids=["default", "default-older-than-20h", "iso-long"])
def test_upstream_established_whatever_the_time_format(monkeypatch, since):
    """`birdc show protocols` as BIRD 2.0.12 prints it; the templates set `timeformat protocol
    iso long` (for prometheus-bird-exporter), which makes Since two words."""
    head = "BIRD 2.0.12 ready.\nName       Proto      Table      State  Since         Info\n"
    up = head + f"peer_isp_a BGP        ---        up     {since}  Established   \n"
    down = head + f"peer_isp_a BGP        ---        start  {since}  Active        Socket: Connection refused\n" \
        f"ibgp_b     BGP        ---        up     {since}  Established   \n"
    for text, want in ((up, True), (down, False)):
        monkeypatch.setattr(adapters, "run", lambda *args, timeout=10, text=text: subprocess.CompletedProcess(args, 0, text, ""))
        assert adapters.upstream_established(("peer_isp_a",)) is want, text


class Recorded:
    """adapters.run stood in for: records each command, answers `ip -o addr show` with the
    router's iBGP addresses on eth1, `ip rule del` with nothing left to delete, and
    everything else with success."""

    def __init__(self):
        self.commands: list[str] = []

    def __call__(self, *args: str, timeout: float = 10) -> subprocess.CompletedProcess:
        self.commands.append(" ".join(args))
        out = ""
        if args[-2:] == ("addr", "show"):
            out = "3: eth1    inet 172.31.16.10/24 scope global eth1\n3: eth1    inet6 2001:db8:ac1f:10::a/64 scope global\n"
        return subprocess.CompletedProcess(args, int(args[2:4] == ("rule", "del")), out, "")


@pytest.mark.parametrize("six", [False, True])
def test_the_router_agent_makes_its_routes_and_rules_in_each_family_the_mesh_carries(monkeypatch, six):
    """Core decides in IPv4 terms; with a v6 mesh the system forwards, refuses and delivers
    mesh_range6 the same way, by each router's IPv6 iBGP address; without, no IPv6 command."""
    ran = Recorded()
    monkeypatch.setattr(adapters, "run", ran)
    from bgp4mesh_agent import core

    ibgp6 = {"172.31.16.10": "2001:db8:ac1f:10::a", "172.31.16.11": "2001:db8:ac1f:10::b"} if six else {}
    system = adapters.System(adapters.Log("test"), "netmaker", 51821, "44.30.127.0/24", "2001:db8:4430::/64" if six else "", ibgp6)
    for action in (core.ClearRules("44.30.127.0/24"), core.InstallRules("44.30.127.0/24", "172.31.16.10"),
                   core.ForwardTo("172.31.16.11", "44.30.127.2"), core.ForwardTo("", "")):
        assert system.do(action)
    v6 = [c for c in ran.commands if c.startswith("ip -6")]
    if not six:
        assert v6 == [] and ran.commands
        return
    assert "ip -6 route replace unreachable 2001:db8:4430::/64 metric 4242" in v6
    assert "ip -6 rule add pref 1002 to 2001:db8:4430::/64 iif eth1 lookup main" in v6  # the iBGP link's own, found by address
    assert "ip -6 rule add pref 1003 to 2001:db8:4430::/64 lookup 44" in v6
    assert "ip -6 route replace 2001:db8:4430::/64 via 2001:db8:ac1f:10::b table 44" in v6
    assert "ip -6 route flush table 44" in v6 and "ip -6 route del unreachable 2001:db8:4430::/64 metric 4242" in v6
    assert "ip -4 route replace 44.30.127.0/24 via 172.31.16.11 table 44" in ran.commands


def test_a_v6_mesh_needs_every_gateways_v6_ibgp_address():
    gateways = [("44.30.127.1", "172.31.16.10", "2001:db8:ac1f:10::a"), ("44.30.127.2", "172.31.16.11", "")]
    with pytest.raises(ValueError, match="mesh_range6 needs every gateway's ibgp6"):
        agent_config.router_config(["peer_isp_a"], gateways, "44.30.127.1", "44.30.127.0/24", Failover(), "2001:db8:4430::/64")


def test_routed_reads_both_families(monkeypatch):
    answers = {"-4": "198.51.100.0/24 scope link metric 256\n", "-6": "2001:db8:5100::/48 metric 256 pref medium\n"}
    monkeypatch.setattr(adapters, "run", lambda *a, timeout=10: subprocess.CompletedProcess(a, 0, answers[a[1]], ""))
    assert adapters.routed("netmaker") == {"198.51.100.0/24", "2001:db8:5100::/48"}


def test_an_internet_clients_node_config_round_trips_without_failover():
    """A client of the internet gateway in a v6 mesh gets an agent for IPv6's default alone
    (no egress failover with one gateway); a bad internet6 is refused by key."""
    written = agent_config.node_config(["44.30.127.1"], ["192.0.2.0/24"], Failover(), internet6=True)
    read = schema.AgentConfig.from_json(agent_config.agent_files(written)["agent.json"])
    assert read.node == schema.Node(gateways=(), ranges=(), internet6=True)
    both = agent_config.node_config(["44.30.127.1", "44.30.127.2"], ["192.0.2.0/24"], Failover(), internet6=True)
    assert (both.node.gateways, both.node.ranges, both.node.internet6) == (("44.30.127.1", "44.30.127.2"), ("192.0.2.0/24",), True)
    with pytest.raises(ValueError, match="internet6 must be bool"):
        schema.AgentConfig.from_json(json.dumps({"node": {"gateways": [], "ranges": [], "internet6": "yes"}}))
    with pytest.raises(ValueError, match="several gateways"):
        schema.AgentConfig.from_json(json.dumps({"node": {"gateways": ["a"], "ranges": ["r"], "internet6": True}}))


AGENT_DIR = Path(__file__).resolve().parent.parent / "images" / "netclient" / "agent"
DEFAULT6 = f"""set -e
ip link set lo up
for l in eth0 netmaker; do ip tuntap add mode tun name $l; ip link set $l up; done
ip -6 addr add 2001:db8:77::10/64 dev eth0 nodad; ip -6 route add default via 2001:db8:77::1 dev eth0
ip -6 addr add 2001:db8:4430::10/64 dev netmaker nodad
ask() {{ echo "## $1"; ip -6 route get "$2" 2>&1 || true; }}
ask before 2001:db8:5100::1
python3 -c 'import sys; sys.path.insert(0, "{AGENT_DIR}"); from bgp4mesh_agent import adapters, core
print("held before:", adapters.has_default6("netmaker"))
system = adapters.System(adapters.Log("test"), "netmaker", 51821)
print("done:", system.do(core.DefaultRoute6()), system.do(core.DefaultRoute6()))
print("held after:", adapters.has_default6("netmaker"))'
ask internet 2001:db8:5100::1
ask mesh 2001:db8:4430::20
ask lan 2001:db8:77::5
echo "## rules"; ip -6 rule show
"""


def test_the_v6_default_goes_into_the_mesh_after_the_hosts_specific_routes():
    """In a network namespace of tun devices: once applied (twice: idempotent), IPv6 for the
    Internet leaves through the mesh interface although the host has a default of its own,
    while the mesh's and the host's connected subnets keep their routes."""
    probe = subprocess.run(["unshare", "-rn", "ip", "tuntap", "add", "mode", "tun", "name", "t0"], capture_output=True)
    if probe.returncode != 0:
        pytest.fail(f"needs `unshare -rn` and tun devices: {probe.stderr.decode().strip()}")
    out = subprocess.run(["unshare", "-rn", "bash", "-c", DEFAULT6], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "held before: False" in out.stdout and "done: True True" in out.stdout and "held after: True" in out.stdout, out.stdout
    got = {k.strip(): v.strip() for k, v in (part.split("\n", 1) for part in out.stdout.split("## ")[1:])}
    assert "dev eth0" in got["before"], got
    assert "dev netmaker table 112" in got["internet"], got
    assert "dev netmaker" in got["mesh"] and "table 112" not in got["mesh"], got
    assert "dev eth0" in got["lan"], got
    assert got["rules"].count("lookup 112") == 1 and got["rules"].count("suppress_prefixlength 0") == 1, got["rules"]
