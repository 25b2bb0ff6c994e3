"""Monitoring figures on the dev lab, deployed through the engine (`pulumi up`):

* at rest (every target up, nothing happening): CPU and memory of the monitoring container
  (Prometheus, Alertmanager, the control exporter; `docker stats`, --samples samples 5 s
  apart) and of each exporter process in the members and the mock ISP (RSS from
  /proc/<pid>/status, CPU from /proc/<pid>/stat ticks over a 30 s window);
* each target's scrape duration (Prometheus's `scrape_duration_seconds`, --samples reads);
* from a session drop (`docker stop` of the mock ISP) to BgpSessionDown firing, by
  Prometheus's activeAt and as seen through its API, and from `docker start` to resolved,
  --rounds times.

Prints medians (min-max). Run with nothing else on the machine's Docker."""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bgp4mesh.docker_cli import docker  # noqa: E402
from bgp4mesh.naming import docker_name  # noqa: E402
from harness.engine import Stack  # noqa: E402
from tests.prometheus_api import alerts, all_up, firing, plan_targets, query, wait_for  # noqa: E402

STACK = "dev"
EXPORTERS = ("prometheus-bird-exporter", "bgp4mesh-exporter", "bgp4mesh-control-exporter", "bgp4mesh-lg")
PROCS = r'for p in /proc/[0-9]*; do c="$(tr "\0" " " < $p/cmdline 2>/dev/null)"; echo "${p#/proc/} $(cut -d" " -f14,15 $p/stat 2>/dev/null) $(awk "/VmRSS/ {print \$2}" $p/status 2>/dev/null) $c"; done'


def spread(values: list[float], unit: str = "") -> str:
    return f"{statistics.median(values):.2f}{unit} ({min(values):.2f}-{max(values):.2f}, n={len(values)})"


def mebibytes(text: str) -> float:
    """docker stats' memory (`46.5MiB`) in MiB."""
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()
    return float(number) * {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[unit]


def processes(container: str) -> dict[str, tuple[int, int]]:
    """Exporter name -> (CPU ticks, RSS kB) of its process in `container`."""
    found = {}
    for line in docker("exec", container, "sh", "-c", PROCS).splitlines():
        parts = line.split(None, 4)
        if len(parts) == 5 and parts[1].isdigit():
            name = next((e for e in EXPORTERS if e in parts[4]), None)
            if name and "supervise" not in parts[4]:
                found[name] = (int(parts[1]) + int(parts[2]), int(parts[3]))
    return found


def at_rest(containers: list[str], samples: int) -> None:
    mon = docker_name(STACK, "monitoring")
    cpu, mem = [], []
    for _ in range(samples):
        text = docker("stats", "--no-stream", "--format", "{{.CPUPerc}} {{.MemUsage}}", mon)
        cpu.append(float(text.split("%")[0]))
        mem.append(mebibytes(text.split()[1]))
        time.sleep(5)
    print(f"monitoring container at rest: CPU {spread(cpu, ' %')}, memory {spread(mem, ' MiB')}")
    before = {c: processes(c) for c in containers}
    time.sleep(30)
    for c in containers:
        for name, (ticks, rss) in processes(c).items():
            used = (ticks - before[c].get(name, (ticks, 0))[0]) / 100 / 30 * 100  # USER_HZ 100
            print(f"  {c} {name}: RSS {rss / 1024:.1f} MiB, CPU {used:.2f} % over 30 s")


def scrape_durations(samples: int, interval: int) -> None:
    by_target: dict[str, list[float]] = {}
    for _ in range(samples):
        for r in query(STACK, "scrape_duration_seconds"):
            by_target.setdefault(f"{r['metric']['job']} {r['metric']['instance']}", []).append(float(r["value"][1]) * 1000)
        time.sleep(interval)
    for target, values in sorted(by_target.items()):
        print(f"  scrape {target}: {spread(values, ' ms')}")


def drop_to_alert(rounds: int, router: str, upstream: str) -> None:
    labels = {"router": router, "peer": upstream}
    isp = docker_name(STACK, upstream)
    by_clock, seen, resolved = [], [], []
    for _ in range(rounds):
        wait_for(lambda: not alerts(STACK, "BgpSessionDown", **labels), wait=120, what="no BgpSessionDown")
        dropped = time.time()
        docker("stop", isp)
        try:
            wait_for(lambda: firing(STACK, "BgpSessionDown", **labels), wait=60, every=0.2, what="BgpSessionDown firing")
            seen.append(time.time() - dropped)
            active = firing(STACK, "BgpSessionDown", **labels)[0]["activeAt"]
            by_clock.append(datetime.fromisoformat(active[:26].rstrip("Z") + "+00:00").timestamp() - dropped)
        finally:
            docker("start", isp)
        started = time.time()
        wait_for(lambda: not alerts(STACK, "BgpSessionDown", **labels), wait=120, every=0.2, what="BgpSessionDown resolved")
        resolved.append(time.time() - started)
    print(f"session drop -> BgpSessionDown firing: by Prometheus's activeAt {spread(by_clock, ' s')}, seen through its API {spread(seen, ' s')}")
    print(f"docker start -> resolved: {spread(resolved, ' s')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=6)
    args = parser.parse_args()
    print(__doc__)
    stack = Stack(STACK)
    stack.destroy()
    stack.up()
    try:
        model = stack.model()
        wait_for(lambda: all_up(STACK, plan_targets(model)), wait=180, what="every target up")
        members = [docker_name(STACK, m) for m in ["isp", *(r.name for r in model.border_routers), *(n.name for n in model.mesh.nodes), "monitoring"]]
        at_rest(members, args.samples)
        scrape_durations(args.samples, model.monitoring.scrape_interval)
        drop_to_alert(args.rounds, model.border_routers[0].name, model.upstreams[0].name)
    finally:
        stack.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
