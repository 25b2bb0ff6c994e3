#!/usr/bin/env python3
"""Latency of the Netmaker providers against a real v1.6.0 server on loopback.

Starts mosquitto + netmaker exactly like tests/test_netmaker_live.py (same launcher, random
ports, sqlite in a temp dir, everything removed at the end), then times, with
``time.perf_counter`` around each provider method call:

* create and read, per resource kind (NetmakerNetwork, EnrollmentKey, EgressGateway), N times
  each (N distinct objects for create, N reads of one object), reporting median/p90/min;
* a no-change second apply: check + diff for one network, one key and one egress (what
  ``pulumi up`` runs per resource when nothing changed, drift GETs included), N times.

Each provider call builds its own NetmakerClient (a fresh TCP connection), as in a real
``pulumi up``. The dynamic-provider gRPC hop and Pulumi engine overhead are not included.

Usage: .venv/bin/python bench/netmaker_calls.py [-n 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bgp4mesh.providers import (  # noqa: E402
    EgressGatewayProvider,
    EnrollmentKeyProvider,
    NetmakerNetworkProvider,
)
from tests.netmaker_fake import register_host  # noqa: E402
from tests.test_netmaker_live import LiveNetmaker, fake_host, wait_for  # noqa: E402


def timed(fn, *a):
    t0 = time.perf_counter()
    r = fn(*a)
    return r, (time.perf_counter() - t0) * 1000.0


def summary(ms: list[float]) -> str:
    s = sorted(ms)
    p90 = s[min(len(s) - 1, int(round(0.9 * (len(s) - 1))))]
    return f"median {statistics.median(s):7.2f} ms   p90 {p90:7.2f} ms   min {s[0]:7.2f} ms   (n={len(s)})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=20, help="samples per measurement (default 20, max 150)")
    n = min(max(ap.parse_args().n, 3), 150)

    nm = LiveNetmaker().start()
    try:
        conn = nm.connection
        netp, keyp, egp = NetmakerNetworkProvider(), EnrollmentKeyProvider(), EgressGatewayProvider()
        rows: list[tuple[str, list[float]]] = []

        # networks -------------------------------------------------------------------
        created, c_ms = [], []
        for i in range(n):
            inp = netp.check({}, {"connection": conn, "netid": f"bench-{i}", "address_range": f"10.{i + 1}.0.0/24",
                                  "provider_version": "1"}).inputs
            r, ms = timed(netp.create, inp)
            created.append(r)
            c_ms.append(ms)
        rows.append(("NetmakerNetwork create", c_ms))
        rows.append(("NetmakerNetwork read", [timed(netp.read, created[0].id, created[0].outs)[1] for _ in range(n)]))

        # keys (on network bench-0) --------------------------------------------------------
        keys, c_ms = [], []
        for i in range(n):
            inp = keyp.check({}, {"connection": conn, "networks": ["bench-0"], "tags": [f"bench-key-{i}"],
                                  "uses": 5, "provider_version": "1"}).inputs
            r, ms = timed(keyp.create, inp)
            keys.append(r)
            c_ms.append(ms)
        rows.append(("EnrollmentKey create", c_ms))
        rows.append(("EnrollmentKey read", [timed(keyp.read, keys[0].id, keys[0].outs)[1] for _ in range(n)]))

        # egress (gateway host registered through key 0) ----------------------------------------
        host = fake_host("bench-gw")
        with nm.client() as api:
            register_host(api, keys[0].outs["token"], host)
            wait_for(lambda: api.find_node_for_host("bench-0", "bench-gw"), what="gateway node")
        egs, c_ms = [], []
        for i in range(n):
            inp = egp.check({}, {"connection": conn, "network": "bench-0", "gateway_host_name": "bench-gw",
                                 "ranges": [f"192.168.{i}.0/24"], "egress_name": f"bench-eg-{i}",
                                 "provider_version": "1"}).inputs
            r, ms = timed(egp.create, inp)
            egs.append((r, inp))
            c_ms.append(ms)
        rows.append(("EgressGateway create (1 range)", c_ms))
        rows.append(("EgressGateway read", [timed(egp.read, egs[0][0].id, egs[0][0].outs)[1] for _ in range(n)]))

        # no-change second apply: check + diff for one of each ------------------------------------
        net0 = created[0]
        key_inp = keyp.check({}, {"connection": conn, "networks": ["bench-0"], "tags": ["bench-key-0"], "uses": 5,
                                  "provider_version": "1"}).inputs
        net_inp = netp.check({}, {"connection": conn, "netid": "bench-0", "address_range": "10.1.0.0/24",
                                  "provider_version": "1"}).inputs
        eg0, eg_inp = egs[0]
        apply_ms = []
        for _ in range(n):
            t0 = time.perf_counter()
            changes = []
            for prov, res, inp in ((netp, net0, net_inp), (keyp, keys[0], key_inp), (egp, eg0, eg_inp)):
                checked = prov.check(res.outs, inp).inputs
                d = prov.diff(res.id, res.outs, checked)
                changes.append(bool(d.changes or d.replaces))
            apply_ms.append((time.perf_counter() - t0) * 1000.0)
            assert not any(changes), f"second apply should change nothing, got {changes}"
        rows.append(("no-change apply: check+diff x3", apply_ms))

        # cleanup (also timed: deletes are what `destroy` does) -----------------------------------
        d_ms = [timed(egp.delete, r.id, r.outs)[1] for r, _ in egs]
        rows.append(("EgressGateway delete", d_ms))
        rows.append(("EnrollmentKey delete", [timed(keyp.delete, k.id, k.outs)[1] for k in keys]))
        rows.append(("NetmakerNetwork delete", [timed(netp.delete, c.id, c.outs)[1] for c in created]))

        print(f"Netmaker {nm.binary} (v1.6.0, sqlite) on {nm.url}, mosquitto on 127.0.0.1:{nm.mq_port}; "
              f"server ready in {nm.startup_seconds:.2f} s")
        print("Each figure: wall time of one provider method call (time.perf_counter), fresh client + TCP "
              "connection per call, no Pulumi engine/gRPC overhead.")
        for name, ms in rows:
            print(f"  {name:34s} {summary(ms)}")
    finally:
        nm.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
