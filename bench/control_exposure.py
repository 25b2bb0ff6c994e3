"""What an outsider reaches on the control host, route by route: a throwaway container at an
address that is neither an operator's nor a member's (harness/sim/outsiders.py `outsider_http`: curl,
no credential, no trust in the certificate) asks the running stack's TLS front for a
representative call of every group of Netmaker v1.6.0 routes, and the answers are printed.
200/400/401 mean the request reached Netmaker (which then judged it); 403 from the front
means it never did.

    .venv/bin/python bench/control_exposure.py --stack dev       # a running dev lab
    .venv/bin/python bench/control_exposure.py --stack staging   # a running staging stack

Run it against a deployment of the old and of the new code to compare; one request each,
so there is no median to take."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bgp4mesh.addressing import underlay_plan  # noqa: E402
from bgp4mesh.naming import docker_name  # noqa: E402
from bgp4mesh.stack import load_file  # noqa: E402
from harness import sim  # noqa: E402
from tests.test_live_control import ANSWERED, REFUSED  # noqa: E402

CALLS = REFUSED + [
    ("GET", "/api/server/feature_flags"),
    ("GET", "/api/nodes"),
    ("GET", "/api/v1/egress?network=bgp4mesh"),
    ("GET", "/api/v1/acls?network=bgp4mesh"),
    ("GET", "/api/dns"),
    ("GET", "/api/extclients"),
    ("GET", "/api/logs"),
    ("GET", "/api/getip"),
    ("POST", "/api/hosts/adm/authenticate"),
] + list(ANSWERED)
"""The live tier's probes (tests/test_live_control.py) and one call of each other route group."""


def where(stack: str) -> tuple[str, str, str, str]:
    """(network, outsider address, front name, front address) for a running stack."""
    if stack == "staging":
        return sim.NETS["internet"].name, sim.SCAN_ADDRESS, "nm.staging.test", "203.0.113.20"
    cfg = load_file(stack)
    plan = underlay_plan(cfg)
    return docker_name(stack, "underlay"), str(plan.subnet.network_address + 250), cfg.netmaker.domain, str(plan.netmaker["tls"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stack", default="dev")
    args = ap.parse_args()
    network, source, host, address = where(args.stack)
    codes = sim.outsider_http(network, source, host, address, CALLS)
    print(f"stack {args.stack}: https://{host} ({address}) from {source} on {network}, one request per route, no credential")
    for (method, path), code in codes.items():
        print(f"  {code}  {method:6} {path}")
    reached = sum(1 for code in codes.values() if code != 403)
    print(json.dumps({"stack": args.stack, "routes": len(codes), "reached_netmaker": reached, "refused_by_front": len(codes) - reached}))


if __name__ == "__main__":
    main()
