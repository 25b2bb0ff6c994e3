"""Bring-up of each stack dual-stack (as its stack file has it) against the same stack with
every IPv6 key taken out (v4-only), in one run, through the real Pulumi engine. The labs (dev,
lab) run on this machine's Docker; staging on the simulated Internet (./scripts/sim up first).

Each round, per stack: both variants in turn (the order flips every round, so drift over the
run favours neither), each from empty: `pulumi destroy`, then `pulumi up` (timed), then
`verify` until every check passes (timed, one --wait budget), then the number of checks.
Medians over --runs rounds. Nothing else may run on the machine meanwhile: it prints the load.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bgp4mesh.plan import build_plan  # noqa: E402
from bgp4mesh.verify import build_checks, run_checks  # noqa: E402
from harness import events  # noqa: E402
from harness.engine import Stack  # noqa: E402

V6_KEYS = {
    "bgp4mesh:upstreams": ("link6", "neighbor6", "local_address6", "probe6"),
    "bgp4mesh:mesh": ("range6",),
    "bgp4mesh:lab": ("underlay6", "exchange6"),
}


def v4_only(config: dict) -> dict:
    """The stack's config with every IPv6 value removed (prefixes, sessions, mesh, lab, ROAs)."""
    out = copy.deepcopy(config)
    v4 = lambda items: [x for x in items if ":" not in str(x if not isinstance(x, dict) else x["prefix"])]  # noqa: E731
    out["bgp4mesh:prefixes"] = v4(out["bgp4mesh:prefixes"])
    for upstream in out["bgp4mesh:upstreams"]:
        for key in V6_KEYS["bgp4mesh:upstreams"]:
            upstream.pop(key, None)
        if "mock" in upstream and "announce" in upstream["mock"]:
            upstream["mock"]["announce"] = v4(upstream["mock"]["announce"])
    out["bgp4mesh:mesh"].pop("range6", None)
    out["bgp4mesh:mesh"]["egress_ranges"] = v4(out["bgp4mesh:mesh"].get("egress_ranges", []))
    lab = out.get("bgp4mesh:lab", {})
    for key in V6_KEYS["bgp4mesh:lab"]:
        lab.pop(key, None)
    lab.get("probe", {}).pop("prefix6", None)
    if "roas" in lab:
        lab["roas"] = v4(lab["roas"])
    return out


def load() -> str:
    return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


def stack_of(name: str, config: dict | None = None) -> Stack:
    """Stack `name` with `config` (None: its stack file's); staging's through harness/staging.py
    (the simulation's per-machine values, the session's password as a secret)."""
    if not name.startswith("staging"):
        return Stack(name, config)
    from harness import staging

    return staging.stack(name, cfg=config)


def model_of(stack: Stack):
    """The stack's model as `verify` reads it; staging's session password (a Pulumi secret in
    the config) from the simulation, where it was made."""
    if not stack.name.startswith("staging"):
        return stack.model()
    from bgp4mesh.stack import validate
    from harness import sim

    config, password = copy.deepcopy(stack.config), sim.load_info()["isp"]["md5_password"]
    for upstream in config["bgp4mesh:upstreams"]:
        upstream["password"] = password
    return validate({key.split(":", 1)[1]: value for key, value in config.items()})


def bring_up(stack_name: str, config: dict) -> tuple[float, float, int, str]:
    """(seconds of `pulumi up` from empty, seconds until every verify check passes, checks,
    the up's slowest resources by the engine's event log)."""
    stack = stack_of(stack_name, config)
    stack.destroy()
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "events.jsonl"
        started = time.monotonic()
        stack.up(event_log=log)
        up = time.monotonic() - started
        slow = ", ".join(f"{name} {seconds}s" for name, seconds in events.slowest(log))
    checks = build_checks(build_plan(model_of(stack)), stack_name)
    lines: list[str] = []
    started = time.monotonic()
    if run_checks(checks, 180, lines.append) != 0:
        raise RuntimeError("verify failed:\n" + "\n".join(line for line in lines if not line.startswith("PASS")))
    return up, time.monotonic() - started, len(checks), slow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stacks", nargs="+", default=["dev", "lab"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(__doc__)
    print(f"started under: {load()}", flush=True)
    for name in args.stacks:
        dual = stack_of(name).config
        variants = {"dual-stack": dual, "v4-only": v4_only(dual)}
        samples: dict[str, list[tuple[float, float, int, str]]] = {label: [] for label in variants}
        try:
            for i in range(args.runs):
                for label in (list(variants) if i % 2 == 0 else list(reversed(variants))):
                    up, verified, checks, slow = bring_up(name, variants[label])
                    samples[label].append((up, verified, checks, slow))
                    print(f"{name} round {i + 1} {label}: pulumi up {up:.1f}s (slowest: {slow}), verify {verified:.1f}s ({checks} checks; {load()})", flush=True)
        finally:
            stack_of(name, dual).destroy()
        for label, got in samples.items():
            ups, verifies = [g[0] for g in got], [g[1] for g in got]
            print(f"{name} {label}, median of {len(got)}: pulumi up {statistics.median(ups):.1f}s "
                  f"(range {min(ups):.1f}-{max(ups):.1f}), verify {statistics.median(verifies):.1f}s, {got[0][2]} checks")
    print(f"finished under: {load()}")


if __name__ == "__main__":
    main()
