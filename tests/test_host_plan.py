"""Host preparation for remote hosts: what each host's roles open, set and hold, and the
script that applies it (a shell script: checked with `sh -n`)."""

import copy
import shutil
import subprocess

import pytest

from bgp4mesh.host_plan import UNDO, Opening, route_rules
from bgp4mesh.stack import raw_from_file, validate
from tests import plans



def _with(change, v4_only: bool = False) -> object:
    """Staging without its monitoring (what the roles alone open), changed by `change`;
    `v4_only`: without its IPv6 values (staging is dual-stack)."""
    raw, secret = raw_from_file("staging")
    raw = plans.ipv4_only(raw) if v4_only else copy.deepcopy(raw)
    raw.pop("monitoring")
    change(raw)
    return validate(raw, secret)


STAGING = _with(lambda raw: None)
STAGING4 = _with(lambda raw: None, v4_only=True)


def test_each_host_opens_only_what_its_roles_need():
    by_host = {h.name: plans.host(STAGING, h) for h in STAGING.hosts}
    wireguard = Opening("udp", 51821, why="WireGuard")
    assert by_host["edge"].openings == [wireguard, Opening("tcp", 179, "192.0.2.9", "BGP from transit", "uplink"),
                                        Opening("tcp", 179, "2001:db8:ac2e::9", "BGP from transit", "uplink")]
    assert by_host["control"].openings == [Opening("tcp", 80, why="TLS front"), Opening("tcp", 443, why="TLS front")]
    assert by_host["node-a"].openings == by_host["node-b"].openings == [wireguard]
    v4 = plans.host(STAGING4, STAGING4.host("edge"))
    assert v4.openings == [wireguard, Opening("tcp", 179, "192.0.2.9", "BGP from transit", "uplink")], "a v4-only stack opens as before"


def test_forwarding_only_on_the_router_host_and_the_uplink_addresses_there():
    by_host = {h.name: plans.host(STAGING, h) for h in STAGING.hosts}
    edge = by_host["edge"].sysctls
    assert edge["net.ipv4.ip_forward"] == edge["net.ipv6.conf.all.forwarding"] == edge["net.ipv6.conf.all.keep_addr_on_down"] == "1"
    assert by_host["edge"].addresses == [("uplink", "192.0.2.10/29"), ("uplink", "2001:db8:ac2e::a/64")]
    assert "net.ipv4.ip_forward" not in by_host["node-a"].sysctls
    assert by_host["node-a"].sysctls == {"net.ipv4.conf.all.src_valid_mark": "1", "net.ipv6.conf.all.disable_ipv6": "0",
                                         "net.ipv6.conf.default.disable_ipv6": "0"}, "a member of a v6 mesh has IPv6 on"
    assert by_host["control"].sysctls == {} and by_host["control"].addresses == []
    v4 = {h.name: plans.host(STAGING4, h) for h in STAGING4.hosts}
    assert v4["node-a"].sysctls == {"net.ipv4.conf.all.src_valid_mark": "1"}
    assert v4["edge"].addresses == [("uplink", "192.0.2.10/29")] and not any("ipv6" in k for k in v4["edge"].sysctls)


def test_the_script_parses_and_drops_by_default():
    for host in STAGING.hosts:
        script = plans.host_prep(STAGING, host)
        subprocess.run(["sh", "-n"], input=script, text=True, check=True)
        assert "policy drop;" in script and "ct state established,related accept" in script
    edge = plans.host_prep(STAGING, STAGING.host("edge"))
    assert 'iifname "$iface_0" ip saddr 192.0.2.9 tcp dport 179 accept comment "BGP from transit"' in edge
    assert "ip addr replace 192.0.2.10/29 dev uplink" in edge
    assert "tcp dport 443" not in edge


# ---- the hardened BGP edge -------------------------------------------------------------


def _two_routers(raw):
    """Staging with a second edge host and router (what a two-router staging would deploy)."""
    raw["hosts"].append({**raw["hosts"][0], "name": "edge2", "ssh": {**raw["hosts"][0]["ssh"], "address": "203.0.113.11"}, "endpoint": "203.0.113.11"})
    raw["border_routers"][0]["ibgp_address"] = "203.0.113.10"
    raw["border_routers"].append({"name": "border2", "router_id": "192.0.2.18", "host": "edge2", "mesh_ip": "44.30.127.3", "ibgp_address": "203.0.113.11"})
    raw["upstreams"][0].update(ttl_security=True, bfd={"interval_ms": 300})
    raw["upstreams"].append({**raw["upstreams"][0], "name": "transit2", "link": "192.0.2.16/29", "neighbor": "192.0.2.17", "local_address": "192.0.2.18", "router": "border2"})
    raw["policy"]["ibgp_bfd"] = {"interval_ms": 300}


def test_gtsm_bfd_and_ibgp_openings_check_interface_source_and_ttl():
    cfg = _with(_two_routers, v4_only=True)
    plan = plans.host(cfg, cfg.host("edge"))
    assert plan.openings[1:] == [
        Opening("tcp", 179, "192.0.2.9", "BGP from transit (GTSM)", "uplink", 255),
        Opening("udp", (3784, 3785, 4784), "192.0.2.9", "BFD from transit", "uplink"),
        Opening("tcp", 179, "203.0.113.11", "iBGP from border2"),
        Opening("udp", (3784, 3785, 4784), "203.0.113.11", "BFD from border2"),
    ]
    script = plans.host_prep(cfg, cfg.host("edge"))
    subprocess.run(["sh", "-n"], input=script, text=True, check=True)
    assert 'iifname "$iface_0" ip saddr 192.0.2.9 tcp dport 179 ip ttl 255 accept comment "BGP from transit (GTSM)"' in script
    assert 'iifname "$iface_0" ip saddr 192.0.2.9 udp dport { 3784, 3785, 4784 } accept comment "BFD from transit"' in script
    assert 'ip saddr 203.0.113.11 tcp dport 179 accept comment "iBGP from border2"' in script
    assert "ip -o link show dev uplink" in script  # nft compares kernel names, not altnames


def _two_routers6(raw):
    """_two_routers in IPv6 too: the second session and iBGP in both families."""
    _two_routers(raw)
    raw["upstreams"][1].update(link6="2001:db8:ac2f::/64", neighbor6="2001:db8:ac2f::1", local_address6="2001:db8:ac2f::2")
    raw["border_routers"][0]["ibgp_address6"] = "2001:db8:ac30::10"
    raw["border_routers"][1]["ibgp_address6"] = "2001:db8:ac30::11"


def test_ipv6_openings_match_ip6_sources_and_the_hop_limit():
    """In IPv6 the same openings: each from the neighbor's or the other router's IPv6
    address, GTSM on the hop limit (nft's `ip saddr` never matches an IPv6 packet)."""
    cfg = _with(_two_routers6)
    plan = plans.host(cfg, cfg.host("edge"))
    assert plan.openings[1:] == [
        Opening("tcp", 179, "192.0.2.9", "BGP from transit (GTSM)", "uplink", 255),
        Opening("udp", (3784, 3785, 4784), "192.0.2.9", "BFD from transit", "uplink"),
        Opening("tcp", 179, "2001:db8:ac2e::9", "BGP from transit (GTSM)", "uplink", 255),
        Opening("udp", (3784, 3785, 4784), "2001:db8:ac2e::9", "BFD from transit", "uplink"),
        Opening("tcp", 179, "203.0.113.11", "iBGP from border2"),
        Opening("udp", (3784, 3785, 4784), "203.0.113.11", "BFD from border2"),
        Opening("tcp", 179, "2001:db8:ac30::11", "iBGP from border2"),
        Opening("udp", (3784, 3785, 4784), "2001:db8:ac30::11", "BFD from border2"),
    ]
    script = plans.host_prep(cfg, cfg.host("edge"))
    assert 'iifname "$iface_0" ip6 saddr 2001:db8:ac2e::9 tcp dport 179 ip6 hoplimit 255 accept comment "BGP from transit (GTSM)"' in script
    assert 'ip6 saddr 2001:db8:ac30::11 tcp dport 179 accept comment "iBGP from border2"' in script
    assert "ip addr replace 2001:db8:ac2e::a/64 dev uplink" in script and "ip addr del 2001:db8:ac2e::a/64 dev uplink" in script


def test_several_routers_with_ipv6_on_real_hosts_need_their_ipv6_ibgp_addresses():
    def without(raw):
        _two_routers6(raw)
        del raw["border_routers"][1]["ibgp_address6"]
    with pytest.raises(Exception, match=r"border_routers\[1\]\.ibgp_address6.*need IPv6 iBGP"):
        _with(without)


def test_only_router_hosts_get_policy_routing_after_the_ha_rules():
    by_host = {h.name: plans.host(STAGING, h) for h in STAGING.hosts}
    assert [r.pref for r in by_host["edge"].route_rules] == [2000, 2001, 2002, 2003] * 2  # border-health: 1000-1003
    assert all(not by_host[h].route_rules for h in ("control", "node-a", "node-b"))
    edge = plans.host_prep(STAGING, STAGING.host("edge"))
    assert "ip -4 rule add pref 2000 not iif lo lookup main suppress_prefixlength 0" in edge
    assert "ip -4 rule add pref 2001 not iif lo lookup 179" in edge
    assert "ip -4 rule add pref 2003 from 44.30.127.0/24 lookup 179" in edge
    assert "ip -6 rule add pref 2003 from 2001:db8:4430::/48 lookup 179" in edge
    assert "ip rule" not in plans.host_prep(STAGING, STAGING.host("node-a"))


def test_the_firewall_loads_first_and_docker_needs_it():
    """Fails closed: the unit runs before the network (network-pre), and Docker's drop-in
    Requires it, so no container starts when the firewall did not load."""
    script = plans.host_prep(STAGING, STAGING.host("edge"))
    assert script.index("nft -f -") < script.index("# ---- kernel settings") < script.index("# ---- addresses")
    unit = script[script.index("<<'UNIT'") : script.index("\nUNIT\n") + 1]
    for line in ("DefaultDependencies=no", "Before=network-pre.target shutdown.target", "Wants=network-pre.target",
                 "Type=oneshot", "RemainAfterExit=yes", "WantedBy=sysinit.target"):
        assert f"\n{line}\n" in unit, line
    dropin = script[script.index("docker.service.d/10-bgp4mesh.conf <<'DROPIN'") : script.index("\nDROPIN\n")]
    assert "Requires=bgp4mesh-host-prep.service" in dropin and "After=bgp4mesh-host-prep.service" in dropin
    assert "docker.service.d/10-bgp4mesh.conf" in UNDO and "--remove-addresses" in UNDO



def test_destroy_also_takes_what_the_members_left_in_the_hosts_own_tables():
    """Members run with host networking, so the edge firewall's chains, the agent's rules and
    netclient's internet-gateway rules are the host's and outlive their containers; UNDO takes
    them away in both families (live: the staging fixture finds none on any host after it)."""
    subprocess.run(["sh", "-n"], input=UNDO, text=True, check=True)
    for tool in ("iptables", "ip6tables"):
        for hook in ("INPUT", "FORWARD", "OUTPUT"):
            assert f"while {tool} -w -D {hook} -j BGP4MESH-{hook} 2>/dev/null; do :; done" in UNDO
        assert f"for c in $chains; do {tool} -w -X \"$c\"; done" in UNDO
    for v, pref in ((4, 1000), (6, 1003), (6, 2600), (6, 3100)):
        assert f"while ip -{v} rule del pref {pref} 2>/dev/null; do :; done" in UNDO
    assert "while ip -4 rule del pref 3000 lookup 111 2>/dev/null; do :; done" in UNDO
    assert "ip -6 route flush table 112" in UNDO and "ip -4 route flush table 44" in UNDO
    assert UNDO.index("BGP4MESH-INPUT") < UNDO.index("--remove-addresses")


def _netns_with_tun() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rn", "ip", "tuntap", "add", "mode", "tun", "name", "t0"], capture_output=True).returncode == 0


ROUTES = """set -e
for l in mgmt uplink netmaker; do ip tuntap add mode tun name $l; ip link set $l up; done; ip link set lo up
ip addr add 203.0.113.10/26 dev mgmt; ip addr add 192.0.2.10/29 dev uplink; ip addr add 44.30.127.1/24 dev netmaker
ip route add default via 203.0.113.1 onlink dev mgmt
echo 1 > /proc/sys/net/ipv4/ip_forward
# what BIRD installs: BGP in its table (a more-specific covering the operator too), own prefixes unreachable in main
ip route add default via 192.0.2.9 dev uplink onlink table 179 proto bird metric 32
ip route add 203.0.113.0/28 via 192.0.2.9 dev uplink onlink table 179 proto bird metric 32
ip route add unreachable 44.30.127.0/24 metric 4200
"""


def test_policy_routing_keeps_management_and_refuses_own_space_without_the_mesh():
    """The rendered rules in a network namespace of tun devices: the host's own traffic to
    the operator (203.0.113.5) stays on the management default although the ISP announced
    a more-specific; a node's traffic and the mesh-sourced host's take BGP's routes; inbound
    reaches the mesh, and with the mesh interface gone own space is refused, not sent out."""
    if not _netns_with_tun():
        pytest.skip("needs `unshare -rn` and tun devices (user namespaces)")
    rules = "\n".join(f"ip -{r.version} rule add pref {r.pref} {r.selector} lookup {r.table}" + (" suppress_prefixlength 0" if r.main_specific else "")
                      for r in route_rules(STAGING, STAGING.border_routers[0]))
    script = plans.host_prep(STAGING, STAGING.host("edge"))
    assert all(line in script for line in rules.splitlines())
    probes = {
        "host to operator": "ip route get 203.0.113.5",
        "node to operator": "ip route get 203.0.113.5 from 44.30.127.10 iif netmaker",
        "node to internet": "ip route get 198.51.100.7 from 44.30.127.10 iif netmaker",
        "host from mesh": "ip route get 198.51.100.7 from 44.30.127.1",
        "inbound": "ip route get 44.30.127.10 from 198.51.100.7 iif uplink",
    }
    gone = {"inbound, mesh gone": "ip route get 44.30.127.10 from 198.51.100.7 iif uplink", "host, mesh gone": "ip route get 44.30.127.10"}
    text = ROUTES + rules + "\n" + "".join(f"echo '## {k}'; {c} 2>&1 || true\n" for k, c in probes.items())
    text += "ip link del netmaker\n" + "".join(f"echo '## {k}'; {c} 2>&1 || true\n" for k, c in gone.items())
    out = subprocess.run(["unshare", "-rn", "sh", "-c", text], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    got = {k.strip(): v.strip() for k, v in (part.split("\n", 1) for part in out.stdout.split("## ")[1:])}
    assert "dev mgmt" in got["host to operator"] and "table 179" not in got["host to operator"], got
    assert "dev mgmt" in got["node to operator"], got  # a connected route of the host's is specific: it stays
    assert "via 192.0.2.9 dev uplink table 179" in got["node to internet"], got
    assert "via 192.0.2.9 dev uplink table 179" in got["host from mesh"], got
    assert "dev netmaker" in got["inbound"], got
    assert "No route to host" in got["inbound, mesh gone"] and "No route to host" in got["host, mesh gone"], got


def test_a_router_host_opens_the_looking_glass_to_its_allow_list_only_when_asked():
    raw, secret = raw_from_file("staging")
    assert not [o for h in STAGING.hosts for o in plans.host(STAGING, h).openings if o.why == "looking glass"]
    raw = copy.deepcopy(raw)
    raw["looking_glass"] = {"port": 8095, "allow": ["198.51.100.0/24", "192.0.2.64/26"]}
    cfg = validate(raw, secret)
    by_host = {h.name: [o for o in plans.host(cfg, h).openings if o.why == "looking glass"] for h in cfg.hosts}
    assert by_host.pop("edge") == [Opening("tcp", 8095, "198.51.100.0/24", "looking glass"), Opening("tcp", 8095, "192.0.2.64/26", "looking glass")]
    assert all(found == [] for found in by_host.values()), by_host
    script = plans.host_prep(cfg, cfg.host("edge"))
    assert 'ip saddr 198.51.100.0/24 tcp dport 8095 accept comment "looking glass"' in script


def test_member_hosts_open_their_exporters_to_the_monitoring_hosts_address_alone_and_it_opens_nothing_new():
    cfg = _with(lambda raw: raw.update(monitoring={}))
    by_host = {h.name: plans.host(cfg, h).openings for h in cfg.hosts}
    before = {h.name: plans.host(STAGING, h).openings for h in STAGING.hosts}
    new = {name: [o for o in openings if o not in before[name]] for name, openings in by_host.items()}
    member = Opening("tcp", 9586, "203.0.113.20", "member exporter (Prometheus)")
    assert new == {"edge": [member, Opening("tcp", 9324, "203.0.113.20", "bird exporter (Prometheus)")], "control": [], "node-a": [member], "node-b": []}  # node-b: behind NAT, not scraped
    edge = plans.host_prep(cfg, cfg.host("edge"))
    subprocess.run(["sh", "-n"], input=edge, text=True, check=True)
    assert 'ip saddr 203.0.113.20 tcp dport 9324 accept comment "bird exporter (Prometheus)"' in edge
    assert "9090" not in plans.host_prep(cfg, cfg.host("control")) and "9093" not in plans.host_prep(cfg, cfg.host("control"))
