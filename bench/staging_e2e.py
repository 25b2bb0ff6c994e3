"""Staging (the prod code path on simulated remote hosts) through the real engine: from an
empty stack to every `verify` check passing, its split, memory per host at rest, and how
long the edge host takes to bring BGP, the mesh and egress back after a reboot.

    .venv/bin/python bench/staging_e2e.py [--runs 3] [--reboots 3]

Each run: `pulumi destroy` (not timed), then `pulumi up` and `verify` (timed together, wall
clock). The split comes from what the engine prints per resource ("created (12s)"): the
longest host preparation, image pull, Netmaker readiness and mesh step (they overlap, so
they do not add up to the total); ACME is caddy's own "certificate obtained" time minus the
front's start; BGP is BIRD's Established time minus the border container's start. A reboot
is `docker restart` of the edge host container; recovery is until `verify` passes again
(it retries each check every second). Medians are printed with the runs."""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bgp4mesh import ssh  # noqa: E402
from bgp4mesh.naming import docker_name  # noqa: E402
from bgp4mesh.stack import load_file  # noqa: E402
from harness import sim, staging  # noqa: E402
from harness.engine import CACHE  # noqa: E402

STACK = "staging"
CREATED = re.compile(r"^\s*\+\s+(\S+)\s+(\S+)\s+created \((\d+(?:\.\d+)?)s\)", re.M)


def verify(wait: float) -> bool:
    proc = subprocess.run(
        [sys.executable, "-m", "bgp4mesh", "verify", "--stack", STACK, "--project-dir", str(CACHE / "stacks"), "--wait", str(wait)],
        capture_output=True, text=True,
    )
    return proc.returncode == 0


def on(host: str, command: str) -> str:
    cfg = load_file(STACK, CACHE / "stacks")
    return subprocess.run(ssh.command(cfg.host(host).ssh, ["sh", "-c", command]), capture_output=True, text=True, check=True).stdout


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.strip()[:26].rstrip("Z") + "+00:00").timestamp()


def split(stdout: str) -> dict[str, float]:
    steps = [(typ, name, float(s)) for typ, name, s in CREATED.findall(stdout)]

    def longest(match) -> float:
        return max((s for typ, name, s in steps if match(typ, name)), default=0.0)

    front = docker_name(STACK, "netmaker-tls")
    started = epoch(on("control", f"docker inspect -f '{{{{.State.StartedAt}}}}' {front}"))
    obtained = [json.loads(line)["ts"] for line in on("control", f"docker logs {front} 2>&1").splitlines() if "certificate obtained successfully" in line]
    border = docker_name(STACK, "border")
    border_started = epoch(on("edge", f"docker inspect -f '{{{{.State.StartedAt}}}}' {border}"))
    since = re.search(r"peer_transit\s+BGP\s+\S+\s+up\s+(\d{4}-\d\d-\d\d \S+|\S+)\s+Established", on("edge", f"docker exec {border} birdc show protocols"))
    return {
        "host prep": longest(lambda t, n: n.endswith("-host-prep")),
        "image pulls": longest(lambda t, n: t.endswith("RemoteImage")),
        "netmaker ready": longest(lambda t, n: n == "netmaker-ready"),
        "ACME issuance": (max(obtained) - started) if obtained else float("nan"),
        "BGP Established": _bird_since(since.group(1), border_started) - border_started if since else float("nan"),
        "mesh join": longest(lambda t, n: n.endswith("-join")),
        "mesh converged": longest(lambda t, n: n.endswith("-converged") or n.endswith("-address-applied")),
    }


def _bird_since(since: str, ref: float) -> float:
    from tests.live import bird_time

    return bird_time(since, ref)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reboots", type=int, default=3)
    args = parser.parse_args()
    info = sim.up()
    stack = staging.stack(STACK, info)
    totals, splits = [], []
    for run in range(args.runs):
        stack.destroy()
        t = time.monotonic()
        result = stack.up()
        if not verify(120):
            print(f"run {run + 1}: verify failed", file=sys.stderr)
            return 1
        totals.append(time.monotonic() - t)
        splits.append(split(result.stdout))
        print(f"run {run + 1}: empty -> all checks pass {totals[-1]:.1f}s (up {result.seconds:.1f}s); "
              + ", ".join(f"{k} {v:.1f}s" for k, v in splits[-1].items()), flush=True)
    time.sleep(20)  # at rest
    memory = sim.memory()
    recoveries = []
    for _ in range(args.reboots):
        t = time.monotonic()
        sim.restart_host("edge")
        if not verify(180):
            print("edge reboot: verify never passed again", file=sys.stderr)
            return 1
        recoveries.append(time.monotonic() - t)
        print(f"edge reboot -> all checks pass again: {recoveries[-1]:.1f}s", flush=True)
    print(f"\nstaging, {args.runs} runs, this machine (2 cores), real engine, simulated hosts over SSH:")
    print(f"  empty -> every verify check passing: median {statistics.median(totals):.1f}s (runs: {', '.join(f'{x:.1f}' for x in totals)})")
    for key in splits[0]:
        print(f"    {key}: median {statistics.median(s[key] for s in splits):.1f}s")
    print(f"  edge host reboot -> every check passing again: median {statistics.median(recoveries):.1f}s ({len(recoveries)} reboots)")
    print("  memory at rest (memory cgroup, as docker stats counts it): " + ", ".join(f"{k} {v}" for k, v in memory.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
