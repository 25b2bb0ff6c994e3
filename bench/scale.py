"""How config checking and program evaluation grow with the number of mesh nodes.

Measures (median of --runs runs each):
  check:   `python -m bgp4mesh check --stack benchN` as a subprocess (what an operator runs;
           includes interpreter start-up), for N mesh nodes;
  program: the real __main__ program evaluated under Pulumi's mock monitor with recording
           mocks (the unit tier's mocks: no side effects), for N mesh nodes.
The stacks are the dev stack with N generated nodes on a /20 prefix and a /20 underlay.
Each program run starts from the pickler state the previous one left, as one long
program would: the SDK's per-resource pickler wrapping (bgp4mesh.providers.pickling)
must not accumulate.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bgp4mesh.stack import raw_from_file  # noqa: E402


def stack_with_nodes(n: int) -> dict:
    raw = copy.deepcopy(raw_from_file("dev")[0])
    raw["prefixes"] = ["44.30.112.0/20", *(p for p in raw["prefixes"] if ":" in p)]  # dev's IPv6 block stays
    raw["mesh"]["range"] = "44.30.112.0/20"
    raw["lab"]["underlay"] = "172.31.0.0/20"
    raw["mesh"]["nodes"] = [{"name": f"node{i}"} for i in range(n)]
    return raw


def time_check(n: int, runs: int) -> float:
    name = f"bench{n}"
    path = ROOT / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump({"config": {f"bgp4mesh:{k}": v for k, v in stack_with_nodes(n).items()}}))
    try:
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "bgp4mesh", "check", "--stack", name], cwd=ROOT, capture_output=True, text=True)
            times.append(time.perf_counter() - t)
            assert proc.returncode == 0, proc.stderr
        return statistics.median(times)
    finally:
        path.unlink()


def time_program(n: int, runs: int) -> tuple[float, int]:
    from tests.program_mocks import RecordingMocks, run_program

    times, count = [], 0
    for _ in range(runs):
        mocks = RecordingMocks()
        t = time.perf_counter()
        run_program("dev", mocks, stack_with_nodes(n))
        times.append(time.perf_counter() - t)
        count = len(mocks.resources)
    return statistics.median(times), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--program-runs", type=int, default=3, help="runs per size of the (slow) program evaluation")
    args = parser.parse_args()
    print(__doc__)
    for n in (10, 100, 1000):
        print(f"check   N={n:5d}: median {time_check(n, args.runs):.3f}s over {args.runs} runs")
    for n in (100, 1000, 2000):
        median, count = time_program(n, args.program_runs)
        print(f"program N={n:5d}: median {median:.3f}s over {args.program_runs} runs ({count} resources declared)")


if __name__ == "__main__":
    main()
