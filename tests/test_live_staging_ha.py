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
from bgp4mesh.render import bird_protocol, bird_symbol
from harness import sim
from harness.engine import CACHE
from tests.live import eventually, staging_deployed

STACK = "staging-ha"
ISP = Target(sim.PREFIX + "isp")
ROUTERS = {"border-a": ("edge", sim.EDGE_UPLINK_ADDRESS, "203.0.113.10"), "border-b": ("edge-b", sim.EDGE_B_UPLINK_ADDRESS, "203.0.113.11")}
"""router -> (host, uplink address, iBGP address), as Pulumi.staging-ha.yaml places them."""


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
    for router, (host, _, _) in ROUTERS.items():
        (other,) = set(ROUTERS) - {router}
        assert deployed.on(ROUTERS[other][0], f"nc -z -w 5 {ROUTERS[router][2]} 179").returncode == 0, f"{other}'s host cannot reach {router}'s BGP port"
        target = deployed.target(router, host)
        session = bird_symbol("ibgp", other)
        eventually(lambda: protocols(target)[session].info == "Established", 60, what=f"{router}: iBGP with {other}")
        eventually(lambda: bfd_sessions(target).get(ROUTERS[other][2]) == "Up", 30, what=f"{router}: BFD with {other}")
        upstream = bird_protocol("transit-a" if router == "border-a" else "transit-b")
        eventually(lambda: bfd_sessions(target).get(sim.ISP_IP) == "Up" and protocols(target)[upstream].info == "Established", 30,
                   what=f"{router}: session and BFD with the ISP")


def test_an_outsider_finds_neither_router_hosts_bgp_port_open(deployed):
    """The iBGP opening is for the other router alone: from another Internet address (the
    scanner's), a full TCP scan of both edge hosts finds SSH and nothing else."""
    public = [address for _, _, address in ROUTERS.values()]
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
