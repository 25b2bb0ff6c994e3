"""The simulated Internet seen by an outsider: throwaway containers at an address no host
trusts, scanning every TCP port (nmap) or asking a web front for routes (curl)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter

from .base import LABEL, PREFIX
from .containers import run_once
from .images import SCAN_IMAGE, sim_image
from .topology import NETS, SCAN_ADDRESS


def scan(addresses: list[str]) -> dict[str, list[str]]:
    """Every open TCP port (1-65535, SYN scan) of each address as the Internet sees it:
    {address: ["22/tcp", ...]}."""
    return {a: [f"{p}/tcp" for p in sorted(opened)] for a, (opened, _) in scan_report(addresses).items()}


def scan_report(addresses: list[str], network: str = "", source: str = SCAN_ADDRESS, label: str = LABEL,
                rate: int = 5000, retries: int = 1) -> dict[str, tuple[set[int], dict[str, int]]]:
    """A SYN scan of every TCP port from one throwaway nmap container at `source` on
    `network` (the sim's internet by default): {address: (open ports, how many of the rest
    nmap found in each other state: dropped is "filtered", refused "closed")}."""
    xml = run_once(PREFIX + "scan", "--label", label, "--network", network or NETS["internet"].name, "--ip", source,
                   "--cap-add", "NET_RAW", "--cap-add", "NET_ADMIN", sim_image(SCAN_IMAGE),
                   "-n", "-Pn", "-sS", "-p-", "--min-rate", str(rate), "--max-retries", str(retries), "-oX", "-", *addresses, timeout=900)
    found: dict[str, tuple[set[int], dict[str, int]]] = {}
    for host in ET.fromstring(xml).iter("host"):
        states = {int(p.get("portid")): p.find("state").get("state") for p in host.iter("port")}
        rest = Counter(s for s in states.values() if s != "open")
        rest.update({e.get("state"): int(e.get("count")) for e in host.iter("extraports")})
        found[host.find("address").get("addr")] = ({p for p, s in states.items() if s == "open"}, dict(rest))
    return {a: found.get(a, (set(), {})) for a in addresses}


def outsider_http(network: str, source: str, host: str, address: str, calls: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The HTTP status of each (method, path) at https://<host> (resolved to `address`),
    asked by a throwaway container at `source` on `network`: an address that is neither
    an operator's nor a member's, with no credential and no trust in the certificate. HTTP/1.1,
    so that a path Go's HTTP/2 server resets before Caddy sees it (`..` segments) still meets
    the allow-list."""
    script = "\n".join(
        f"curl -sk --http1.1 -o /dev/null -w '%{{http_code}}\\n' -m 10 --path-as-is -X {m} -H 'Content-Type: application/json' "
        f"-d '{{\"username\":\"mallory\",\"password\":\"mallory-pw\"}}' --resolve {host}:443:{address} 'https://{host}{p}'"
        for m, p in calls
    )
    out = run_once(PREFIX + "outsider", "--label", LABEL, "--network", network, "--ip", source,
                   "--entrypoint", "sh", sim_image(SCAN_IMAGE), "-c", script, timeout=300)
    return dict(zip(calls, (int(code) for code in out.split())))
