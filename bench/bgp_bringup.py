"""Lab BGP bring-up: containers running -> session Established -> own prefix in the ISP's table.

Each run deploys the dev stack with `pulumi up` (harness/engine.py), then reads the
times BIRD itself recorded on the ISP (protocol state change for Established,
route install time for 44.30.127.0/24) and compares them with Docker's StartedAt
of the later of the two containers. Same clock (one kernel). Median of --runs.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bgp4mesh.birdc import Target, protocols  # noqa: E402
from bgp4mesh.naming import docker_name  # noqa: E402
from bgp4mesh.render import bird_protocol  # noqa: E402
from harness.engine import Stack  # noqa: E402
from tests.live import bird_time  # noqa: E402
from tests.live import container_started_at as started_at  # noqa: E402

ISP, BORDER = docker_name("dev", "isp"), docker_name("dev", "border")
PEER = bird_protocol("border")  # the ISP's session to the border router


def one_run(stack: Stack) -> tuple[float, float]:
    stack.up()
    try:
        isp = Target(ISP)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = isp.birdc("show", "route", "protocol", PEER)
            found = re.search(rf"44\.30\.127\.0/24\s+\S+\s+\[{PEER} (\S+)\]", text)
            if found and protocols(isp)[PEER].info == "Established":
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("own prefix never reached the ISP")
        both = max(started_at(ISP), started_at(BORDER))
        since = protocols(isp, PEER)[PEER].since
        return bird_time(since, both) - both, bird_time(found.group(1), both) - both
    finally:
        stack.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(__doc__)
    stack = Stack("dev")
    stack.destroy()  # whatever an interrupted run left
    est, pfx = [], []
    for i in range(args.runs):
        e, p = one_run(stack)
        est.append(e)
        pfx.append(p)
        print(f"run {i + 1}: Established {e:.2f}s, own prefix at ISP {p:.2f}s after both containers started")
    print(f"median over {args.runs}: Established {statistics.median(est):.2f}s, own prefix at ISP {statistics.median(pfx):.2f}s")


if __name__ == "__main__":
    main()
