"""RPKI route origin validation in the dev lab: how long a VRP change takes to reach the
border's table, and what BIRD's memory is with and without ROAs.

Needs the dev stack deployed (`--up` deploys it through the engine first, and `verify`s it).

Re-validation: --runs times, the lab cache's VRP file is replaced so that 192.0.2.0/24 (which
the mock ISP originates from its own AS) turns valid, then back to invalid; each time from
the file's replacement until the border's table shows the new state (accepted, or only in
`show route filtered`), polled every 100 ms. What it is made of: stayrtr reads the file every
`lab.roa_refresh` seconds and then notifies the router (Serial Notify), BIRD fetches the delta
and, after its settle time (1 s after the last ROA change, at most 20 s), reloads the eBGP
channels from their import tables. Medians and maxima, per direction.

Memory (`birdc show memory`, the Total line, effective): with the lab's ROAs; with --roas
synthetic VRPs (Internet-sized: about 500 000 today) added to the file; and with the ROA tables
empty (`birdc disable` of the rpki protocol). The import tables (what re-validation reloads
from) are there in all three; the difference is the ROA tables alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from ipaddress import IPv4Address
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bgp4mesh.plan import build_plan  # noqa: E402
from bgp4mesh.birdc import Target, route_count, routes  # noqa: E402
from bgp4mesh.config import RTR_CACHE_NAME  # noqa: E402
from bgp4mesh.naming import docker_name  # noqa: E402
from bgp4mesh.render import VRP_PATH, render_vrps, roa_table  # noqa: E402
from bgp4mesh.naming import bird_protocol, bird_rpki
from bgp4mesh.stack import load_file  # noqa: E402
from bgp4mesh.verify import build_checks, run_checks  # noqa: E402
from bgp4mesh.waiting import until  # noqa: E402
from harness.engine import Stack  # noqa: E402

STACK = "dev"
CFG = load_file(STACK)
UPSTREAM = CFG.upstreams[0]
BORDER = Target(docker_name(STACK, CFG.border_routers[0].name))
CACHE = Target(docker_name(STACK, RTR_CACHE_NAME.format(n=1)))
PEER, RTR, ROAS = bird_protocol(UPSTREAM.name), bird_rpki(0), roa_table(4)
PREFIX = "192.0.2.0/24"
SYNTHETIC_BASE = int(IPv4Address("11.0.0.0"))
"""Synthetic ROAs are /24s from here up (500 000 end near 18.160.0.0): none covers a lab prefix."""


def vrps(valid: bool, extra: int = 0) -> str:
    """The lab's VRP file, with PREFIX's ROA naming the ISP's AS when `valid`, and `extra` synthetic ROAs."""
    doc = json.loads(render_vrps(build_plan(CFG)))
    for roa in doc["roas"]:
        roa["asn"] = UPSTREAM.asn if valid and roa["prefix"] == PREFIX else roa["asn"]
    doc["roas"] += [{"prefix": f"{IPv4Address(SYNTHETIC_BASE + 256 * i)}/24", "maxLength": 24, "asn": 64512 + i % 1000} for i in range(extra)]
    return json.dumps(doc)


def accepted() -> bool:
    return any(r.prefix == PREFIX for r in routes(BORDER, "protocol", PEER))


def flip(valid: bool, wait: float) -> float:
    """Seconds from the file's replacement until PREFIX is accepted (valid) or filtered (invalid)."""
    start = time.monotonic()
    CACHE.write(VRP_PATH, vrps(valid))
    until(lambda: accepted() == valid or None, wait, every=0.1)
    return time.monotonic() - start


def memory() -> str:
    found = re.search(r"^Total:\s+(\S+ \S+)", BORDER.birdc("show", "memory"), re.M)
    return found.group(1) if found else "?"


def measure_revalidation(runs: int) -> dict[str, list[float]]:
    wait = CFG.lab.roa_refresh + 30
    until(lambda: not accepted() or None, wait, every=0.2)  # the lab's own state: invalid
    took: dict[str, list[float]] = {"invalid -> valid (accepted)": [], "valid -> invalid (filtered)": []}
    for _ in range(runs):
        took["invalid -> valid (accepted)"].append(flip(True, wait))
        took["valid -> invalid (filtered)"].append(flip(False, wait))
    return took


def measure_memory(extra: int) -> dict[str, str]:
    wait = 600
    out = {f"lab ROAs ({len(CFG.lab.roas)})": memory()}
    CACHE.write(VRP_PATH, vrps(False, extra))
    try:
        until(lambda: route_count(BORDER, ROAS) >= extra + len(CFG.lab.roas) or None, wait, every=1)
        out[f"lab + {extra} synthetic ROAs"] = memory()
    finally:
        CACHE.write(VRP_PATH, render_vrps(build_plan(CFG)))
    until(lambda: route_count(BORDER, ROAS) == len(CFG.lab.roas) or None, wait, every=1)
    BORDER.birdc("disable", RTR)
    try:
        until(lambda: route_count(BORDER, ROAS) == 0 or None, 30, every=0.5)
        out["no ROAs (rpki protocol disabled)"] = memory()
    finally:
        BORDER.birdc("enable", RTR)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--roas", type=int, default=500_000, help="synthetic VRPs for the memory figure")
    parser.add_argument("--up", action="store_true", help="deploy the dev stack first (pulumi up, then verify)")
    args = parser.parse_args()
    if args.up:
        Stack(STACK).up()
        lines: list[str] = []
        if run_checks(build_checks(build_plan(CFG), STACK), 180, lines.append) != 0:
            sys.exit("verify failed:\n" + "\n".join(lines))
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; stayrtr refresh {CFG.lab.roa_refresh} s", flush=True)
    for what, times in measure_revalidation(args.runs).items():
        print(f"VRP change, {what}: median {statistics.median(times):.1f} s, max {max(times):.1f} s over {len(times)} runs "
              f"({', '.join(f'{t:.1f}' for t in times)})", flush=True)
    for what, total in measure_memory(args.roas).items():
        print(f"BIRD memory (show memory, Total effective), {what}: {total}", flush=True)


if __name__ == "__main__":
    main()
