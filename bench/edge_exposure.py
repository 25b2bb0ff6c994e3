"""The edge as the Internet sees it, on a running dev lab: which ports of each member's public
mesh address answer a SYN scan from the mock ISP's Internet test address (198.51.100.1), and
how many packets with spoofed sources, sent from the ISP's side, reach node1.

    .venv/bin/python bench/edge_exposure.py [--count 20]

Ports: the list tests/test_live_edge.py scans (1-1024, 5201, 8000-8100, 51821), with a web
server listening in node1 on 8080 (listed in its `inbound`) and 8081 (not). Spoofing: for
each class, `--count` ICMP echoes from scapy in the ISP's namespace, counted by tcpdump in
node1's namespace (a genuine source is sent too, so a capture that sees nothing is caught).
Run it against a lab of the old and of the new code to compare; counts, so no median."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bgp4mesh.birdc import Target  # noqa: E402
from bgp4mesh.naming import docker_name  # noqa: E402
from bgp4mesh.verify import mesh_ip  # noqa: E402
from bgp4mesh.docker_cli import docker  # noqa: E402
from harness import sim  # noqa: E402
from tests.test_live_edge import ISP, NODE1, PROBE, SPOOFED, Listeners, inside, scan  # noqa: E402

CLASSES = {"own prefix": "44.30.127.2", "private (10/8)": "10.1.2.3", "private (192.168/16)": "192.168.1.1", "genuine": PROBE}
assert set(CLASSES.values()) == set(SPOOFED) | {PROBE}


def arrivals(image: str, target: str, count: int) -> dict[str, int]:
    """Echo requests from each class's source that node1's namespace saw."""
    capture = "bgp4mesh-dev-bench-capture"
    docker("rm", "-f", capture, check=False)
    docker("run", "-d", "--name", capture, "--network", f"container:{NODE1}", "--cap-add", "NET_RAW", "--cap-add", "NET_ADMIN",
           "--entrypoint", "tcpdump", image, "-i", "any", "-n", "-l", "icmp and icmp[icmptype] = icmp-echo")
    try:
        time.sleep(2)
        script = (f"from scapy.all import IP, ICMP, send\n"
                  f"for s in {list(CLASSES.values())!r}:\n    send(IP(src=s, dst={target!r})/ICMP(id=4243), count={count}, verbose=False)\n")
        inside(ISP, image, "python3", "-c", script)
        time.sleep(3)
        seen = docker("logs", capture)
    finally:
        docker("rm", "-f", capture, check=False)
    return {name: sum(1 for line in seen.splitlines() if f"{src} > {target}" in line) for name, src in CLASSES.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=20)
    args = ap.parse_args()
    image = sim.sim_image(sim.SCAN_IMAGE)
    public = {m: mesh_ip(Target(docker_name("dev", m))) for m in ("border", "node1", "node2")}  # as each member holds it
    served = Listeners(image)
    try:
        found = scan(image, list(public.values()))
    finally:
        served.close()
    got = arrivals(image, public["node1"], args.count)
    print(f"SYN scan from {PROBE} in the ISP's namespace (listeners in node1 on 8080 and 8081):")
    for name, address in public.items():
        print(f"  {name:7} {address:15} open: {', '.join(found[address]) or 'none'}")
    print(f"spoofed ICMP echoes from the ISP's side to node1 ({args.count} per class), as node1 saw them:")
    for name, n in got.items():
        print(f"  {name:22} sent {args.count:3}  arrived {n:3}")
    print(json.dumps({"open": {k: found[v] for k, v in public.items()}, "arrived": got, "sent_per_class": args.count}))


if __name__ == "__main__":
    main()
