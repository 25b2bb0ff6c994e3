"""Live tier, BGP: the dev stack on the real Docker engine, checked from the peer's
side (the mock ISP) as netlab validates a DUT from its probes, with retries,
including what must be absent."""

from __future__ import annotations

import time
from ipaddress import ip_network

from bgp4mesh.birdc import Target, import_limit, protocols, routes
from bgp4mesh.naming import docker_name

from bgp4mesh.naming import bird_protocol
from bgp4mesh.stack import load_file
from tests.hostile_routes import MockRoute, with_routes
from tests.live import bird_time, container_started_at, eventually
from tests import plans

CFG = load_file("dev")
UPSTREAM = CFG.upstreams[0]
ISP = Target(docker_name("dev", "isp"))
BORDER = Target(docker_name("dev", "border"))
ISP_CONF = "/etc/bird/bird.conf"

HOSTILE = [
    MockRoute(ip_network("44.30.127.0/24")),  # our own block, announced back to us
    MockRoute(ip_network("44.30.127.128/25")),  # a more-specific of it (hijack shape)
    MockRoute(ip_network("45.67.89.16/28")),  # longer than /24
    MockRoute(ip_network("45.67.90.0/24"), (23456,)),  # AS_TRANS in the path
    MockRoute(ip_network("45.67.91.0/24"), (65001,) * 100),  # 101 ASNs in the path
    MockRoute(ip_network("45.67.92.0/24"), (64496,)),  # documentation (bogon) ASN, not exempt
    MockRoute(ip_network("10.0.0.0/8")),  # RFC 1918 bogon, not exempt
]


def load_isp(extra: list[MockRoute]) -> None:
    """Give the ISP a config with extra announcements and reload it in place."""
    text = with_routes(plans.isp(CFG, UPSTREAM)["bird.conf"], extra)
    ISP.write(ISP_CONF, text)
    reply = ISP.birdc("configure")
    assert "Reconfigured" in reply or "Reconfiguration in progress" in reply, reply


def border_learned() -> set[str]:
    return {r.prefix for r in routes(BORDER, "protocol", bird_protocol(UPSTREAM.name))}


def test_session_established_within_15s_of_containers_running(dev_lab):
    """Measured by BIRD's own clock: when the session last became Established (the ISP's
    `show protocols` Since column), against when both containers started."""
    both_running = max(container_started_at(ISP.container), container_started_at(BORDER.container))
    eventually(lambda: protocols(ISP)[bird_protocol("border")].info == "Established", wait=15, what="ISP session to border Established")
    since = protocols(ISP, bird_protocol("border"))[bird_protocol("border")].since
    established_after = bird_time(since, both_running) - both_running
    # BIRD prints whole seconds (iso long): down to a second before the start's fraction
    assert -1 < established_after <= 15, f"Established {established_after:.1f}s after both containers started"
    assert protocols(BORDER)[bird_protocol(UPSTREAM.name)].info == "Established"


def test_isp_holds_exactly_our_prefix_from_our_as(dev_lab):
    def exactly_ours():
        got = routes(ISP, "protocol", bird_protocol("border"))
        assert [(r.prefix, r.as_path) for r in got] == [("44.30.127.0/24", [65000])], got
        return True

    eventually(exactly_ours, wait=15, what="ISP table holds exactly 44.30.127.0/24 via AS 65000")


def test_border_holds_the_isps_prefixes(dev_lab):
    want = {"198.51.100.0/24", "203.0.113.0/24", "0.0.0.0/0"}
    eventually(lambda: border_learned() == want, wait=15, what=f"border learned {want}")
    # Learned routes reach the kernel, so the border forwards by them.
    kernel = BORDER.run("ip", "route", "show", "proto", "bird").stdout
    assert "198.51.100.0/24 via 172.30.0.1" in kernel and "default via 172.30.0.1" in kernel


def test_hostile_routes_are_never_accepted(dev_lab):
    load_isp(HOSTILE)
    try:
        hostile = {str(r.prefix) for r in HOSTILE}
        # They did arrive (kept as filtered), so absence below is not vacuous.
        eventually(
            lambda: hostile <= {r.prefix for r in routes(BORDER, "filtered", "protocol", bird_protocol(UPSTREAM.name))},
            wait=15,
            what="all hostile routes received and filtered",
        )
        assert not hostile & border_learned()
        own = routes(BORDER, "44.30.127.0/24")
        assert [r.protocol for r in own] == ["own_v4"], own
        assert routes(BORDER, "45.67.91.0/24") == []
        # From the ISP's side we still see only our own prefix: nothing re-announced.
        assert [r.prefix for r in routes(ISP, "protocol", bird_protocol("border"))] == ["44.30.127.0/24"]
    finally:
        load_isp([])


def test_more_prefixes_than_the_limit_trigger_the_limit_action(dev_lab):
    flood = [MockRoute(ip_network(f"45.68.{i}.0/24")) for i in range(UPSTREAM.max_prefixes + 5)]
    load_isp(flood)
    try:
        eventually(lambda: _export_count(ISP, bird_protocol("border")) >= len(flood), wait=15, what="ISP exports the flood")
        limit, action, _ = import_limit(BORDER, bird_protocol(UPSTREAM.name))
        assert (limit, action) == (UPSTREAM.max_prefixes, UPSTREAM.limit_action)

        def capped():
            held = len(border_learned())
            assert 0 < held <= UPSTREAM.max_prefixes, held
            return held

        time.sleep(2)  # let the whole flood be processed before reading the cap
        assert capped() == UPSTREAM.max_prefixes  # block: keeps the first `limit`, drops the rest
        assert protocols(BORDER)[bird_protocol(UPSTREAM.name)].info == "Established"  # block keeps the session up
    finally:
        load_isp([])
    eventually(lambda: border_learned() == {"198.51.100.0/24", "203.0.113.0/24", "0.0.0.0/0"}, wait=20, what="recovery after flood")


def _export_count(target: Target, protocol: str) -> int:
    text = target.birdc("show", "route", "export", protocol, "count")
    for line in text.splitlines():
        if "of" in line and "routes" in line:
            return int(line.split()[0])
    return 0


# ---- the hardened edge: GTSM and the receive limit ----------------------------------------


def test_gtsm_session_is_established_and_a_peer_without_it_is_refused(dev_lab):
    """The dev upstream runs GTSM (`ttl security on` on both sides). A mock ISP that stops
    sending TTL 255 (direct eBGP without GTSM sends TTL 1) never gets the session up: the
    border's kernel drops its packets (IP_MINTTL 255). Restored, it comes back.

    The ISP's own view is not asserted: BIRD sets IP_MINTTL on an accepted socket only after
    accept(), so the ISP's OPEN that arrives with the handshake is read, the border answers
    with a KEEPALIVE and the ISP may report Established while the border drops everything
    after (seen here; on a real host the firewall's TTL-255 rule closes that gap too)."""
    assert UPSTREAM.ttl_security
    session = bird_protocol(UPSTREAM.name)
    eventually(lambda: protocols(BORDER)[session].info == "Established", wait=30, what="GTSM session Established")
    text = plans.isp(CFG, UPSTREAM)["bird.conf"]
    assert "ttl security on;" in text
    plain = text.replace("  ttl security on;", "  ttl security off;")
    try:
        ISP.write(ISP_CONF, plain)
        ISP.birdc("configure")  # a changed session restarts
        eventually(lambda: protocols(BORDER)[session].info != "Established", wait=30, what="session down without GTSM")
        for _ in range(6):  # three hold times (9 s): the border never takes the session up
            assert protocols(BORDER)[session].info != "Established"
            time.sleep(4.5)
    finally:
        load_isp([])
    try:
        eventually(lambda: protocols(BORDER)[session].info == "Established", wait=60, what="GTSM session back")
    except AssertionError as exc:
        both = BORDER.birdc("show", "protocols", "all", session) + ISP.birdc("show", "protocols", "all", bird_protocol("border"))
        BORDER.birdc("restart", session)  # leave the lab usable for the tiers after this one
        ISP.birdc("restart", bird_protocol("border"))
        raise AssertionError(f"{exc}\n{both}") from None


def test_receive_and_import_limits_are_in_force(dev_lab):
    """Both limits on the session, as BIRD reports them; filtered routes (the RPKI invalid)
    count toward the receive limit, not the import limit (the limit test above is what hits
    the import limit)."""
    out = BORDER.birdc("show", "protocols", "all", bird_protocol(UPSTREAM.name))
    assert f"Receive limit:  {UPSTREAM.receive_limit}" in out and f"Import limit:   {UPSTREAM.max_prefixes}" in out, out
    assert f"Receive limit:  {UPSTREAM.receive_limit} [HIT]" not in out, out
