"""Where a burst of joins spends its time: reads what a `pulumi up` of a lab left behind.

  .venv/bin/python -m bench.join_burst EVENT_LOG [--stack NAME]

EVENT_LOG is the engine's events of the up, as `pulumi up --json` streams them
(`./scripts/lab up --stack NAME -- --json > FILE`). Printed: the up's span, the join phase
(first join started to last gate done), how long each member's join command and gate took
(median, max), how many joins ran at once at most; with --stack, the Netmaker server's
registrations per minute and the pulls it served; and the kernel's neighbour-table limit
and overflows (what failed connections at 40+ nodes on this machine).
Why: issue #18 asks where the time goes (front, handlers, database, MQTT fan-out) before
anyone tunes the control plane; this reads the evidence instead of guessing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from collections import Counter
from pathlib import Path

STEPS = ("-join", "-address-applied", "-member", "-key", "-netclient", "-converged")


def steps(event_log: Path) -> dict[str, tuple[float, float]]:
    """Resource name -> (start, end) of its step, from the engine's event log."""
    started: dict[str, float] = {}
    spans: dict[str, tuple[float, float]] = {}
    for line in event_log.read_text().splitlines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        for kind in ("resourcePreEvent", "resOutputsEvent", "resOpFailedEvent"):
            meta = (event.get(kind) or {}).get("metadata")
            if not meta or meta.get("op") == "same":
                continue
            name = meta["urn"].rsplit("::", 1)[-1]
            if kind == "resourcePreEvent":
                started[name] = event["timestamp"]
            elif name in started:
                spans[name] = (started[name], event["timestamp"])
    return spans


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The largest number of spans open at the same moment."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
    running = peak = 0
    for _, delta in edges:
        running += delta
        peak = max(peak, running)
    return peak


def report(spans: dict[str, tuple[float, float]]) -> None:
    if not spans:
        print("no steps in the event log")
        return
    first, last = min(s for s, _ in spans.values()), max(e for _, e in spans.values())
    print(f"up: {last - first:.0f}s of steps")
    joins = {n: v for n, v in spans.items() if n.endswith("-join")}
    if joins:
        gates = [v for n, v in spans.items() if n.endswith(("-join", "-address-applied"))]
        print(f"join phase: {max(e for _, e in gates) - min(s for s, _ in joins.values()):.0f}s, "
              f"{len(joins)} joins, at most {most_at_once(list(joins.values()))} at once")
    for suffix in STEPS:
        took = [e - s for n, (s, e) in spans.items() if n.endswith(suffix)]
        if took:
            print(f"  {suffix[1:]:16s} n={len(took):4d} median {statistics.median(took):5.1f}s max {max(took):5.1f}s")


def server_log(stack: str) -> None:
    """Registrations per minute and the number of pulls, from the Netmaker server's log."""
    proc = subprocess.run(["docker", "logs", f"bgp4mesh-{stack}-netmaker-server"], capture_output=True, text=True)
    lines = (proc.stdout + proc.stderr).splitlines()
    per_minute = Counter(line.split()[2][:5] for line in lines if "registered with Netmaker" in line and len(line.split()) > 2)
    print("registrations per minute:", dict(sorted(per_minute.items())))
    print("pulls served:", sum("completed a pull" in line for line in lines))


def neighbour_table() -> None:
    """The kernel's ARP table is one for all network namespaces: on a lab underlay every member
    reaches its WireGuard peers' endpoints directly, ~n*n entries for n members. Past gc_thresh3
    new neighbours go unresolved and connections time out (issue #18: registrations' "dial tcp
    ...: i/o timeout", the Pulumi host's own API calls, missing handshakes)."""
    limit = Path("/proc/sys/net/ipv4/neigh/default/gc_thresh3")
    proc = subprocess.run(["dmesg"], capture_output=True, text=True)
    overflows = sum("neighbor table overflow" in line for line in proc.stdout.splitlines())
    print(f"neighbour table: gc_thresh3 {limit.read_text().strip() if limit.exists() else '?'}, "
          f"{overflows if proc.returncode == 0 else '?'} overflow messages in the kernel log")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("event_log", type=Path)
    parser.add_argument("--stack")
    args = parser.parse_args()
    report(steps(args.event_log))
    if args.stack:
        server_log(args.stack)
    neighbour_table()


if __name__ == "__main__":
    main()
