"""A growing mesh through the real Pulumi engine, as an operator runs it (issue #18).

For each N of --nodes and each of --cycles cycles, on the generated stack `bench` (the dev
stack with N mesh nodes on lab subnets of its own, harness.generated; node1 pinned, the
rest unpinned):
  up       `pulumi up` from empty (images already built); the join phase is told apart
           from the engine's event log: first to last step of the
           join resources of each member (enrollment keys, joins, members, address gates), ~1 s;
  verify   `python -m bgp4mesh verify` (every check retried up to --wait s), must pass;
  preview  `pulumi preview` on the up stack;
  memory   `docker stats --no-stream` on the up stack, at rest: each mesh node's container's
           memory and CPU (% of one core, one sample), and the control plane's (netmaker
           server, broker, TLS front);
  add      N+10 nodes (--add), `pulumi up` (join phase as above), then `verify` again;
  remove   back to N nodes, `pulumi up`;
  down     `pulumi destroy`, which must leave no labelled container, network or volume.
Times are wall-clock seconds of each command. Figures are printed per cycle, then per N
the median over the cycles (of one value per cycle). A failing step stops the bench with
its name; the stack is destroyed then unless --keep-on-failure.
Wrap it in `flock /tmp/bgp4mesh-dev.lock flock /tmp/bgp4mesh-lab.lock` on a shared machine."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bgp4mesh.docker_cli import DockerError, docker  # noqa: E402
from bgp4mesh.naming import docker_name  # noqa: E402
from harness import events  # noqa: E402
from harness.engine import CACHE, EngineError, Stack  # noqa: E402
from harness.generated import generated, node_names, set_nodes  # noqa: E402
from harness.labctl import stack_for  # noqa: E402
from tests.live import leftovers  # noqa: E402

STACK = "bench"
ADDED = 10
CONTROL_PLANE = ("netmaker-server", "netmaker-mq", "netmaker-tls")


class StepFailed(RuntimeError):
    def __init__(self, step: str, detail: str):
        super().__init__(f"step '{step}' failed: {detail}")
        self.step = step


def up(stack: Stack, step: str, figures: dict) -> None:
    """`pulumi up`; records the step's time and its join phase (step + " joins")."""
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "events.jsonl"
        try:
            result = stack.up(event_log=log)
        except EngineError as exc:
            raise StepFailed(step, str(exc)) from None
        joins = events.phase(log, events.in_joins)
    figures[step] = result.seconds
    if joins is not None:
        figures[f"{step} joins"] = joins.seconds


def verify(step: str, wait: float, figures: dict) -> None:
    """`python -m bgp4mesh verify` as an operator runs it, on the config the engine ran."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "bgp4mesh", "verify", "--stack", STACK, "--project-dir", str(CACHE / "stacks"), "--wait", str(wait)],
        cwd=ROOT, capture_output=True, text=True,
    )
    figures[step] = time.monotonic() - started
    if proc.returncode != 0:
        failed = [line for line in proc.stdout.splitlines() if line.startswith("FAIL ")]
        raise StepFailed(step, "\n    ".join([proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr.strip()[-2000:], *failed]))


def mebibytes(usage: str) -> float:
    """`docker stats`' MemUsage ("12.3MiB / 7.6GiB") as MiB."""
    amount = usage.split("/")[0].strip()
    for unit, scale in (("KiB", 1 / 1024), ("MiB", 1.0), ("GiB", 1024.0), ("kB", 1 / 1024), ("MB", 1.0), ("GB", 1024.0), ("B", 1 / 2**20)):
        if amount.endswith(unit):
            return float(amount[: -len(unit)]) * scale
    raise ValueError(f"memory usage {usage!r}")


def memory(nodes: list[str], figures: dict) -> None:
    """Median MiB and CPU % of a mesh node's container, and the control plane's containers'
    sums (CPU: % of one core, as `docker stats` samples it)."""
    try:
        out = docker("stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}\t{{.CPUPerc}}", *docker_names(nodes + list(CONTROL_PLANE)))
        rows = [line.split("\t") for line in out.splitlines()]
        used = {name: mebibytes(usage) for name, usage, _ in rows}
        cpu = {name: float(share.rstrip("%")) for name, _, share in rows}
        figures["MiB per node"] = statistics.median(used[n] for n in docker_names(nodes))
        figures["MiB control plane"] = sum(used[n] for n in docker_names(list(CONTROL_PLANE)))
        figures["CPU% per node"] = statistics.median(cpu[n] for n in docker_names(nodes))
        figures["CPU% control plane"] = sum(cpu[n] for n in docker_names(list(CONTROL_PLANE)))
    except (DockerError, KeyError, ValueError) as exc:
        raise StepFailed("memory", f"{type(exc).__name__}: {exc}") from None


def docker_names(members: list[str]) -> list[str]:
    return [docker_name(STACK, m) for m in members]


def down(stack: Stack, figures: dict) -> None:
    try:
        figures["down"] = stack.destroy().seconds
    except EngineError as exc:
        raise StepFailed("down", str(exc)) from None
    left = leftovers(STACK)
    if left:
        raise StepFailed("down", f"left {left}")


def preview(stack: Stack, figures: dict) -> None:
    try:
        figures["preview"] = stack.preview().seconds
    except EngineError as exc:
        raise StepFailed("preview", str(exc)) from None


def cycle(n: int, added: int, wait: float, figures: dict) -> dict:
    """One cycle at N nodes; its figures by step name, filled in as the steps pass (so a
    failed cycle still shows how far it got)."""
    stack = generated(STACK, n)
    up(stack, "up", figures)
    verify("verify", wait, figures)
    preview(stack, figures)
    memory(node_names(n), figures)
    set_nodes(stack, node_names(n + added))
    up(stack, f"add {added}", figures)
    verify(f"verify +{added}", wait, figures)
    set_nodes(stack, node_names(n))
    up(stack, f"remove {added}", figures)
    down(stack, figures)
    return figures


def clean_start(n: int) -> None:
    """Destroy whatever an interrupted run left; nothing labelled may remain."""
    generated(STACK, n).destroy()
    if leftovers(STACK):
        raise StepFailed("clean start", f"objects of stack {STACK} outside Pulumi's state: {leftovers(STACK)}")


def line(label: str, figures: dict) -> str:
    return f"{label}: " + ", ".join(f"{k} {v:.1f}{'' if k.startswith(('MiB', 'CPU%')) else 's'}" for k, v in figures.items())


def medians(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs if k in r) for k in runs[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[20, 50, 100])
    parser.add_argument("--cycles", type=int, default=1)
    parser.add_argument("--wait", type=float, default=120.0, help="seconds each verify check may retry (default 120)")
    parser.add_argument("--add", type=int, default=ADDED, help=f"nodes added, then removed (default {ADDED})")
    parser.add_argument("--keep-on-failure", action="store_true", help="leave the stack up after a failed step")
    args = parser.parse_args()
    print(__doc__, flush=True)
    step, figures = "clean start", {}
    try:
        for n in args.nodes:
            clean_start(n)
            runs = []
            for i in range(1, args.cycles + 1):
                step, figures = f"N={n} cycle {i}", {}
                runs.append(cycle(n, args.add, args.wait, figures))
                print(line(f"N={n:3d} cycle {i}", runs[-1]), flush=True)
            print(line(f"N={n:3d} median of {len(runs)} cycle(s)", medians(runs)), flush=True)
    except StepFailed as exc:
        print(line(f"{step}, steps passed", figures), flush=True)
        print(f"FAILED at {step}, {exc}", file=sys.stderr, flush=True)
        if not args.keep_on_failure:
            stack_for(STACK).destroy()  # the config the engine last ran: what is up
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
