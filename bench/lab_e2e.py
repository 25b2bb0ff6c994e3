"""The dev lab end to end, for real: empty -> every ping passes; fault recovery; memory at rest.

empty->pings: wall time from starting `pulumi up` (harness/engine.py) on an empty engine (images
  already built, so builds are cache hits) until `verify` passes all its checks (BGP both
  sides, WireGuard handshakes, inbound pings from the ISP's test address, outbound pings,
  node-to-node pings), checks polled every second. Median of --runs full up/down cycles.
recovery: on the last run, `docker restart` of one container, then time until all checks
  pass again: the border router, a mesh node; and with the Netmaker server stopped, whether
  the pings still pass (tunnels keep working without the control plane).
memory: `docker stats --no-stream` of each container kind at rest (after all checks pass).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bgp4mesh.plan import build_plan  # noqa: E402
from bgp4mesh.docker_cli import docker  # noqa: E402
from bgp4mesh.stack import load_file  # noqa: E402
from bgp4mesh.verify import build_checks, run_checks  # noqa: E402
from harness.engine import Stack  # noqa: E402

CFG = load_file("dev")


SERVER_CHECKS = "mesh bgp4mesh: no reusable"
"""Checks that ask the Netmaker server itself (left out while it is stopped)."""


def all_pass(wait: float, server_up: bool = True) -> bool:
    checks = [c for c in build_checks(build_plan(CFG), "dev") if server_up or not c.name.startswith(SERVER_CHECKS)]
    return run_checks(checks, wait, lambda line: None) == 0


def until_all_pass(limit: float = 300) -> float:
    started = time.monotonic()
    while not all_pass(1):
        if time.monotonic() - started > limit:
            raise RuntimeError("checks did not all pass")
    return time.monotonic() - started


def recovery(container: str) -> float:
    started = time.monotonic()
    docker("restart", container)
    until_all_pass()
    return time.monotonic() - started


def memory() -> dict[str, str]:
    rows = docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}").splitlines()
    return {r.split()[0].removeprefix("bgp4mesh-dev-"): r.split(None, 1)[1].split(" / ")[0] for r in rows if r.startswith("bgp4mesh-dev-")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(__doc__)
    stack = Stack("dev")
    stack.destroy()  # whatever an interrupted run left
    totals = []
    for i in range(args.runs):
        started = time.monotonic()
        stack.up()
        deployed = time.monotonic() - started
        try:
            until_all_pass()
            totals.append(time.monotonic() - started)
            print(f"run {i + 1}: pulumi up returned after {deployed:.1f}s, all checks pass after {totals[-1]:.1f}s")
            if i == args.runs - 1:
                time.sleep(5)
                for name, mem in sorted(memory().items()):
                    print(f"  memory at rest {name:16s} {mem}")
                print(f"  recovery border restart: {recovery('bgp4mesh-dev-border'):.1f}s")
                print(f"  recovery node2 restart:  {recovery('bgp4mesh-dev-node2'):.1f}s")
                docker("stop", "bgp4mesh-dev-netmaker-server")
                try:
                    ok = all_pass(30, server_up=False)
                    print(f"  netmaker server stopped: all pings and handshakes still pass: {ok}")
                finally:
                    docker("start", "bgp4mesh-dev-netmaker-server")
        finally:
            stack.destroy()
    print(f"empty -> all checks pass: median {statistics.median(totals):.1f}s over {len(totals)} runs")


if __name__ == "__main__":
    main()
