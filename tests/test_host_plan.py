"""Host preparation for remote hosts: what each host's roles open, set and hold, and the
script that applies it (a shell script: checked with `sh -n`)."""

import subprocess

from bgp4mesh.host_plan import Opening, host_plan, render_host_prep
from bgp4mesh.stack import raw_from_file, validate

STAGING = validate(*raw_from_file("staging"))


def test_each_host_opens_only_what_its_roles_need():
    plans = {h.name: host_plan(STAGING, h) for h in STAGING.hosts}
    wireguard = Opening("udp", 51821, why="WireGuard")
    assert plans["edge"].openings == [wireguard, Opening("tcp", 179, "192.0.2.9", "BGP from transit")]
    assert plans["control"].openings == [Opening("tcp", 80, why="TLS front"), Opening("tcp", 443, why="TLS front")]
    assert plans["node-a"].openings == plans["node-b"].openings == [wireguard]


def test_forwarding_only_on_the_router_host_and_the_uplink_address_there():
    plans = {h.name: host_plan(STAGING, h) for h in STAGING.hosts}
    assert plans["edge"].sysctls["net.ipv4.ip_forward"] == "1"
    assert plans["edge"].addresses == [("uplink", "192.0.2.10/29")]
    assert "net.ipv4.ip_forward" not in plans["node-a"].sysctls
    assert plans["node-a"].sysctls == {"net.ipv4.conf.all.src_valid_mark": "1"}
    assert plans["control"].sysctls == {} and plans["control"].addresses == []


def test_the_script_parses_and_drops_by_default():
    for host in STAGING.hosts:
        script = render_host_prep(STAGING, host)
        subprocess.run(["sh", "-n"], input=script, text=True, check=True)
        assert "policy drop;" in script and "ct state established,related accept" in script
    edge = render_host_prep(STAGING, STAGING.host("edge"))
    assert 'ip saddr 192.0.2.9 tcp dport 179 accept comment "BGP from transit"' in edge
    assert "ip addr replace 192.0.2.10/29 dev uplink" in edge
    assert "tcp dport 443" not in edge
