"""`verify` cannot lie: a broken deployment fails every check, also under `python -O`
(which strips `assert` statements), and the exit code says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A docker CLI whose `exec` answers like a running but broken lab: BIRD up with every
# session down and a hostile route (inside our own prefix, AS_TRANS in the path), no
# mesh address, no WireGuard peers, pings unanswered.
FAKE_DOCKER = r"""#!/bin/sh
while [ "$1" != exec ] && [ $# -gt 0 ]; do shift; done
shift 2
case "$*" in
  "birdc show protocols") printf 'BIRD 2.0.12 ready.\nName       Proto      Table      State  Since         Info\n' ;
      for p in peer_isp peer_border; do printf '%s BGP --- start 04:00:00.000 Active\n' "$p"; done ;;
  "birdc show route all"*) printf 'BIRD 2.0.12 ready.\nTable master4:\n44.30.127.0/25 unicast [peer_isp 04:00:00.000] * (100) [AS23456i]\n\tvia 172.30.0.1 on eth0\n\tBGP.as_path: 65001 23456\n' ;;
  "ip -4 -o addr show dev netmaker") exit 1 ;;
  "wg show netmaker latest-handshakes") exit 0 ;;
  ping*) exit 1 ;;
  *) exit 0 ;;
esac
"""


@pytest.fixture()
def fake_docker(tmp_path: Path) -> dict[str, str]:
    exe = tmp_path / "docker"
    exe.write_text(FAKE_DOCKER)
    exe.chmod(0o755)
    return {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}


@pytest.mark.parametrize("flags", [[], ["-O"], ["-OO"]], ids=["plain", "-O", "-OO"])
def test_broken_deployment_fails_every_check(fake_docker, flags):
    proc = subprocess.run(
        [sys.executable, *flags, "-m", "bgp4mesh", "verify", "--stack", "dev", "--wait", "0"],
        cwd=ROOT, env=fake_docker, capture_output=True, text=True, timeout=120,
    )
    lines = proc.stdout.splitlines()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert lines and all(line.startswith("FAIL ") for line in lines[:-1]), proc.stdout
    assert not any(line.startswith("PASS") for line in lines), proc.stdout
    assert lines[-1] == f"0 passed, {len(lines) - 1} failed"


def test_optimize_env_var_cannot_make_it_pass(fake_docker):
    env = {**fake_docker, "PYTHONOPTIMIZE": "2"}
    proc = subprocess.run(
        [sys.executable, "-m", "bgp4mesh", "verify", "--stack", "dev", "--wait", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1 and "PASS" not in proc.stdout, proc.stdout


# -- enrollment keys ---------------------------------------------------------------------------
class _Server:
    """The netmaker-server container as `verify` asks it: an HTTP answer to the key list."""

    container = "bgp4mesh-dev-netmaker-server"

    def __init__(self, keys: list[dict], now: float) -> None:
        import json
        from email.utils import formatdate

        self.answer = f"HTTP/1.0 200 OK\r\nDate: {formatdate(now, usegmt=True)}\r\n\r\n{json.dumps(keys)}"
        self.argv: list[tuple] = []

    def run(self, *cmd, timeout=20):
        self.argv.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, self.answer, "")


def _key(tag: str, **kw) -> dict:
    return {"tags": [tag], "networks": ["bgp4mesh"], "uses_remaining": 0, "unlimited": False, "type": 2,
            "expiration": "0001-01-01T00:00:00Z", "value": f"VALUE-{tag}", "token": f"TOKEN-{tag}", **kw}


def test_reusable_keys_fail_by_tag_and_spent_or_dead_ones_pass():
    import time as _time

    from bgp4mesh.netmaker_api import expiry_tag
    from bgp4mesh.verify import CheckFailed, _no_reusable_key

    now = _time.time()
    fine = [
        _key("node1@bgp4mesh"),  # a member's key, spent
        _key("node2@bgp4mesh", uses_remaining=1, tags=["node2@bgp4mesh", expiry_tag("node2@bgp4mesh", int(now) + 300)]),  # not yet due
        _key("bgp4mesh", type=1, expiration="2001-01-01T00:00:00Z"),  # the network's tombstone
        _key("other-net", networks=["other"], unlimited=True, type=3),  # not this network's
    ]
    assert _no_reusable_key(_Server(fine, now), "bgp4mesh")() == "3 key(s), none reusable"
    bad = fine + [
        _key("bgp4mesh-default", unlimited=True, type=3, tags=["bgp4mesh"]),
        _key("stale@bgp4mesh", uses_remaining=1, tags=["stale@bgp4mesh", expiry_tag("stale@bgp4mesh", int(now) - 1)]),
        _key("forever", uses_remaining=5),
        _key("year", type=1, expiration=_time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(now + 86400 * 365))),
    ]
    server = _Server(bad, now)
    with pytest.raises(CheckFailed) as ei:
        _no_reusable_key(server, "bgp4mesh")()
    reason = str(ei.value)
    for tag in ("'bgp4mesh' (unlimited", "'stale@bgp4mesh' (1 use(s) left, unused past", "'forever' (5 use(s) left, no expiry", "'year' (reusable"):
        assert tag in reason, reason
    assert "VALUE-" not in reason and "TOKEN-" not in reason and "node2" not in reason
    from bgp4mesh.netmaker_env import API_PORT, SECRETS_FILE
    from bgp4mesh.verify import LIST_KEYS

    # verify never holds the master key: the script reads it inside the container
    assert server.argv == [("sh", "-c", LIST_KEYS, "list-keys", SECRETS_FILE, str(API_PORT))]


def test_the_key_check_is_part_of_verify():
    from bgp4mesh.stack import load_file
    from bgp4mesh.verify import build_checks
    from tests import plans

    assert any(c.name == "mesh bgp4mesh: no reusable enrollment key" for c in build_checks(plans.of(load_file("dev")), "dev"))


def test_checks_run_at_once_and_each_result_streams_as_it_settles():
    import threading

    from bgp4mesh.verify import Check, run_checks

    started = threading.Barrier(3, timeout=5)  # passes only when all three run at the same time
    passed_line = threading.Event()
    lines: list[str] = []

    def together() -> str:
        started.wait()
        return "ran together"

    def out(line: str) -> None:
        lines.append(line)
        if line.startswith("PASS"):
            passed_line.set()

    def broken() -> str:
        if not passed_line.is_set():
            started.wait()
        # still failing when a passing check has already been printed: results stream
        assert passed_line.wait(5), "no result was printed before the last check settled"
        raise subprocess.CalledProcessError(1, "ping")

    checks = [Check("a", together), Check("b", together), Check("member x", broken)]
    assert run_checks(checks, wait=1, out=out) == 1
    assert sorted(lines[:3]) == ["FAIL member x: Command 'ping' returned non-zero exit status 1.", "PASS a: ran together", "PASS b: ran together"]
    assert lines[-1] == "2 passed, 1 failed"
    assert lines.index("FAIL member x: Command 'ping' returned non-zero exit status 1.") == 2


def test_every_failing_member_is_named_within_one_budget():
    from bgp4mesh.verify import CheckFailed, Check, run_checks

    def down(name: str):
        def run() -> str:
            raise CheckFailed(f"{name} has no handshake")
        return run

    lines: list[str] = []
    checks = [Check(f"mesh node{i}", down(f"node{i}")) for i in range(20)]
    assert run_checks(checks, wait=0.2, out=lines.append, workers=4) == 1
    assert sorted(lines[:-1]) == sorted(f"FAIL mesh node{i}: node{i} has no handshake" for i in range(20))


# -- mesh pings, batched per node ---------------------------------------------------------------
class _Member:
    """A member container as `verify` asks it: its mesh address, and which addresses answer
    its pings (one `sh -c` per round, its argv kept)."""

    def __init__(self, name: str, address: str, answers: set[str] = frozenset(), held: set[str] = frozenset()) -> None:
        self.container, self.address, self.answers = name, address, set(answers)
        self.held = set(held)
        """The addresses its WireGuard peers list as their own (`wg show ... allowed-ips`)."""
        self.pinged: list[list[str]] = []
        self.sources: list[str] = []
        self.address_reads = 0

    def run(self, *cmd, timeout=20):
        if cmd[:2] == ("wg", "show"):
            lines = "".join(f"key{i}=\t{a}/{128 if ':' in a else 32}\n" for i, a in enumerate(sorted(self.held)))
            return subprocess.CompletedProcess(cmd, 0, lines, "")
        if cmd[:2] == ("ip", "-4"):
            self.address_reads += 1
            return subprocess.CompletedProcess(cmd, 0, f"9: netmaker    inet {self.address}/24 scope global netmaker", "")
        assert cmd[:2] == ("sh", "-c") and cmd[3] == "ping-each", cmd
        self.sources.append(cmd[4])
        self.pinged.append(list(cmd[5:]))
        return subprocess.CompletedProcess(cmd, 0, "".join(f"{a}\n" for a in cmd[5:] if a in self.answers), "")


def test_mesh_pings_run_as_one_exec_per_node_and_name_every_peer_that_does_not_answer():
    from functools import cache

    from bgp4mesh.verify import CheckFailed, _pings_from, mesh_ip

    peers = {f"node{i}": _Member(f"c{i}", f"44.30.127.{10 + i}", held={"44.30.127.11"}) for i in (2, 3, 4)}
    src = _Member("c1", "44.30.127.11", answers={"44.30.127.12"}, held={"44.30.127.12", "44.30.127.13", "44.30.127.14"})
    check = _pings_from(src, peers, cache(mesh_ip))
    with pytest.raises(CheckFailed, match=r"cannot reach 2 of 3: node3, node4$"):
        check()
    src.answers.add("44.30.127.14")
    with pytest.raises(CheckFailed, match=r"cannot reach 1 of 3: node3$"):
        check()
    src.answers.add("44.30.127.13")
    assert check() == "all 3 answer"
    # one exec per round, each pinging only those still silent; each address read once
    assert src.pinged == [["44.30.127.12", "44.30.127.13", "44.30.127.14"], ["44.30.127.13", "44.30.127.14"], ["44.30.127.13"]]
    assert [p.address_reads for p in peers.values()] == [1, 1, 1]
    assert src.sources == ["", "", ""]  # the route's source address


def test_inbound_pings_from_an_internet_address_run_as_one_exec_from_that_address():
    from functools import cache

    from bgp4mesh.verify import _pings_from, mesh_ip

    peers = {f"node{i}": _Member(f"c{i}", f"44.30.127.{10 + i}") for i in (1, 2)}
    isp = _Member("isp", "", answers={"44.30.127.11", "44.30.127.12"})
    assert _pings_from(isp, peers, cache(mesh_ip), source="198.51.100.1")() == "all 2 answer"
    assert isp.sources == ["198.51.100.1"] and isp.pinged == [["44.30.127.11", "44.30.127.12"]]


def test_a_node_pings_fixed_internet_addresses_with_its_peers_and_names_the_silent_one():
    from functools import cache

    from bgp4mesh.verify import CheckFailed, _pings_from, mesh_ip

    node2 = _Member("c2", "44.30.127.12")
    src = _Member("c1", "44.30.127.11", answers={"44.30.127.12"})
    check = _pings_from(src, {"node2": node2, "isp 198.51.100.1": "198.51.100.1"}, cache(mesh_ip))
    with pytest.raises(CheckFailed, match=r"cannot reach 1 of 2: isp 198.51.100.1$"):
        check()
    assert src.pinged == [["198.51.100.1", "44.30.127.12"]]  # by name: "isp ..." sorts first


def test_the_ping_script_reports_only_addresses_that_answered_and_pings_from_the_source(tmp_path):
    """PING_EACH itself, with a `ping` that answers one address only and logs its arguments."""
    from bgp4mesh.verify import PING_EACH

    fake, calls = tmp_path / "ping", tmp_path / "calls"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nfor a; do :; done\n[ "$a" = 192.0.2.1 ]\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    for source, option in (("", ""), ("198.51.100.1", "-I 198.51.100.1 ")):
        calls.write_text("")
        proc = subprocess.run(["sh", "-c", PING_EACH, "ping-each", source, "192.0.2.1", "192.0.2.2", "192.0.2.3"], env=env, capture_output=True, text=True, timeout=20)
        assert proc.returncode == 0 and proc.stdout.split() == ["192.0.2.1"], proc
        assert sorted(calls.read_text().splitlines()) == [f"-c 1 -W 1 -q {option}192.0.2.{i}" for i in (1, 2, 3)]


def test_each_internet_address_pings_every_node_in_one_check_and_each_node_pings_them_all_in_one():
    """The HA lab: each mock ISP and the probe, one inbound check each (not one per node);
    each node, one check for the other nodes and the Internet addresses."""
    from bgp4mesh.stack import load_file
    from bgp4mesh.verify import build_checks
    from tests import plans

    plan = plans.of(load_file("lab"))
    names = [c.name for c in build_checks(plan, "lab")]
    sources = [(i.name, i.test_address) for i in plan.isps] + [("probe", plan.probe.test_address)]
    assert len(plan.nodes) > 1 and len(sources) == 3
    assert sorted(n for n in names if n.startswith("ping inbound ")) == sorted(f"ping inbound {who} {at} -> every node" for who, at in sources)
    # each node: one check for every other node and each Internet address
    internet = ", ".join(f"{who} {at}" for who, at in sources)
    assert sorted(n for n in names if n.startswith("ping ") and not n.startswith("ping inbound ")) == sorted(f"ping {n.name} -> every other node, {internet}" for n in plan.nodes)


def test_a_silent_peer_no_wireguard_peer_holds_is_named_so():
    """A peer update that never arrived (the address in no peer's allowed IPs, on either side)
    is told apart from a lost ping; the inbound checks (from an ISP) do not ask."""
    from functools import cache

    from bgp4mesh.verify import CheckFailed, _pings_from, mesh_ip

    node2, node3, node4 = _Member("c2", "44.30.127.12", held={"44.30.127.11"}), _Member("c3", "44.30.127.13"), _Member("c4", "44.30.127.14")
    src = _Member("c1", "44.30.127.11", held={"44.30.127.12", "44.30.127.14"})
    with pytest.raises(CheckFailed, match=r"cannot reach 3 of 3: node2, node3 \(44.30.127.13: no WireGuard peer here holds it\), "
                                          r"node4 \(44.30.127.14: its WireGuard peers do not hold 44.30.127.11\)$"):
        _pings_from(src, {"node2": node2, "node3": node3, "node4": node4}, cache(mesh_ip))()
    isp = _Member("isp", "")
    with pytest.raises(CheckFailed, match=r"cannot reach 2 of 2: node2, node3$"):
        _pings_from(isp, {"node2": node2, "node3": node3}, cache(mesh_ip), source="198.51.100.1")()
