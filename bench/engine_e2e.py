"""The dev lab through the real Pulumi engine (harness/engine.py), beyond the first
bring-up (empty -> all checks pass is bench/lab_e2e.py's):

preview: `pulumi preview` of an up stack that has not changed, with the dev stack's 2 mesh
  nodes and with 20; median of --runs.
day two (one run each, on the dev stack): policy edit (max_prefixes 10 -> 12: the border
  router is replaced) with the longest gap of a 0.2 s ping train from the ISP's test
  address to node1; adding a node; removing it; a Netmaker network deleted behind Pulumi's
  back, repaired by `up`; `destroy`. Times are `pulumi up`/`destroy` wall time.
"""

from __future__ import annotations

import argparse
import copy
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bgp4mesh.plan import build_plan  # noqa: E402
from bgp4mesh.naming import docker_name  # noqa: E402
from bgp4mesh.stack import load_file  # noqa: E402
from bgp4mesh.verify import build_checks, mesh_ip, run_checks  # noqa: E402
from bgp4mesh.birdc import Target  # noqa: E402
from harness.engine import Stack  # noqa: E402
from tests.test_live_engine import PROBE, client  # noqa: E402


def until_all_pass(stack: Stack, limit: float = 300) -> None:
    cfg = stack.model()
    started = time.monotonic()
    while run_checks(build_checks(build_plan(cfg), stack.name), 1, lambda line: None) != 0:
        if time.monotonic() - started > limit:
            raise RuntimeError("checks did not all pass")


def timed(fn) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started


def preview_times(runs: int) -> None:
    for nodes in (2, 20):
        stack = Stack("dev")
        stack.config["bgp4mesh:mesh"]["nodes"] = stack.config["bgp4mesh:mesh"]["nodes"][:2] + [
            {"name": f"node{i}"} for i in range(3, nodes + 1)
        ]
        up = timed(stack.up)
        times = [stack.preview("--expect-no-changes").seconds for _ in range(runs)]
        print(f"preview of an up stack with {nodes:2d} mesh nodes: median {statistics.median(times):.1f}s over {runs} "
              f"(its pulumi up took {up:.1f}s)", flush=True)
        stack.destroy()


def longest_gap(seqs: list[int], interval: float) -> float:
    gaps = [b - a for a, b in zip(seqs, seqs[1:])]
    return (max(gaps) - 1) * interval if gaps else float("inf")


def day_two() -> None:
    stack = Stack("dev")
    stack.up()
    until_all_pass(stack)
    node = mesh_ip(Target(docker_name("dev", "node1")))
    train = subprocess.Popen(
        ["docker", "exec", docker_name("dev", "isp"), "timeout", "40", "ping", "-i", "0.2", "-W", "1", "-I", PROBE, node],
        stdout=subprocess.PIPE, text=True,
    )
    stack.config["bgp4mesh:upstreams"][0]["max_prefixes"] = 12
    edit = timed(stack.up)
    until_all_pass(stack)
    seqs = sorted(int(s) for s in re.findall(r"icmp_seq=(\d+)", train.communicate()[0]))
    print(f"policy edit: up {edit:.1f}s, longest ping gap {longest_gap(seqs, 0.2):.1f}s", flush=True)
    nodes = stack.config["bgp4mesh:mesh"]["nodes"]
    base = copy.deepcopy(nodes)
    nodes.append({"name": "node3"})
    print(f"add a node: up {timed(stack.up):.1f}s", flush=True)
    stack.config["bgp4mesh:mesh"]["nodes"] = base
    print(f"remove it: up {timed(stack.up):.1f}s", flush=True)
    with client(stack) as api:
        api.delete_network("bgp4mesh", force=True)
    repair = timed(stack.up)
    until_all_pass(stack)
    print(f"network deleted behind Pulumi's back, repaired by up: {repair:.1f}s", flush=True)
    print(f"destroy: {timed(stack.destroy):.1f}s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(__doc__)
    load_file("dev")
    preview_times(args.runs)
    day_two()


if __name__ == "__main__":
    main()
