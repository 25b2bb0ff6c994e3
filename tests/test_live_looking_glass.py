"""Live tier, the looking glass (issue 20) on the dev stack, seen from the mock ISP's network
namespace as a user on the Internet would see it. From 198.51.100.1 (inside
`looking_glass.allow` in Pulumi.dev.yaml) the border's looking glass answers
`show route for 44.30.127.10` with BIRD's route and refuses `configure`, `down` and
`show route` without a filter, which BIRD never sees; from 203.0.113.1 (the ISP's too, outside
the allow list) nothing answers: the border's edge firewall drops it and counts it, and
the service itself refuses it when the firewall lets it through.

curl runs in the mock ISP's container (the bird image has it), bound to the source address."""

from __future__ import annotations

import re
import time

import pytest

from bgp4mesh.docker_cli import docker
from bgp4mesh.naming import docker_name
from bgp4mesh.plan import build_plan
from bgp4mesh.stack import load_file

CFG = load_file("dev")
PLAN = build_plan(CFG)
PORT = CFG.looking_glass.port
ALLOWED_SOURCE = "198.51.100.1"  # the ISP's Internet test address, inside looking_glass.allow
OTHER_SOURCE = "203.0.113.1"     # the ISP's too, outside it
ISP, BORDER = docker_name("dev", "isp"), docker_name("dev", "border")
SESSION = PLAN.routers[0].sessions[0].protocol
NODE1 = "44.30.127.10"


def get(source: str, path: str, address: str) -> tuple[str, str]:
    """HTTP status ("000": no answer within 5 s) and body of a GET from `source`."""
    out = docker("exec", ISP, "curl", "-sS", "-m", "5", "--interface", source, "-w", "\n%{http_code}",
                 f"http://{address}:{PORT}{path}", check=False)
    body, _, status = out.rpartition("\n")
    return status, body


def dropped(chain: str = "BGP4MESH-INPUT") -> int:
    """Packets the border's edge firewall dropped as `looking glass closed`."""
    out = docker("exec", BORDER, "iptables", "-w", "-nvxL", chain)
    return sum(int(m.group(1)) for m in re.finditer(r"^\s*(\d+)\s+\d+\s+DROP\b.*bgp4mesh: looking glass closed", out, re.M))


def bird(*command: str) -> str:
    return docker("exec", BORDER, "birdc", *command)


TIME = re.compile(r"(\d\d:\d\d:\d\d\.\d+)")


def same_lines(left: list[str], right: list[str]) -> bool:
    """Equal lines, but for BIRD's `iso long` times, which may differ by a few milliseconds:
    BIRD prints a past instant as now minus its age, each read from a different clock, so
    the same instant comes out 1 ms apart from one command to the next."""
    if len(left) != len(right):
        return False
    for a, b in zip(left, right):
        pa, pb = TIME.split(a), TIME.split(b)  # text, time, text, ..., text
        if len(pa) != len(pb) or pa[::2] != pb[::2]:
            return False
        if any(_apart(x, y) > 0.01 for x, y in zip(pa[1::2], pb[1::2])):
            return False
    return True


def _apart(x: str, y: str) -> float:
    """Seconds between two clock times, the short way round midnight."""
    d = abs(_seconds(x) - _seconds(y))
    return min(d, 86400 - d)


def _seconds(clock: str) -> float:
    h, m, s = clock.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def bird_started() -> list[str]:
    """When BIRD last started and was last reconfigured (`show status`)."""
    return [line for line in bird("show", "status").splitlines() if line.startswith(("Last reboot on", "Last reconfiguration on"))]


@pytest.fixture(scope="module")
def glass(dev_lab) -> str:
    """The border's public address, once its looking glass answers (it starts with the
    container: bgp4mesh uploaded its config)."""
    address = dev_lab.outputs["border_routers"]["border"]["mesh_ip"]
    deadline = time.monotonic() + 120
    while (answer := get(ALLOWED_SOURCE, "/protocols", address))[0] != "200":
        assert time.monotonic() < deadline, f"the looking glass at {address}:{PORT} never answered: {answer}"
        time.sleep(2)
    return address


def test_it_answers_show_route_for_a_mesh_address_with_birds_route(glass):
    status, body = get(ALLOWED_SOURCE, "/route?for=" + NODE1, glass)
    assert status == "200", body
    assert re.search(r"^44\.30\.127\.0/24\s", body, re.M), body  # the own prefix: the route for a member
    glass_says = [line for line in body.splitlines() if line.startswith("44.30.127.0/24")]
    birdc_says = [line for line in bird("show", "route", "for", NODE1).splitlines() if line.startswith("44.30.127.0/24")]
    assert same_lines(glass_says, birdc_says), (glass_says, birdc_says)
    assert get(ALLOWED_SOURCE, "/?q=show+route+for+" + NODE1, glass) == (status, body)


def test_it_answers_the_other_allowed_queries(glass):
    status, body = get(ALLOWED_SOURCE, "/protocols", glass)
    assert status == "200" and re.search(rf"^{SESSION}\s+BGP\s.*\sup\s.*Established", body, re.M), body
    status, body = get(ALLOWED_SOURCE, f"/protocols/{SESSION}", glass)
    assert status == "200" and "BGP state:          Established" in body, body
    status, body = get(ALLOWED_SOURCE, "/route?where=198.51.100.0/24", glass)
    assert status == "200" and re.search(r"^198\.51\.100\.0/24\s", body, re.M), body
    status, body = get(ALLOWED_SOURCE, f"/route?export={SESSION}", glass)
    assert status == "200" and re.search(r"^44\.30\.127\.0/24\s", body, re.M), body
    assert "198.51.100.0/24" not in body  # the upstream's routes are not sent back to it


REFUSED = [
    ("/?q=configure", "403", "'configure' is not allowed"),
    ("/?q=down", "403", "'down' is not allowed"),
    ("/?q=show+route", "403", "show route needs one filter"),
    ("/route", "403", "show route needs one filter"),
    ("/?q=show+route+where+net+~+0.0.0.0/0", "403", "nearly the whole table"),
    ("/?q=show+protocols%3B+down", "400", "character ';'"),
    ("/route?for=44.30.127.10+all", "400", "with nothing more"),
]


def test_it_refuses_configure_down_and_show_route_without_a_filter_and_bird_never_sees_them(glass):
    started = bird_started()
    assert len(started) == 2, started
    for path, status, why in REFUSED:
        answer = get(ALLOWED_SOURCE, path, glass)
        assert answer[0] == status and why in answer[1], (path, answer)
    after = bird_started()
    assert same_lines(after, started), (after, started)  # BIRD was neither reconfigured nor restarted


def test_a_source_outside_the_allow_list_gets_no_answer(glass):
    before = dropped()
    assert get(OTHER_SOURCE, "/route?for=" + NODE1, glass)[0] == "000"  # no answer, not even a reset
    assert dropped() > before
    assert get(ALLOWED_SOURCE, "/route?for=" + NODE1, glass)[0] == "200"  # the same path from an allowed source


def test_the_service_itself_refuses_a_source_the_firewall_lets_through(glass):
    """Defense in depth: with the border's firewall opened to 203.0.113.1 by hand for a
    moment, the looking glass still refuses it."""
    rule = ["-s", f"{OTHER_SOURCE}/32", "-p", "tcp", "--dport", str(PORT), "-j", "RETURN"]
    docker("exec", BORDER, "iptables", "-w", "-I", "BGP4MESH-INPUT", "1", *rule)
    try:
        status, body = get(OTHER_SOURCE, "/route?for=" + NODE1, glass)
    finally:
        docker("exec", BORDER, "iptables", "-w", "-D", "BGP4MESH-INPUT", *rule)
    assert (status, body) == ("403", f"{OTHER_SOURCE} may not query this looking glass\n")
    assert get(OTHER_SOURCE, "/route?for=" + NODE1, glass)[0] == "000"  # closed again
