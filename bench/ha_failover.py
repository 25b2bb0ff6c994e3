"""HA failover of the `lab` stack (two border routers, two mock ISPs, the probe), through the
real Pulumi engine, with BFD and without it, in one run.

For each configuration: the stack is brought up from empty (`pulumi destroy`, `pulumi up`,
then `verify` until every check passes); then, --runs times each, a failure is injected while
ping trains run (50 ms interval, 20 s), in each address family: from the probe's Internet
address to node1 (traffic that starts on the Internet: in through BGP, back out through the
egress), and from node1 to the probe (starts in the mesh); IPv4 and IPv6 side by side. A train's loss window is its longest run of
unanswered requests times the interval. Failures, each repaired without `pulumi up`:

  router kill     `docker kill` border-a; repaired by `docker start`
  upstream cut    border-a's link to isp-a down (`ip link set`); repaired by link up
  mesh loss       border-a's WireGuard port dropped (iptables), BIRD running; rules removed

After each repair, the failback window (the trains' longest gap while traffic returns) and the
failback time (repair until node1's egress and the probe's best path are on border-a again,
polled every 100 ms). Also: the drain (pulumi up with border-a in maintenance, then `docker
stop`), counting lost requests of both trains at the stop; and BGP after `docker restart`
border-a, by BIRD's own clocks on isp-a: the session Established, and our prefix announced
normally again (the mesh is back), against the container's start.

It waits until no bgp4mesh-sim-* container runs (another session's simulation) and prints the
machine's load. Medians over --runs.

With --tree LABEL=DIR given twice or more (checkouts of this project, e.g. before and after a
change to the agents), it compares them in one run, with BFD: each round brings the stack up
from each tree in turn (`pulumi up` from that directory: its images and program replace the
containers; the order flips every round, so drift over the run does not favour one), then
measures each failure once and the restart; medians per tree over --runs rounds.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bgp4mesh.plan import build_plan  # noqa: E402
from bgp4mesh.birdc import Target, protocols, routes  # noqa: E402
from bgp4mesh.naming import docker_name  # noqa: E402
from bgp4mesh.naming import bird_protocol  # noqa: E402
from bgp4mesh.verify import EGRESS_FAILOVER, GSHUT, build_checks, mesh_ip, run_checks, state_file  # noqa: E402
from bgp4mesh.waiting import until  # noqa: E402
from bgp4mesh.docker_cli import docker  # noqa: E402
from harness.engine import Stack  # noqa: E402
from tests.live import PingTrain, bird_time, container_started_at  # noqa: E402

STACK = "lab"
PROBE, NODE, NODE_IP, OWN = "192.0.2.1", "node1", "44.30.127.10", "44.30.127.0/24"
PROBE6 = "2001:db8:1920::1"
DIRECTIONS = ("in", "out", "in6", "out6")
"""The trains: from the probe and from the node, in IPv4, then in IPv6."""
INTERVAL, COUNT, LEAD = 0.05, 400, 3.0
WIREGUARD = [["INPUT", "-p", "udp", "--dport", "51821", "-j", "DROP"], ["OUTPUT", "-p", "udp", "--sport", "51821", "-j", "DROP"]]


def name(member: str) -> str:
    return docker_name(STACK, member)


def t(member: str) -> Target:
    return Target(name(member))


def wait_for_quiet_machine() -> None:
    while True:
        sims = [n for n in docker("ps", "--format", "{{.Names}}").split() if n.startswith("bgp4mesh-sim-")]
        if not sims:
            return
        print(f"waiting: {len(sims)} bgp4mesh-sim-* container(s) running", flush=True)
        time.sleep(30)


def load() -> str:
    running = len(docker("ps", "-q").split())
    return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores, {running} containers running"


def verify(stack: Stack, wait: float = 120) -> None:
    cfg = stack.model()
    lines: list[str] = []
    if run_checks(build_checks(build_plan(cfg), STACK), wait, lines.append) != 0:
        raise RuntimeError("verify failed:\n" + "\n".join(line for line in lines if not line.startswith("PASS")))


def preferred() -> bool:
    """node1's egress and the probe's way in are on border-a again."""
    best = next((r.protocol for r in routes(t("probe"), OWN) if r.best), "")
    return state_file(t(NODE), EGRESS_FAILOVER).get("active") == "44.30.127.1" and best == bird_protocol("isp-a")


def trains() -> dict[str, PingTrain]:
    """The trains by DIRECTIONS key (node1's v6 address is Netmaker's: read where it is held)."""
    node6 = mesh_ip(t(NODE), 6)
    return {
        "in": PingTrain(name("probe"), NODE_IP, COUNT, INTERVAL, source=PROBE),
        "out": PingTrain(name(NODE), PROBE, COUNT, INTERVAL),
        "in6": PingTrain(name("probe"), node6, COUNT, INTERVAL, source=PROBE6),
        "out6": PingTrain(name(NODE), PROBE6, COUNT, INTERVAL),
    }


def during(action) -> tuple[dict[str, float], float]:
    """(each train's longest gap by direction, seconds until the preferred paths hold again
    or 0) for `action` run LEAD seconds into the trains."""
    running = trains()
    time.sleep(LEAD)
    started = time.monotonic()
    action()
    back = 0.0
    if action.__name__.startswith("repair"):
        until(preferred, 60, every=0.1, retry_on=(Exception,))
        back = time.monotonic() - started
    return {d: train.result().window for d, train in running.items()}, back


def shown(gaps: dict[str, float]) -> str:
    return f"IPv4 {gaps['in']:.2f}s from the probe, {gaps['out']:.2f}s from the node; IPv6 {gaps['in6']:.2f}s / {gaps['out6']:.2f}s"


def link(up: bool) -> None:
    out = t("border-a").run("ip", "-4", "-o", "addr", "show").stdout
    interface = next(line.split()[1] for line in out.splitlines() if " 172.30.16.100/" in line)
    t("border-a").run("ip", "link", "set", interface, "up" if up else "down")


def failures():
    """(name, break, repair) of each failure."""

    def break_kill():
        docker("kill", name("border-a"))

    def repair_kill():
        docker("start", name("border-a"))

    def break_link():
        link(False)

    def repair_link():
        link(True)

    def break_mesh():
        for rule in WIREGUARD:
            t("border-a").run("iptables", "-I", *rule)

    def repair_mesh():
        for rule in WIREGUARD:
            t("border-a").run("iptables", "-D", *rule)

    return [("router kill", break_kill, repair_kill), ("upstream cut", break_link, repair_link), ("mesh loss", break_mesh, repair_mesh)]


def drain(stack: Stack) -> int:
    """Lost requests of both trains when border-a, drained by `pulumi up`, is stopped."""
    stack.config["bgp4mesh:border_routers"][0]["maintenance"] = True
    stack.up()
    until(lambda: state_file(t(NODE), EGRESS_FAILOVER).get("active") == "44.30.127.2", 30, every=0.1, retry_on=(Exception,))
    running = trains()
    time.sleep(LEAD)
    docker("stop", name("border-a"))
    lost = sum(train.result().lost for train in running.values())
    docker("start", name("border-a"))
    stack.config["bgp4mesh:border_routers"][0]["maintenance"] = False
    stack.up()
    verify(stack)
    return lost


def restart_convergence(stack: Stack) -> tuple[float, float]:
    """(session Established at isp-a, our prefix announced normally at isp-a), seconds after
    border-a's container started, by BIRD's clock on isp-a."""
    docker("restart", name("border-a"))
    started = container_started_at(name("border-a"))
    peer = bird_protocol("border-a")

    def normal():
        got = [r for r in routes(t("isp-a"), "protocol", peer)]
        return len(got) == 1 and got[0].as_path == [65000] and GSHUT not in got[0].communities and protocols(t("isp-a"))[peer].info.startswith("Established")

    until(normal, 90, every=0.2, retry_on=(Exception,))
    since = protocols(t("isp-a"), peer)[peer].since
    text = t("isp-a").birdc("show", "route", "protocol", peer)
    changed = text.split(f"[{peer} ", 1)[1].split("]", 1)[0].split()[0]
    verify(stack)
    return bird_time(since, started) - started, bird_time(changed, started) - started


def without_bfd(config: dict) -> dict:
    config = copy.deepcopy(config)
    for upstream in config["bgp4mesh:upstreams"]:
        upstream.pop("bfd", None)
    config["bgp4mesh:policy"].pop("ibgp_bfd", None)
    return config


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}s" if values else "-"


def check_configuration(bfd: bool) -> None:
    """The routers run what is measured (another process could have replaced the stack)."""
    running = any(p.proto == "BFD" for p in protocols(t("border-a")).values())
    if running != bfd:
        raise RuntimeError(f"border-a runs {'with' if running else 'without'} BFD: the stack changed under the bench")


def run_configuration(label: str, config: dict, runs: int, only: str | None) -> None:
    stack = Stack(STACK, config)
    bfd = any("bfd" in u for u in config["bgp4mesh:upstreams"])
    print(f"\n== {label}, from {time.strftime('%H:%M:%S')} ({load()})", flush=True)
    bringup = []
    for i in range(1 if only else runs):
        stack.destroy()
        started = time.monotonic()
        stack.up()
        verify(stack)
        bringup.append(time.monotonic() - started)
        print(f"bring-up {i + 1}: {bringup[-1]:.1f}s from empty to every verify check passing", flush=True)
    for what, breaks, repair in failures():
        if only and what != only:
            continue
        samples: dict[str, list[float]] = {}
        for i in range(runs):
            check_configuration(bfd)
            gaps, _ = during(breaks)
            backs, back = during(repair)
            verify(stack)
            for key, value in [*gaps.items(), *((f"back_{d}", v) for d, v in backs.items()), ("back", back)]:
                samples.setdefault(key, []).append(value)
            print(f"{what} {i + 1}: loss {shown(gaps)}; failback loss {shown(backs)}; preferred paths back after {back:.2f}s", flush=True)
        loss = {d: statistics.median(samples[d]) for d in DIRECTIONS}
        failback = {d: statistics.median(samples[f"back_{d}"]) for d in DIRECTIONS}
        print(f"{what}, median of {runs}: loss window {shown(loss)}; failback window {shown(failback)}; "
              f"preferred paths back after {median(samples['back'])}")
    if only:
        return
    lost = [drain(stack) for _ in range(runs)]
    print(f"drain, {runs} runs: requests lost when the drained router stops: {lost} (median {statistics.median(lost)})")
    established, announced = [], []
    for i in range(runs):
        e, a = restart_convergence(stack)
        established.append(e)
        announced.append(a)
        print(f"restart {i + 1}: Established at isp-a {e:.2f}s, prefix announced normally {a:.2f}s after the container started", flush=True)
    print(f"restart, median of {runs}: Established {median(established)}, announced normally {median(announced)}")
    print(f"bring-up, median of {runs}: {median(bringup)}")


def measure_once(stack: Stack) -> dict[str, float]:
    """One sample of each failure (loss and failback windows, the preferred paths back) and
    of the restart, on the stack as it runs."""
    sample: dict[str, float] = {}
    for what, breaks, repair in failures():
        check_configuration(True)
        gaps, _ = during(breaks)
        backs, sample[f"{what}: preferred paths back"] = during(repair)
        for d in DIRECTIONS:
            sample[f"{what}: loss {d}"], sample[f"{what}: failback {d}"] = gaps[d], backs[d]
        verify(stack)
    sample["restart: Established"], sample["restart: announced normally"] = restart_convergence(stack)
    return sample


def compare_trees(trees: dict[str, Path], runs: int) -> None:
    """Each round: every tree brought up in turn (order flipped each round) and measured once."""
    base = Stack(STACK).config
    samples: dict[str, dict[str, list[float]]] = {label: {} for label in trees}
    Stack(STACK, base).destroy()
    for i in range(runs):
        for label in (list(trees) if i % 2 == 0 else list(reversed(trees))):
            stack = Stack(STACK, copy.deepcopy(base), project_dir=trees[label])
            started = time.monotonic()
            stack.up()
            verify(stack)
            print(f"round {i + 1}, {label} ({trees[label]}): up and verified in {time.monotonic() - started:.0f}s ({load()})", flush=True)
            for key, value in measure_once(stack).items():
                samples[label].setdefault(key, []).append(value)
                print(f"  {key}: {value:.2f}s", flush=True)
    print(f"\n== medians of {runs} rounds per tree, with BFD (each value: a train's longest gap, or seconds until the state held)")
    labels = list(trees)
    print(f"{'':48}" + "".join(f"{label:>12}" for label in labels))
    for key in samples[labels[0]]:
        print(f"{key:48}" + "".join(f"{median(samples[label][key]):>12}" for label in labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=[what for what, _, _ in failures()], help="one failure alone (after one bring-up), e.g. to re-measure it after a change")
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=DIR", help="compare checkouts (twice or more), alternating")
    args = parser.parse_args()
    print(__doc__)
    wait_for_quiet_machine()
    print(f"measured under: {load()}; trains {COUNT} x {INTERVAL * 1000:.0f} ms, failure {LEAD:.0f}s in")
    base = Stack(STACK).config
    try:
        if args.tree:
            compare_trees({label: Path(d).resolve() for label, d in (t.split("=", 1) for t in args.tree)}, args.runs)
            return
        run_configuration("with BFD (100 ms x 3 on every session)", base, args.runs, args.only)
        run_configuration("without BFD (hold time 9 s)", without_bfd(base), args.runs, args.only)
    finally:
        Stack(STACK, base).destroy()
    print(f"\nfinished under: {load()}")


if __name__ == "__main__":
    main()
