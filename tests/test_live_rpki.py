"""Live tier, dev lab: RPKI route origin validation (issue 16, MANRS action 1).

The lab's RTR cache (stayrtr) serves `lab.roas` to the border over RTR version 1: the mock
ISP's 192.0.2.0/24 has a ROA for another origin (AS 64999), so the border must filter it and
still show it in `show route filtered`; 198.51.100.0/24 has none and is accepted; our own
44.30.127.0/24 is valid, as `verify` reports. Then the VRP file changes under the cache and
the route's new state must follow within the cache's refresh interval plus BIRD's longest
settle time (20 s), with no BGP session reset; and with the cache gone and its ROAs flushed,
validation fails open and `verify` says so.
"""

from __future__ import annotations

import json
import time

from bgp4mesh.birdc import Target, protocols, roa_state, route_count, routes
from bgp4mesh.config import RTR_CACHE_NAME
from bgp4mesh.naming import docker_name
from bgp4mesh.render import VRP_PATH
from bgp4mesh.naming import bird_protocol, bird_rpki, roa_table
from bgp4mesh.stack import load_file
from bgp4mesh.verify import CheckFailed, rpki_checks, run_checks
from bgp4mesh.docker_cli import docker
from tests.live import bird_time, eventually
from tests import plans

CFG = load_file("dev")
UPSTREAM = CFG.upstreams[0]
BORDER = Target(docker_name("dev", CFG.border_routers[0].name))
ISP = Target(docker_name("dev", UPSTREAM.name))
CACHE = Target(docker_name("dev", RTR_CACHE_NAME.format(n=1)))
PEER, RTR, ROAS = bird_protocol(UPSTREAM.name), bird_rpki(0), roa_table(4)
INVALID, NOT_FOUND, OWN = "192.0.2.0/24", "198.51.100.0/24", "44.30.127.0/24"
SETTLE_MAX = 20
"""BIRD's max settle time (default): the longest a ROA change waits before channels reload."""
DEADLINE = CFG.lab.roa_refresh + SETTLE_MAX


def test_the_lab_is_what_this_test_assumes():
    announced = {str(p) for p in UPSTREAM.mock.announce}
    roas = {str(r.prefix): r.asn for r in CFG.lab.roas}
    assert {INVALID, NOT_FOUND} <= announced and roas.get(INVALID) not in (None, UPSTREAM.asn)
    assert NOT_FOUND not in roas and roas.get(OWN) == CFG.asn and CFG.rpki.invalid == "reject"


def accepted() -> set[str]:
    return {r.prefix for r in routes(BORDER, "protocol", PEER)}


def filtered() -> set[str]:
    return {r.prefix for r in routes(BORDER, "filtered", "protocol", PEER)}


def since(t: Target, protocol: str) -> float:
    """The `Since` column of `show protocols` in epoch seconds: when the session last changed
    state. BIRD prints its monotonic clock as wall time, so the same instant can read a
    moment apart; a reset moves it by the seconds the session took to come back."""
    return bird_time(protocols(t, protocol)[protocol].since, time.time())


def unchanged(before: tuple[float, ...], after: tuple[float, ...]) -> bool:
    return all(abs(a - b) < 0.5 for a, b in zip(before, after))


def vrps_with(prefix: str, asn: int) -> str:
    """The lab's VRP file with the ROA of `prefix` now for `asn`."""
    doc = json.loads(plans.vrps(CFG))
    for roa in doc["roas"]:
        roa["asn"] = asn if roa["prefix"] == prefix else roa["asn"]
    return json.dumps(doc)


def baseline() -> None:
    eventually(lambda: protocols(BORDER)[RTR].info == "Established", wait=60, what=f"{RTR} Established")
    eventually(lambda: INVALID in filtered() and NOT_FOUND in accepted() and INVALID not in accepted(), wait=DEADLINE + 15,
               what=f"{INVALID} filtered, {NOT_FOUND} accepted")


def test_the_cache_speaks_rtr_v1_to_the_border(dev_lab):
    eventually(lambda: protocols(BORDER)[RTR].info == "Established", wait=60, what=f"{RTR} Established")
    shown = BORDER.birdc("show", "protocols", "all", RTR)
    assert "Protocol version: 1" in shown, shown
    for version in (4, 6):  # a ROA table per family
        want = sum(r.prefix.version == version for r in CFG.lab.roas)
        eventually(lambda: route_count(BORDER, roa_table(version)) == want, wait=15, what=f"every lab IPv{version} ROA in the border's table")


def test_invalid_is_filtered_not_found_accepted_own_valid(dev_lab):
    baseline()
    assert roa_state(BORDER, ROAS, INVALID, UPSTREAM.asn) == "invalid"
    assert roa_state(BORDER, ROAS, NOT_FOUND, UPSTREAM.asn) == "not found"
    assert routes(BORDER, INVALID) == []  # kept only as filtered: not in the table, not in the kernel
    assert INVALID.split("/")[0] not in BORDER.run("ip", "route", "show", "proto", "bird").stdout
    lines: list[str] = []
    assert run_checks(rpki_checks(plans.of(CFG), "dev"), 30, lines.append) == 0, "\n".join(lines)
    assert any(f"{OWN} valid" in x for x in lines), lines


def test_a_vrp_change_revalidates_without_a_session_reset(dev_lab):
    baseline()
    before = since(BORDER, PEER), since(ISP, bird_protocol(CFG.border_routers[0].name))
    start = time.monotonic()
    CACHE.write(VRP_PATH, vrps_with(INVALID, UPSTREAM.asn))
    try:
        eventually(lambda: INVALID in accepted(), wait=DEADLINE, every=0.2, what=f"{INVALID} accepted once its ROA names AS {UPSTREAM.asn}")
        took = time.monotonic() - start
        assert roa_state(BORDER, ROAS, INVALID, UPSTREAM.asn) == "valid"
        assert unchanged(before, (since(BORDER, PEER), since(ISP, bird_protocol(CFG.border_routers[0].name)))), "a BGP session was reset"
        assert protocols(BORDER)[PEER].info == "Established"
        print(f"\nVRP change -> {INVALID} accepted in {took:.1f} s (refresh {CFG.lab.roa_refresh} s)")
    finally:
        CACHE.write(VRP_PATH, plans.vrps(CFG))
    eventually(lambda: INVALID in filtered() and INVALID not in accepted(), wait=DEADLINE, every=0.2, what=f"{INVALID} filtered again")
    assert unchanged(before, (since(BORDER, PEER), since(ISP, bird_protocol(CFG.border_routers[0].name)))), "a BGP session was reset"


def test_without_a_cache_validation_fails_open_and_verify_says_so(dev_lab):
    """The cache stopped: the border keeps its ROAs until they expire (RFC 8210), so the
    invalid route stays filtered; once they are gone (a restart of the rpki protocol is
    what BIRD does at expiry) every route is not found and the invalid one is accepted."""
    baseline()
    before = since(BORDER, PEER)
    docker("stop", CACHE.container)
    try:
        eventually(lambda: protocols(BORDER)[RTR].info not in ("Established", "Sync-Start", "Sync-Running"), wait=30, what=f"{RTR} down")
        said = _cache_check()
        assert said.startswith(f"fail open: no cache ({RTR} ") and said.endswith(f"; {len(CFG.lab.roas)} ROA(s) kept until they expire, then every route is not found"), said
        assert INVALID in filtered()
        BORDER.birdc("restart", RTR)
        eventually(lambda: INVALID in accepted(), wait=SETTLE_MAX + 5, what=f"{INVALID} accepted with no ROAs (fail open)")
        assert _cache_check().endswith("no ROAs: every route is not found")
        assert unchanged((before,), (since(BORDER, PEER),)), "the BGP session was reset"
    finally:
        docker("start", CACHE.container)
    baseline()  # back within the router's retry (rpki.retry) without any command


def _cache_check() -> str:
    """verify's RPKI cache check on the border, run once: its failure text."""
    check = rpki_checks(plans.of(CFG), "dev")[0]
    try:
        return f"passed: {check.run()}"
    except CheckFailed as exc:
        return str(exc)
