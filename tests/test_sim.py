"""Live tier, the simulated Internet (harness/sim, ./scripts/sim): hosts reached only
over SSH with pinned host keys, the registry as a Docker Hub mirror, pebble by name,
a home host behind NAT, the ISP's BGP port. Prints how long `up` took (first and warm)
and each host's memory at rest."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from bgp4mesh.docker_cli import LOCAL
from harness import sim
from tests.live import eventually

TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def simnet():
    """The sim up for this module; down at the end (and checked to leave nothing) unless
    it was already running before, so a sim someone is using is left alone."""
    was_running = sim.info_path().exists()  # written by a completed up, removed by down
    images_cached = all(sim.image_id(ref) for ref in sim.SIM_IMAGES)
    t = time.monotonic()
    info = sim.up()
    TIMES["cold up" if not images_cached else "first up (images cached)" if not was_running else "up (already running)"] = time.monotonic() - t
    t = time.monotonic()
    info = sim.up()
    TIMES["warm up"] = time.monotonic() - t
    try:
        yield info, sim.material()
    finally:
        if not was_running:
            sim.down()
            assert not sim.leftovers(), f"down left {sim.leftovers()}"


def ssh(simnet, host: str, command: str, input: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    _, m = simnet
    return subprocess.run(sim.ssh_argv(sim.HOSTS[host], m, command), capture_output=True, input=input, timeout=timeout)


def out(simnet, host: str, command: str, **kw) -> str:
    proc = ssh(simnet, host, command, **kw)
    assert proc.returncode == 0, f"{host}: {command}: exit {proc.returncode}: {proc.stderr.decode(errors='replace')[-500:]}"
    return proc.stdout.decode().strip()


def test_ssh_with_pinned_key_only(simnet):
    info, m = simnet
    for name, h in info["hosts"].items():
        assert out(simnet, name, "hostname") == name
        other = next(o for o in info["hosts"].values() if o["host_key"] != h["host_key"])["host_key"]
        proc = subprocess.run(sim.ssh_argv(sim.HOSTS[name], m, "true", host_key=other), capture_output=True, text=True, timeout=30)
        shown = h["ssh_address"] if h["ssh_port"] == 22 else f"[{h['ssh_address']}]:{h['ssh_port']}"
        assert proc.returncode == 255 and "Host key verification failed" in proc.stderr, f"{name}: a wrong host key was accepted"
        assert shown in proc.stderr, f"{name}: ssh's refusal does not name {shown}: {proc.stderr}"


def test_docker_hub_names_come_from_the_mirror(simnet):
    since = str(int(time.time()) - 1)
    pulled = out(simnet, "control", "docker rmi -f caddy:2.8.4 >/dev/null 2>&1; docker pull -q caddy:2.8.4 >/dev/null && docker image inspect -f '{{.Id}}' caddy:2.8.4")
    assert pulled == sim.image_id(sim.UPSTREAM["caddy:2.8.4"])
    logs = LOCAL.run("logs", "--since", since, sim.PREFIX + "registry")
    served = logs.stdout + logs.stderr
    assert "/v2/library/caddy/manifests/2.8.4" in served, "the registry did not serve the pull"
    assert sim.dns_query("registry-1.docker.io")[0] == 3, "Docker Hub must not resolve in the sim (NXDOMAIN)"


def test_pebble_directory_by_name_from_control(simnet):
    info, _ = simnet
    text = out(simnet, "control", f"cat > /tmp/sim-ca.pem && curl -sSf --cacert /tmp/sim-ca.pem {info['acme_directory']}",
               input=info["acme_listener_ca_pem"].encode())
    assert json.loads(text)["newAccount"].startswith("https://acme.staging.test:14000/")
    assert "BEGIN CERTIFICATE" in info["acme_root_pem"]


def test_home_host_leaves_through_the_nat(simnet):
    """STUN from node-b: the mapped address is the router's."""
    dump = out(simnet, "node-b", "exec 3<>/dev/udp/stun.staging.test/3478; printf '\\x00\\x01\\x00\\x00\\x21\\x12\\xa4\\x42bgp4meshsim1' >&3;"
               " timeout 3 dd bs=2048 count=1 status=none <&3 | od -An -tx1 -v")
    addr, _port = sim.stun_mapped(bytes.fromhex("".join(dump.split())))
    assert addr == sim.NAT_WAN


def test_home_lan_is_not_reachable_from_the_internet(simnet):
    # Not even for a neighbour on the router's segment that routes the LAN at it:
    # the router forwards only 2222 -> node-b:22.
    probe = ("ip route add 192.168.77.0/24 via 203.0.113.40 || echo no-route; "
             "{ ping -c1 -W1 192.168.77.10 >/dev/null && echo ping-ok; "
             "timeout 2 bash -c '>/dev/tcp/192.168.77.10/22' 2>/dev/null && echo ssh-ok; "
             "timeout 2 bash -c '>/dev/tcp/203.0.113.40/22' 2>/dev/null && echo router-22-ok; "
             "ip route del 192.168.77.0/24; } ; true")
    assert out(simnet, "control", probe) == ""
    assert out(simnet, "control", "timeout 2 bash -c '>/dev/tcp/203.0.113.40/2222' && echo forward-ok") == "forward-ok"


def test_isp_bgp_port_answers_on_the_uplink(simnet):
    info, _ = simnet
    check = f"timeout 2 bash -c '>/dev/tcp/{info['isp']['address']}/179' 2>/dev/null && echo open || echo closed"
    eventually(lambda: out(simnet, "edge", check) == "open", 30, what="ISP port 179 from edge")
    sim.stop_isp()
    try:
        assert out(simnet, "edge", check) == "closed"
    finally:
        sim.start_isp()
    eventually(lambda: out(simnet, "edge", check) == "open", 30, what="ISP port 179 after start_isp")


def test_report_times_and_memory(simnet, capsys):
    mem = sim.memory()
    with capsys.disabled():
        print()
        for what, seconds in TIMES.items():
            print(f"sim: {what}: {seconds:.1f}s")
        for name, usage in sorted(mem.items()):
            print(f"sim: memory {name.removeprefix(sim.PREFIX)}: {usage}")
    assert TIMES["warm up"] < 30


@pytest.mark.parametrize("status,running,label,want", [
    (None, False, "d", "create"),
    ("running", True, "d", "reuse"),
    ("exited", False, "d", "start"),
    ("running", True, "other", "replace"),
    ("dead", False, "d", "replace"),  # what a dockerd stopped mid-removal leaves; `start` refuses it
    ("removing", False, "d", "replace"),
])
def test_a_dead_or_half_removed_container_is_replaced_not_started(status, running, label, want):
    found = None if status is None else {"State": {"Status": status, "Running": running}, "Config": {"Labels": {sim.SPEC_LABEL: label}}}
    assert sim.container_action(found, "d") == want


def test_an_image_is_rebuilt_when_what_its_build_reads_changes(tmp_path):
    """The one build-context digest (the program's image triggers, the simulation's labels):
    a file's content or mode inside the context, and a Dockerfile kept outside it, count."""
    from components.docker_parts import context_digest

    context, dockerfile = tmp_path / "bin", tmp_path / "Dockerfile"
    context.mkdir()
    (context / "tool").write_bytes(b"v1")
    dockerfile.write_text("FROM scratch\n")
    seen = {context_digest(context, dockerfile)}
    (context / "tool").chmod(0o755)
    seen.add(context_digest(context, dockerfile))
    dockerfile.write_text("FROM scratch\nCOPY tool /\n")
    seen.add(context_digest(context, dockerfile))
    assert len(seen) == 3
    assert context_digest(context) == context_digest(context, context / "Dockerfile"), "a Dockerfile inside is part of the context"


def test_a_changed_base_image_rebuilds_the_images_built_from_it(tmp_path, monkeypatch):
    from harness.sim import images

    for kind in images.OWN_IMAGES:
        (tmp_path / "images" / kind).mkdir(parents=True)
        (tmp_path / "images" / kind / "Dockerfile").write_text(f"FROM scratch # {kind}\n")
    monkeypatch.setattr(images, "ROOT", tmp_path)
    before = images.own_image_labels()
    (tmp_path / "images" / "bird" / "Dockerfile").write_text("FROM scratch # bird 2\n")
    after = images.own_image_labels()
    assert {kind for kind in before if before[kind] != after[kind]} == {"bird", "netclient", "border", "monitoring"}
    assert images._with_bases("border") == ["bird", "netclient", "border"]
    assert images._with_bases("netclient") == ["bird", "netclient"]
