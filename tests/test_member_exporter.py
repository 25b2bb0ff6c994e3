"""The member exporter (images/netclient/exporter): its core turns `wg show all dump` and the
HA agent's state file into Prometheus text that promtool parses and lints clean, with exactly
the names, kinds and labels of bgp4mesh/metrics.py (less `member`, which the scrape target
adds); its server answers each scrape from what it reads then, and fails the scrape (HTTP 500)
when WireGuard cannot be read."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bgp4mesh import metrics

IMAGE = Path(__file__).resolve().parent.parent / "images" / "netclient"
sys.path[:0] = [str(IMAGE / "exporter"), str(IMAGE / "agent")]

from bgp4mesh_agent.schema import NODE_STATE, ROUTER_FIELDS, ROUTER_STATE, encode_state  # noqa: E402
from bgp4mesh_exporter import core, serve  # noqa: E402

PRIVATE = "cGxlYXNlIG5ldmVyIGV4cG9ydCBtZQ=="
GATEWAY, NODE, FRESH_PEER = "R2F0ZXdheUtleUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=", "Tm9kZUtleS8rQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=", "TmV3UGVlcktleUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
DUMP = "\n".join([
    f"netmaker\t{PRIVATE}\tT3duS2V5QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=\t51821\toff",
    f"netmaker\t{GATEWAY}\t(none)\t172.30.0.10:51821\t44.30.127.1/32,0.0.0.0/0\t1700000123\t9876543210\t1234\t20",
    f"netmaker\t{NODE}\t(none)\t172.30.0.21:51821\t44.30.127.21/32\t1700000100\t10\t20\toff",
    f"netmaker\t{FRESH_PEER}\t(none)\t(none)\t44.30.127.22/32\t0\t0\t0\toff",   # never shook hands
    f"wg-other\t{PRIVATE}\tT3RoZXJLZXlBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=\t51822\toff",
    f"wg-other\t{GATEWAY}\t(none)\t172.30.0.10:51822\t10.9.0.1/32\t1700000050\t5\t6\toff",
]) + "\n"
ROUTER = {"maintenance": True, "mesh": True, "upstream": False, "port": True, "available": False,
          "announce": "drained", "active": "44.30.127.2"}
NOW = 1_700_000_200


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    """Sample lines back to (name, labels) -> value, refusing any line that is neither a
    comment nor a well-formed sample."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_]\w*="(?:[^"\\]|\\.)*",?)*)\} (\S+)', line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(re.findall(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"', m.group(2)))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def types(text: str) -> dict[str, str]:
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


def promtool_check(text: str) -> subprocess.CompletedProcess:
    if not shutil.which("promtool"):
        pytest.fail("promtool is needed (Debian's prometheus package, installed by scripts/bootstrap); not skipping")
    return subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)


def full_text(state_path: str = ROUTER_STATE, state: str | None = None, stamp: str | None = f"{NOW - 1}\n") -> str:
    if state is None:
        state = encode_state(ROUTER_FIELDS, ROUTER)
    return core.exposition(core.wireguard(core.parse_dump(DUMP)) + core.agent(state_path, state, stamp, NOW))


# ---- WireGuard -------------------------------------------------------------------------------
def test_every_peer_of_every_interface_is_a_series_by_interface_and_key():
    got = parse(full_text())
    handshake = {dict(k[1])["interface"] + " " + dict(k[1])["peer"]: v for k, v in got.items() if k[0] == core.HANDSHAKE}
    assert handshake == {
        f"netmaker {GATEWAY}": 1700000123, f"netmaker {NODE}": 1700000100, f"netmaker {FRESH_PEER}": 0,
        f"wg-other {GATEWAY}": 1700000050,
    }


def test_a_peer_without_a_handshake_reads_0_not_absent():
    got = parse(full_text())
    fresh = frozenset({("interface", "netmaker"), ("peer", FRESH_PEER)})
    assert got[(core.HANDSHAKE, fresh)] == 0
    assert got[(core.RECEIVED, fresh)] == 0 and got[(core.SENT, fresh)] == 0


def test_bytes_are_exact_even_past_float_digits_of_a_short_format():
    text = full_text()
    assert f'{core.RECEIVED}{{interface="netmaker",peer="{GATEWAY}"}} 9876543210' in text.splitlines()
    assert parse(text)[(core.SENT, frozenset({("interface", "netmaker"), ("peer", GATEWAY)}))] == 1234


def test_the_private_key_never_leaves():
    assert PRIVATE not in full_text()


def test_no_interface_is_no_peer():
    assert core.parse_dump("") == []


def test_a_dump_of_another_shape_is_refused():
    with pytest.raises(ValueError, match="3 fields"):
        core.parse_dump("netmaker\tkey\t0\n")


# ---- the HA agent's state ---------------------------------------------------------------------
def test_a_routers_state_is_its_yes_no_fields_and_its_active_gateway():
    got = {k: v for k, v in parse(full_text()).items() if k[0] in (core.AGENT_STATE, core.ACTIVE_GATEWAY)}
    assert got == {
        (core.AGENT_STATE, frozenset({("field", "maintenance")})): 1,
        (core.AGENT_STATE, frozenset({("field", "mesh")})): 1,
        (core.AGENT_STATE, frozenset({("field", "upstream")})): 0,
        (core.AGENT_STATE, frozenset({("field", "port")})): 1,
        (core.AGENT_STATE, frozenset({("field", "available")})): 0,
        (core.AGENT_STATE, frozenset({("field", "announce")})): 0,   # drained
        (core.ACTIVE_GATEWAY, frozenset({("gateway", "44.30.127.2")})): 1,
    }


def test_announcing_normally_reads_1():
    state = encode_state(ROUTER_FIELDS, {**ROUTER, "announce": "normal"})
    assert parse(full_text(state=state))[(core.AGENT_STATE, frozenset({("field", "announce")}))] == 1


def test_a_nodes_state_is_its_active_gateway_and_none_without_one():
    assert {k for k in parse(full_text(NODE_STATE, "active=44.30.127.1\n")) if k[0] in (core.AGENT_STATE, core.ACTIVE_GATEWAY)} == {
        (core.ACTIVE_GATEWAY, frozenset({("gateway", "44.30.127.1")}))}
    assert not [k for k in parse(full_text(NODE_STATE, "active=\n")) if k[0] == core.ACTIVE_GATEWAY]


@pytest.mark.parametrize("stamp, why", [
    (f"{NOW - core.STALE_AFTER_S - 1}\n", "older than STALE_AFTER_S: the agent died or hangs"),
    (None, "no stamp: never stamped"),
    ("garbage\n", "an unreadable stamp"),
])
def test_a_stale_state_is_not_exported(stamp, why):
    got = parse(full_text(stamp=stamp))
    assert not [k for k in got if k[0] in (core.AGENT_STATE, core.ACTIVE_GATEWAY)], why
    assert [k for k in got if k[0] == core.HANDSHAKE], "WireGuard still is"


def test_a_state_just_within_the_limit_is_exported():
    got = parse(full_text(stamp=f"{NOW - core.STALE_AFTER_S}\n"))
    assert (core.AGENT_STATE, frozenset({("field", "mesh")})) in got


def test_a_state_lacking_a_field_of_its_schema_is_refused():
    with pytest.raises(ValueError, match="announce"):
        full_text(state="maintenance=0\nmesh=1\nupstream=1\nport=1\navailable=1\nactive=\n")


# ---- the text format and the metric contract -------------------------------------------------
def test_promtool_parses_and_lints_the_text_clean():
    proc = promtool_check(full_text())
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_label_values_are_escaped():
    text = core.exposition([core.Family("x_info", "gauge", "escaping", (((("v", 'a"b\\c\nd'),), 1),))])
    assert text.splitlines()[-1] == 'x_info{v="a\\"b\\\\c\\nd"} 1'
    assert promtool_check(text).returncode == 0


def test_promtool_is_not_vacuous():
    assert promtool_check('bgp4mesh_x{a="b} 1\n').returncode != 0


def test_names_kinds_and_labels_are_metrics_py_less_member():
    """Every series the exporter writes is one bgp4mesh/metrics.py names, of its kind, with
    its labels less `member`; and every WG_* and AGENT_* metric there is written."""
    text = full_text()
    contract = {m.name: m for m in metrics.BGP4MESH_EXPORTER if m.name.startswith(("bgp4mesh_wireguard_", "bgp4mesh_agent_"))}
    assert set(types(text)) == set(contract)
    for name, kind in types(text).items():
        assert kind == contract[name].kind, name
    for name, labels in parse(text):
        assert {k for k, _ in labels} == set(contract[name].labels) - {"member"}, name


# ---- the server --------------------------------------------------------------------------------
@pytest.fixture
def server(tmp_path, monkeypatch):
    """serve.Handler on a free loopback port, reading the agent's state files under tmp_path."""
    monkeypatch.setattr(serve, "STATE_ROOT", str(tmp_path))
    httpd = serve.ThreadingHTTPServer(("127.0.0.1", 0), serve.Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", tmp_path
    httpd.shutdown()
    httpd.server_close()


def fake_wg(tmp_path: Path, monkeypatch, script: str) -> None:
    """A `wg` first on PATH that checks its arguments and prints `script`'s output."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "wg").write_text(f'#!/bin/sh\n[ "$*" = "show all dump" ] || {{ echo "unexpected: $*" >&2; exit 64; }}\n{script}\n')
    (bin_dir / "wg").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_a_scrape_reads_wireguard_and_the_state_as_they_are_then(server, monkeypatch):
    url, tmp = server
    (tmp / "dump").write_text(DUMP)
    fake_wg(tmp, monkeypatch, f"cat {tmp / 'dump'}")
    state = tmp / NODE_STATE.lstrip("/")
    state.parent.mkdir(parents=True)
    state.write_text("active=44.30.127.1\n")
    Path(f"{state}.at").write_text(f"{int(time.time())}\n")
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        got = parse(r.read().decode())
    assert got[(core.HANDSHAKE, frozenset({("interface", "netmaker"), ("peer", GATEWAY)}))] == 1700000123
    assert got[(core.ACTIVE_GATEWAY, frozenset({("gateway", "44.30.127.1")}))] == 1
    (tmp / "dump").write_text(DUMP.replace("1700000123", "1700000199"))
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        assert parse(r.read().decode())[(core.HANDSHAKE, frozenset({("interface", "netmaker"), ("peer", GATEWAY)}))] == 1700000199


def test_a_member_without_an_agent_has_wireguard_only(server, monkeypatch):
    url, tmp = server
    fake_wg(tmp, monkeypatch, f"printf '%s' '{DUMP}'")
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        got = parse(r.read().decode())
    assert {k[0] for k in got} == {core.HANDSHAKE, core.RECEIVED, core.SENT}


def test_wireguard_unreadable_fails_the_scrape(server, monkeypatch):
    url, tmp = server
    fake_wg(tmp, monkeypatch, "echo 'Unable to access interface: Operation not permitted' >&2; exit 1")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{url}/metrics", timeout=10)
    assert e.value.code == 500 and "Operation not permitted" in e.value.read().decode()


def test_the_program_serves_on_its_listen_address(tmp_path, monkeypatch):
    """The launcher as the image runs it: `bgp4mesh-exporter IP:PORT`, `wg` from PATH."""
    fake_wg(tmp_path, monkeypatch, f"printf '%s' '{DUMP}'")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": f"{IMAGE / 'exporter'}{os.pathsep}{IMAGE / 'agent'}"}
    proc = subprocess.Popen([sys.executable, str(IMAGE / "exporter" / "bgp4mesh-exporter"), f"127.0.0.1:{port}"], env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    assert (core.HANDSHAKE, frozenset({("interface", "netmaker"), ("peer", FRESH_PEER)})) in parse(r.read().decode())
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline and proc.poll() is None, "the exporter did not answer"
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("text, want", [("172.30.0.21:9586", ("172.30.0.21", 9586)), ("[::1]:9586", ("::1", 9586))])
def test_listen_address(text, want):
    assert serve.listen_address(text) == want


@pytest.mark.parametrize("text", ["9586", "172.30.0.21:", "172.30.0.21:http"])
def test_a_bad_listen_address_is_refused(text):
    with pytest.raises(ValueError):
        serve.listen_address(text)
