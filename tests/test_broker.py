"""The MQTT broker as it runs: the images built from images/ (our broker, and the
simulation's look-alike of eclipse-mosquitto) with the rendered config, ACL and
password file, on an internal Docker network of their own. A small MQTT 3.1.1
client speaks to it from this machine.

Netmaker CE hands its own broker user to every netclient, so the broker tells the
server from a client by listener: the server's (MQ_SERVER_PORT) has every topic,
the clients' (MQ_PORT) only what netclient v1.6.0 uses. Mosquitto 2.0 grants every
SUBSCRIBE (its ACL does not check subscriptions) and checks each delivery instead,
so "refused" below means: never delivered.
"""

from __future__ import annotations

import re
import secrets
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from bgp4mesh import netmaker_env as ne
from bgp4mesh.config import Netmaker, UpstreamImages
from bgp4mesh.docker_cli import docker
from bgp4mesh.stack import load_file, raw_from_file
from components.netmaker_server import MQ_USERNAME
from harness import sim

ROOT = Path(__file__).resolve().parent.parent
SERVER = "nm.lab"
HOST_A, HOST_B = "11111111-aaaa-4aaa-8aaa-111111111111", "22222222-bbbb-4bbb-8bbb-222222222222"
NODE_A, NODE_B, NETWORK = "33333333-aaaa-4aaa-8aaa-333333333333", "44444444-bbbb-4bbb-8bbb-444444444444", "mesh"
LOOKALIKE = next(ref for ref in sim.SIM_IMAGES if "mosquitto" in ref)


# --- a minimal MQTT 3.1.1 client ---------------------------------------------------------------


def _utf8(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _packet(kind: int, body: bytes) -> bytes:
    size, length = len(body), b""
    while True:
        byte, size = size % 128, size // 128
        length += bytes([byte | (0x80 if size else 0)])
        if not size:
            return bytes([kind]) + length + body


class Mqtt:
    """Just enough MQTT for these tests: connect, subscribe (the granted codes), QoS 0
    publish and receive."""

    def __init__(self, host: str, port: int, password: str, client_id: str = ""):
        self.sock = socket.create_connection((host, port), timeout=5)
        client_id = client_id or "t" + secrets.token_hex(8)
        flags = 0x80 | 0x40 | 0x02  # username, password, clean session
        body = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", 60) + _utf8(client_id) + _utf8(MQ_USERNAME) + _utf8(password)
        self.sock.sendall(_packet(0x10, body))
        kind, payload = self._read()
        self.connack = payload[1] if kind == 0x20 else None

    def _read(self) -> tuple[int, bytes]:
        head = self._exact(1)[0]
        size, shift = 0, 0
        while True:
            byte = self._exact(1)[0]
            size += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return head, self._exact(size)

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            data += chunk
        return data

    def subscribe(self, *filters: str) -> list[int]:
        self.sock.sendall(_packet(0x82, struct.pack("!H", 1) + b"".join(_utf8(f) + b"\x00" for f in filters)))
        while True:
            kind, payload = self._read()
            if kind == 0x90:
                return list(payload[2:])

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.sock.sendall(_packet(0x30 | int(retain), _utf8(topic) + payload))

    def message(self, timeout: float = 10) -> tuple[str, bytes]:
        self.sock.settimeout(timeout)
        while True:
            kind, body = self._read()
            if kind & 0xF0 == 0x30:
                n = struct.unpack("!H", body[:2])[0]
                return body[2:2 + n].decode(), body[2 + n + (2 if kind & 0x06 else 0):]

    def messages_until(self, sentinel: str) -> list[tuple[str, bytes]]:
        """Every message up to and including the first on `sentinel`."""
        got = [self.message()]
        while got[-1][0] != sentinel:
            got.append(self.message())
        return got

    def close(self) -> None:
        self.sock.close()


# --- the broker in a container ------------------------------------------------------------------


@dataclass
class Broker:
    name: str
    address: str
    password: str

    def connect(self, port: int, password: str = "", client_id: str = "") -> Mqtt:
        return Mqtt(self.address, port, password or self.password, client_id)


def _build(flavor: str) -> str:
    """The image the program builds (images/mosquitto) or the look-alike staging pulls,
    with the harness's builder."""
    if flavor == "build":
        ref = "bgp4mesh/mosquitto:test"
        sim.build(ref, "images/mosquitto")
        return ref
    return sim.sim_image(LOOKALIKE)


def _netmaker(flavor: str) -> tuple[Netmaker, object]:
    """The dev stack's broker; the pulled flavor's paths and start script with the same
    plain-MQTT client listener (staging's clients come over websockets, which this client
    does not speak)."""
    cfg = load_file("dev")
    if flavor == "build":  # without the lab's plan: its server listener binds the control network's address
        return cfg.netmaker, None
    return Netmaker(domain=SERVER, images="pull"), None


def _files(nm: Netmaker, plan, password: str) -> dict[str, tuple[bytes, int]]:
    fl = ne.flavor(nm)
    files = {
        fl.mosquitto_conf: (ne.mosquitto_conf(nm, plan).encode(), 0o644),
        fl.mosquitto_acl: (ne.mosquitto_acl(nm, MQ_USERNAME).encode(), 0o644),
        ne.MQ_PASSWORD_FILE: (password.encode(), 0o600),
    }
    if fl.images == "pull":
        start = ne.mosquitto_pull_start(nm)
        files["/mosquitto/config/bgp4mesh-start.sh"] = (start.encode(), 0o755)
    return files


def _wait_listening(address: str, ports: tuple[int, ...], name: str) -> None:
    deadline = time.monotonic() + 20
    for port in ports:
        while True:
            try:
                socket.create_connection((address, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"broker not listening on {port}:\n{docker('logs', name, check=False)}")
                time.sleep(0.2)


@pytest.fixture(scope="module", params=["build", "pull"])
def broker(request):
    """A broker container with the program's config, ACL and password file, on an
    internal network of its own; removed at the end."""
    nm, plan = _netmaker(request.param)
    image, name, password = _build(request.param), f"bgp4mesh-test-broker-{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    docker("network", "create", "--internal", name)
    try:
        entry = ["--entrypoint", "/bin/sh"] if request.param == "pull" else []
        cmd = ["/mosquitto/config/bgp4mesh-start.sh"] if request.param == "pull" else []
        docker("create", "--name", name, "--network", name, "-e", f"MQ_USERNAME={MQ_USERNAME}",
                   "-e", f"MQ_PASSWORD_FILE={ne.MQ_PASSWORD_FILE}", *entry, image, *cmd)
        sim.copy_in(name, _files(nm, plan, password))
        docker("start", name)
        address = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name)
        _wait_listening(address, (ne.MQ_SERVER_PORT, ne.MQ_PORT), name)
        yield Broker(name, address, password)
    finally:
        docker("rm", "-f", "-v", name, check=False)  # -v: the look-alike declares volumes
        docker("network", "rm", name, check=False)


# --- the version ------------------------------------------------------------------------------


def _version(image: str) -> tuple[int, ...]:
    out = docker("run", "--rm", "--network", "none", "--entrypoint", "mosquitto", image, "-h", check=False)
    found = re.search(r"mosquitto version (\d+)\.(\d+)\.(\d+)", out)
    assert found, f"{image}: no version in `mosquitto -h`: {out[:200]}"
    return tuple(int(n) for n in found.groups())


@pytest.mark.parametrize("flavor", ["build", "pull"])
def test_broker_images_carry_mosquitto_with_the_cve_2023_0809_fix(flavor):
    assert _version(_build(flavor)) >= ne.MOSQUITTO_MIN_VERSION


def test_lookalike_is_the_version_its_tag_claims_everywhere():
    """Staging proves prod only if the look-alike is what the stacks pull."""
    claimed = {ref for ref, local in sim.UPSTREAM.items() if local == LOOKALIKE}
    stacks = {raw_from_file(s)[0]["netmaker"]["upstream_images"]["mosquitto"].partition("@")[0] for s in ("prod", "staging")}
    assert stacks | {UpstreamImages().mosquitto} == claimed, (stacks, claimed)
    tag = re.search(r":(\d+)\.(\d+)\.(\d+)", claimed.pop())
    assert tuple(int(n) for n in tag.groups()) == _version(LOOKALIKE)


# --- the password -----------------------------------------------------------------------------


def test_password_is_a_root_only_file_not_in_the_environment(broker):
    assert broker.password not in docker("inspect", broker.name)
    assert docker("exec", broker.name, "stat", "-c", "%a %U", ne.MQ_PASSWORD_FILE) == "600 root"
    assert docker("exec", broker.name, "stat", "-c", "%U", "/proc/1") == "mosquitto", "the broker itself cannot read it"
    assert broker.connect(ne.MQ_PORT).connack == 0
    assert broker.connect(ne.MQ_PORT, password="wrong-" + broker.password).connack != 0


# --- the ACL ----------------------------------------------------------------------------------


def test_a_client_cannot_publish_to_the_server_or_other_hosts_topics(broker):
    spy = broker.connect(ne.MQ_SERVER_PORT)
    assert spy.subscribe("#") == [0]
    client = broker.connect(ne.MQ_PORT)
    refused = [f"serversync/{SERVER}", f"peers/host/{HOST_B}/{SERVER}", f"node/update/{NETWORK}/{NODE_B}",
               f"host/dns/sync/{NETWORK}/{SERVER}", f"update/{SERVER}/{NODE_B}", f"integration/{SERVER}/pull"]
    for topic in refused:
        client.publish(topic, b"forged", retain=True)
    client.publish(f"metrics/{SERVER}/{NODE_A}", b"sentinel")  # allowed: delivered after anything before it
    assert [t for t, _ in spy.messages_until(f"metrics/{SERVER}/{NODE_A}")] == [f"metrics/{SERVER}/{NODE_A}"]
    late = broker.connect(ne.MQ_SERVER_PORT)  # nothing was retained either
    late.subscribe("#")
    broker.connect(ne.MQ_SERVER_PORT).publish("bgp4mesh/test/end", b"")
    assert [t for t, _ in late.messages_until("bgp4mesh/test/end")] == ["bgp4mesh/test/end"]


def test_subscribing_to_everything_yields_only_what_a_client_may_read(broker):
    server = broker.connect(ne.MQ_SERVER_PORT)
    snoop = broker.connect(ne.MQ_PORT)
    snoop.subscribe("#", "$SYS/#")  # granted by mosquitto 2.0; each delivery is checked
    other = broker.connect(ne.MQ_PORT)
    for topic in (f"host/serverupdate/{SERVER}/{HOST_B}", f"signal/{SERVER}/{NODE_B}", f"metrics/{SERVER}/{NODE_B}"):
        other.publish(topic, b"another client's message to the server")
    for topic in (f"serversync/{SERVER}", f"feature_flags/{SERVER}", f"integration/{SERVER}/x/upsert"):
        server.publish(topic, b"server-only")
    server.publish(f"peers/host/{HOST_A}/{SERVER}", b"sentinel")
    assert [t for t, _ in snoop.messages_until(f"peers/host/{HOST_A}/{SERVER}")] == [f"peers/host/{HOST_A}/{SERVER}"]


def test_a_netclient_still_gets_and_sends_what_it_needs(broker):
    server = broker.connect(ne.MQ_SERVER_PORT)
    own = [f"peers/host/{HOST_A}/{SERVER}", f"host/update/{HOST_A}/{SERVER}",
           f"node/update/{NETWORK}/{NODE_A}", f"host/dns/sync/{NETWORK}/{SERVER}"]
    for topic in own:  # the server publishes retained, before the client subscribes
        server.publish(topic, b"for A", retain=True)
    client = broker.connect(ne.MQ_PORT)
    assert client.subscribe(*own) == [0, 0, 0, 0]
    assert {client.message()[0] for _ in own} == set(own)
    spy = broker.connect(ne.MQ_SERVER_PORT)
    spy.subscribe(f"host/serverupdate/{SERVER}/#", f"metrics/{SERVER}/#", f"signal/{SERVER}/#", own[1])
    assert spy.message() == (own[1], b"for A")  # still retained
    sent = [f"host/serverupdate/{SERVER}/{HOST_A}", f"metrics/{SERVER}/{NODE_A}", f"signal/{SERVER}/{NODE_A}"]
    for topic in sent:
        client.publish(topic, b"from A")
    client.publish(own[1], b"", retain=True)  # clearRetainedMsg after handling a host update
    assert [t for t, _ in spy.messages_until(own[1])] == [*sent, own[1]]
    fresh = broker.connect(ne.MQ_SERVER_PORT)
    fresh.subscribe(own[1], "bgp4mesh/test/end")
    server.publish("bgp4mesh/test/end", b"")
    assert [t for t, _ in fresh.messages_until("bgp4mesh/test/end")] == ["bgp4mesh/test/end"], "the retained update was cleared"
