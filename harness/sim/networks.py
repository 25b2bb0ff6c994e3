"""The simulation's networks: internal bridges (nothing leaves this machine) that may not
cover an address this machine needs, with routing allowed inside each bridge."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
from pathlib import Path
from typing import Optional

from bgp4mesh.docker_cli import docker
from components.docker_parts import intra_bridge_routing, ipv6_isolation

from .base import LABEL, SimError, inspect, wait
from .topology import NETS


def _bridge_rules(network_id: str, ipv6: bool) -> list[tuple[str, list[str]]]:
    """(tool, rule) of every host rule a sim network needs, as components/docker_parts gives a
    lab's: Docker's isolation of an internal network (br_netfilter on) also drops packets
    routed between containers of the same bridge (node-b -> router -> the Internet, edge ->
    ISP for the mesh), so what enters and leaves that bridge is accepted; with IPv6, the
    isolation Docker gives IPv4 alone."""
    bridge = f"br-{network_id[:12]}"
    rules = [("iptables", rule.split()) for rule in intra_bridge_routing(bridge)]
    if ipv6:
        rules += [("ip6tables", rule.split()) for rule in ipv6_isolation(bridge)]
    return rules


def _iptables(tool: str, *args: str, check: bool = True) -> bool:
    proc = subprocess.run([tool, "-w", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SimError(f"{tool} {' '.join(args)}: {proc.stderr.strip()}")
    return proc.returncode == 0


def _run(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def _needed_addresses() -> list[tuple[str, str]]:
    """(address, what it is) of every address this machine needs to reach: its own, its
    gateway, its DNS servers, the package registries."""
    needed: list[tuple[str, str]] = []
    for line in _run(["ip", "-4", "-o", "addr", "show"]).splitlines():
        f = line.split()
        addr = f[3].split("/")[0]
        if addr not in {n.gateway for n in NETS.values()}:
            needed.append((addr, f"this machine's address on {f[1]}"))
    for line in _run(["ip", "-4", "route", "show", "default"]).splitlines():
        needed.append((line.split()[2], "this machine's default gateway"))
    resolv = Path("/etc/resolv.conf").read_text() if Path("/etc/resolv.conf").exists() else ""
    needed += [(line.split()[1], "a DNS server in /etc/resolv.conf") for line in resolv.splitlines() if line.startswith("nameserver ")]
    for name in ("deb.debian.org", "pypi.org", "proxy.golang.org"):
        try:
            needed += [(ai[4][0], name) for ai in socket.getaddrinfo(name, 443, socket.AF_INET)]
        except OSError:
            pass
    return needed


def check_no_clash() -> None:
    """Refuse to put a sim network over an address this machine needs (a connected route
    to a sim bridge would capture its traffic)."""
    for addr, what in _needed_addresses():
        for net in NETS.values():
            if ipaddress.ip_address(addr) in ipaddress.ip_network(net.subnet):
                raise SimError(f"{addr} ({what}) is inside the sim's {net.key} network {net.subnet}; "
                               "bringing it up would cut this machine off from it")


def ensure_networks() -> None:
    check_no_clash()
    for net in NETS.values():
        found = inspect("network", net.name)
        if found:
            cfg = found.get("IPAM", {}).get("Config") or []
            if not (found.get("Internal") and {c.get("Subnet") for c in cfg} == net.subnets):
                raise SimError(f"network {net.name} exists with another shape ({cfg}); run `scripts/sim down` first")
        else:
            six = ["--ipv6", "--subnet", net.subnet6, "--gateway", net.gateway6] if net.subnet6 else []
            docker("network", "create", "--internal", "--driver", "bridge", "--label", LABEL,
                   "--subnet", net.subnet, "--gateway", net.gateway, "--ip-range", net.ip_range, *six, net.name)
            found = inspect("network", net.name)
        for tool, rule in _bridge_rules(found["Id"], bool(net.subnet6)):
            if not _iptables(tool, "-C", *rule, check=False):
                _iptables(tool, "-I", *rule)


def remove_network(name: str) -> Optional[str]:
    """Remove network `name` and its bridge rule; what went wrong, if anything."""
    found = inspect("network", name)
    if found:
        for tool, rule in _bridge_rules(found["Id"], True):
            while _iptables(tool, "-D", *rule, check=False):
                pass
    try:  # endpoints of just-removed containers are released asynchronously
        wait(f"removal of network {name}", lambda: docker("network", "rm", name) or True, 10)
    except SimError as exc:
        return (f"{exc} (with no container attached this is moby/moby#43286: a leaked endpoint count "
                "that only a dockerd restart clears; `up` reuses the network meanwhile)")
    return None
