"""Bring-up reliability: N consecutive `./scripts/lab up` / `verify` / `./scripts/lab down`
cycles of one stack, as an operator runs them (each a subprocess).

A cycle fails when `up` exits non-zero, `verify` (each check retried up to --wait s)
does not pass every check, or `down` leaves any labelled container, network or volume.
Prints each cycle, then the bring-up times (wall time of `up`, images already built)
as min / median / max over the successful cycles, and the failure count. Stops at the
first failure with --stop-on-failure, leaving that stack up for inspection."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.engine import CACHE  # noqa: E402
from tests.live import leftovers  # noqa: E402


def run(*cmd: str) -> tuple[int, float, str]:
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    return proc.returncode, time.monotonic() - started, (proc.stdout + proc.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--wait", type=float, default=60.0)
    parser.add_argument("--stop-on-failure", action="store_true")
    args = parser.parse_args()
    print(__doc__)
    py = str(ROOT / ".venv" / "bin" / "python")
    times, failures = [], []
    for i in range(1, args.cycles + 1):
        rc, up_s, out = run("./scripts/lab", "up", "--stack", args.stack)
        problem = f"up exited {rc}: {out.strip().splitlines()[-1] if out.strip() else ''}" if rc else ""
        if not problem:
            ran_with = str(CACHE / "stacks")  # the config the engine ran with (staging: filled from the simulation)
            rc, _, out = run(py, "-m", "bgp4mesh", "verify", "--stack", args.stack, "--project-dir", ran_with, "--wait", str(args.wait))
            failed = [line for line in out.splitlines() if line.startswith("FAIL ")]
            problem = f"verify: {out.strip().splitlines()[-1]}" + "".join(f"\n    {line}" for line in failed) if rc else ""
        if problem and args.stop_on_failure:
            print(f"cycle {i:2d}: FAIL {problem} (stack left up)", flush=True)
            failures.append(problem)
            break
        run("./scripts/lab", "down", "--stack", args.stack)
        left = leftovers(args.stack)
        if left and not problem:
            problem = f"down left {left}"
        if problem:
            failures.append(problem)
            print(f"cycle {i:2d}: FAIL {problem}", flush=True)
        else:
            times.append(up_s)
            print(f"cycle {i:2d}: ok, up {up_s:.1f}s", flush=True)
    if times:
        print(
            f"bring-up over {len(times)} successful cycles: min {min(times):.1f}s, "
            f"median {statistics.median(times):.1f}s, max {max(times):.1f}s"
        )
    print(f"{len(times)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
