"""Live tier, the two-router variant of staging (`staging-ha`, Pulumi.staging-ha.yaml): two
border routers on two simulated remote hosts, each with a BFD-watched session to the sim
ISP over its uplink, and iBGP with BFD between them across the hosts' public addresses.
Every one of those packets crosses a real host firewall (host preparation's nft table,
policy drop): this tier proves its BFD and iBGP openings from the ISP's side and from the
routers' sessions, which the Docker labs (no host firewall) cannot."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bgp4mesh.birdc import Target, bfd_sessions, protocols, routes
from bgp4mesh.naming import bird_protocol, bird_symbol
from bgp4mesh.stack import load_file
from harness import sim
from harness.engine import CACHE
from tests.live import eventually, staging_deployed

STACK = "staging-ha"
ISP = Target(sim.PREFIX + "isp")
CFG = load_file(STACK)
ROUTERS = {r.name: r for r in CFG.border_routers}


@pytest.fixture(scope="module")
def deployed():
    yield from staging_deployed(STACK)


def test_the_isp_sees_both_sessions_and_their_bfd_up(deployed):
    """From the ISP's side: a BGP session to each router, and each one's BFD session Up
    (BFD is three-way: Up means the ISP's packets reach the router through its host's
    firewall and the router's reach the ISP)."""
    eventually(lambda: all(protocols(ISP)[name].info == "Established" for name in sim.CUSTOMERS), 60, what="both customer sessions Established")
    eventually(lambda: all(bfd_sessions(ISP).get(address) == "Up" for address in sim.CUSTOMERS.values()), 30, what="the ISP's BFD sessions Up")


def test_the_block_is_announced_by_both_routers_and_border_b_is_the_backup(deployed):
    """The ISP learns the block from each router; border-b prepends twice, so the ISP
    prefers border-a and keeps border-b's path as the alternative. A router announces
    drained (prepended, graceful shutdown) until it reaches the mesh (border-health), so
    this waits for both to settle."""
    def settled():
        found = {r.protocol: (r.as_path, r.best) for r in routes(ISP, sim.EDGE_PREFIX)}
        assert found == {"peer_edge": ([sim.EDGE_ASN], True), "peer_edge_b": ([sim.EDGE_ASN] * 3, False)}, found
        return found

    eventually(settled, 120, what=f"{sim.EDGE_PREFIX} from both routers, border-a preferred")


def test_ibgp_and_its_bfd_are_up_between_the_routers_on_two_hosts(deployed):
    """Each router's iBGP session with the other, across the two hosts' firewalls, is
    Established, and the BFD session that watches it is Up. One open side is enough for
    iBGP (the other connects out, and its replies pass as established), so each host's
    BGP port is also tried from the other host: both must accept."""
    for router in ROUTERS.values():
        (other,) = (r for r in ROUTERS.values() if r is not router)
        assert deployed.on(other.host, f"nc -z -w 5 {router.ibgp_address} 179").returncode == 0, f"{other.name}'s host cannot reach {router.name}'s BGP port"
        target = deployed.target(router.name, router.host)
        session = bird_symbol("ibgp", other.name)
        eventually(lambda: protocols(target)[session].info == "Established", 60, what=f"{router.name}: iBGP with {other.name}")
        eventually(lambda: bfd_sessions(target).get(str(other.ibgp_address)) == "Up", 30, what=f"{router.name}: BFD with {other.name}")
        (upstream,) = (bird_protocol(u.name) for u in CFG.upstreams_of(router))
        eventually(lambda: bfd_sessions(target).get(sim.ISP_IP) == "Up" and protocols(target)[upstream].info == "Established", 30,
                   what=f"{router.name}: session and BFD with the ISP")


def test_an_outsider_finds_neither_router_hosts_bgp_port_open(deployed):
    """The iBGP opening is for the other router alone: from another Internet address (the
    scanner's), a full TCP scan of both edge hosts finds SSH and nothing else."""
    public = [str(r.ibgp_address) for r in ROUTERS.values()]
    assert sim.scan(public) == {address: ["22/tcp"] for address in public}


def test_verify_passes_with_two_routers(deployed):
    """The operator's `verify`: every session, BFD and iBGP check of both routers."""
    proc = subprocess.run(
        [sys.executable, "-m", "bgp4mesh", "verify", "--stack", STACK, "--project-dir", str(CACHE / "stacks"), "--wait", "60"],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAIL" not in proc.stdout
    for line in ("bfd border-a -> border-b 203.0.113.11 Up", "bfd border-b -> border-a 203.0.113.10 Up", "bfd border-a -> transit-a 192.0.2.9 Up"):
        assert line in proc.stdout, proc.stdout
