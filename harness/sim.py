"""A simulated Internet on this machine's Docker engine, for the prod code path (issue #9):
remote hosts reached only over SSH, a home host behind NAT, DNS, an image registry
serving Docker Hub names as a mirror, an ACME CA (pebble), STUN (coturn) and an ISP
speaking BGP (BIRD) on the edge host's uplink.

    .venv/bin/python -m harness.sim up|down|status      (./scripts/sim wraps it)

`up` is idempotent (running pieces whose spec did not change are reused; images are
rebuilt only when their build context changed and pushed only when the registry holds
another digest) and writes $BGP4MESH_CACHE/sim/staging.json (0600; see `SimInfo`), from
which the staging stack's per-machine values are filled in. `down` removes every
container, network and volume named bgp4mesh-sim-* or labelled bgp4mesh.sim=1, also
after a failed `up`; the keys and the CA in the cache stay, so host keys are the same
on the next `up`.

Every network is `internal`: nothing leaves this machine. The operator's machine
reaches every public address through the internet bridge's address 203.0.113.1 (and,
as a Docker bridge always has an address, the home LAN through 192.168.77.254: the
operator's route to node-b is the router's port-forward, 203.0.113.40:2222).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import ipaddress
import json
import os
import secrets
import shlex
import socket
import ssl
import struct
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from bgp4mesh.waiting import WaitTimeout, until

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "bgp4mesh-sim-"
LABEL_KEY = "bgp4mesh.sim"
LABEL = f"{LABEL_KEY}=1"
SPEC_LABEL = "bgp4mesh.sim.spec"
CONTEXT_LABEL = "bgp4mesh.sim.context"

ZONE = "staging.test"
RESOLVER = "203.0.113.53"
REGISTRY_IP, ACME_IP, STUN_IP, WHOAMI_IP = "203.0.113.5", "203.0.113.6", "203.0.113.7", "203.0.113.8"
WHOAMI_NAMES = ("icanhazip.com", "ifconfig.me", "myexternalip.com")
"""The public-IP services netclient asks (functions.GetPublicIP) before it uses STUN at all:
without an answer a host behind NAT never learns its endpoint."""
REGISTRY = f"registry.{ZONE}:5000"
ACME_NAME = f"acme.{ZONE}"
ACME_DIRECTORY = f"https://{ACME_NAME}:14000/dir"
ACME_ROOT_URL = f"https://{ACME_NAME}:15000/roots/0"
STUN = f"stun.{ZONE}:3478"
NAT_WAN, NAT_LAN = "203.0.113.40", "192.168.77.1"
NAT_SSH_PORT = 2222

ISP_IP, ISP_ASN, ISP_TEST_ADDRESS, ISP_ANNOUNCES = "192.0.2.9", 65001, "198.51.100.1", "198.51.100.0/24"
EDGE_UPLINK_ADDRESS, EDGE_ASN, EDGE_PREFIX = "192.0.2.10", 64500, "44.30.127.0/24"
EDGE_B_UPLINK_ADDRESS = "192.0.2.11"  # the second border router's (staging-ha)
CUSTOMERS = {"peer_edge": EDGE_UPLINK_ADDRESS, "peer_edge_b": EDGE_B_UPLINK_ADDRESS}
"""The ISP's sessions: BIRD protocol -> the customer router's uplink address."""


@dataclass(frozen=True)
class Net:
    key: str
    subnet: str
    gateway: str
    ip_range: str  # where Docker may pick addresses, away from the fixed ones

    @property
    def name(self) -> str:
        return PREFIX + self.key


NETS = {
    n.key: n
    for n in (
        # /26, not /24: this workplace reaches its package registries at 203.0.113.80, and a
        # connected /24 on the operator's machine would capture that (apt, pip, go break).
        Net("internet", "203.0.113.0/26", "203.0.113.1", "203.0.113.56/29"),
        Net("uplink", "192.0.2.8/29", "192.0.2.14", "192.0.2.12/30"),
        Net("home", "192.168.77.0/24", "192.168.77.254", "192.168.77.128/25"),
    )
}


@dataclass(frozen=True)
class Host:
    name: str
    addresses: tuple[tuple[str, str], ...]  # (network key, address), first one is created with
    ifnames: str  # IFNAMES for sim-init: interface name=address
    default_via: str
    ssh_address: str
    ssh_port: int = 22

    @property
    def container(self) -> str:
        return PREFIX + self.name

    @property
    def public_address(self) -> str:
        return self.ssh_address


HOSTS = {
    h.name: h
    for h in (
        Host("edge", (("internet", "203.0.113.10"), ("uplink", "192.0.2.13")), "wan=203.0.113.10 uplink=192.0.2.13", "203.0.113.1", "203.0.113.10"),
        # The second edge of the two-router variant (Pulumi.staging-ha.yaml); staging leaves it idle.
        Host("edge-b", (("internet", "203.0.113.11"), ("uplink", "192.0.2.12")), "wan=203.0.113.11 uplink=192.0.2.12", "203.0.113.1", "203.0.113.11"),
        Host("control", (("internet", "203.0.113.20"),), "wan=203.0.113.20", "203.0.113.1", "203.0.113.20"),
        Host("node-a", (("internet", "203.0.113.30"),), "wan=203.0.113.30", "203.0.113.1", "203.0.113.30"),
        Host("node-b", (("home", "192.168.77.10"),), "wan=192.168.77.10", NAT_LAN, NAT_WAN, NAT_SSH_PORT),
    )
}

# Images: local name -> (build context, Dockerfile relative to ROOT or None = context/Dockerfile)
SIM_IMAGES = {
    "bgp4mesh/simhost:local": ("images/sim/host", None),
    "bgp4mesh/sim-dns:local": ("images/sim/dns", None),
    "bgp4mesh/sim-registry:local": ("images/sim/registry", None),
    "bgp4mesh/sim-acme:local": ("images/sim/acme", None),
    "bgp4mesh/sim-stun:local": ("images/sim/stun", None),
    "bgp4mesh/sim-nat:local": ("images/sim/nat", None),
    "bgp4mesh/sim-skopeo:local": ("images/sim/skopeo", None),
    "bgp4mesh/sim-scan:local": ("images/sim/scan", None),  # SCAN_IMAGE
    "bgp4mesh/sim-upstream-netmaker:v1.6.0": ("images/netmaker/bin", "images/sim/upstream/netmaker/Dockerfile"),
    "bgp4mesh/sim-upstream-mosquitto:2.0.21-openssl": ("images/sim/upstream/mosquitto", None),
    "bgp4mesh/sim-upstream-caddy:2.8.4": ("images/sim/upstream/caddy", None),
}
ON_DEMAND_IMAGES = {
    "bgp4mesh/sim-boot:local": ("images/sim/boot", None),  # BOOT_IMAGE: a host that boots with systemd
}
"""Images only a test needs (`sim_image`), not built by `up`."""
# Docker Hub name (as the product pulls it through the mirror) -> local look-alike
UPSTREAM = {
    "gravitl/netmaker:v1.6.0": "bgp4mesh/sim-upstream-netmaker:v1.6.0",
    "eclipse-mosquitto:2.0.21-openssl": "bgp4mesh/sim-upstream-mosquitto:2.0.21-openssl",
    "caddy:2.8.4": "bgp4mesh/sim-upstream-caddy:2.8.4",
}
# Our images as a release pipeline makes them: built from this checkout (again whenever
# a context, or an image it builds FROM, changed), tagged :release, then published.
# kind -> (context, build arg -> base kind); bases come first.
OWN_IMAGES = {
    "bird": ("images/bird", {}),
    "netclient": ("images/netclient", {}),
    "border": ("images/border", {"NETCLIENT_IMAGE": "netclient", "BIRD_IMAGE": "bird"}),
}


def own_ref(kind: str) -> str:
    return f"bgp4mesh/{kind}:release"


PUBLISHED = {"border": own_ref("border"), "netclient": own_ref("netclient")}


# Almost --privileged: every capability but CAP_SYS_RESOURCE (this machine's engine does
# not hold it, and runc then refuses --privileged), no seccomp/AppArmor profile, /proc
# unmasked, every device allowed, /dev/net/tun for netclient's userspace WireGuard.
# sim-init remounts /sys and the cgroup hierarchies read-write.
HOST_PRIVILEGES = ["--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
                   "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
                   "--device", "/dev/net/tun", "--device-cgroup-rule", "a *:* rwm"]


class SimError(RuntimeError):
    """A step of the simulation failed; the message says which and why."""


def log(msg: str) -> None:
    print(f"sim: {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    root = Path(os.environ.get("BGP4MESH_CACHE") or Path.home() / ".cache" / "bgp4mesh")
    return root / "sim"


def info_path() -> Path:
    return cache_dir() / "staging.json"


# --- docker ------------------------------------------------------------------------


def docker(*args: str, check: bool = True, input: Optional[bytes] = None, timeout: float = 900) -> str:
    proc = subprocess.run(["docker", *args], input=input, capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise SimError(f"docker {' '.join(args[:4])}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout.decode(errors="replace").strip()


def _inspect(kind: str, name: str) -> Optional[dict]:
    out = docker(kind, "inspect", name, check=False)
    try:
        return json.loads(out)[0] if out else None
    except (ValueError, IndexError):
        return None


def image_id(ref: str) -> Optional[str]:
    return docker("image", "inspect", "-f", "{{.Id}}", ref, check=False) or None


# --- secrets and keys in the cache --------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


@dataclass
class Material:
    """Everything generated once and kept in the cache (0700 dir, 0600 files)."""

    dir: Path
    operator_key: Path
    operator_pub: str
    host_keys: dict[str, tuple[bytes, str]]  # host -> (private OpenSSH PEM, "ssh-ed25519 AAAA...")
    ca_pem_path: Path
    ca_pem: str
    pebble_cert: bytes
    pebble_key: bytes
    md5_path: Path
    md5: str
    known_hosts: Path


def _ed25519(path: Path) -> tuple[bytes, str]:
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ed25519

    if path.exists():
        pem = path.read_bytes()
        key = ser.load_ssh_private_key(pem, None)
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption())
        _write_private(path, pem)
    pub = key.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH).decode()
    return pem, pub


def _ca_and_listener(d: Path) -> tuple[Path, bytes, bytes]:
    """The sim CA (signs pebble's HTTPS listener: acme.staging.test and its address)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_path, ca_key_path = d / "ca.pem", d / "ca-key.pem"
    cert_path, key_path = d / "pebble-listener.pem", d / "pebble-listener-key.pem"
    now = datetime.datetime.now(datetime.timezone.utc)
    if not (ca_path.exists() and ca_key_path.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bgp4mesh sim CA"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bgp4mesh")])
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(ca_key_path, key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()))
        _write_private(ca_path, cert.public_bytes(ser.Encoding.PEM))
        cert_path.unlink(missing_ok=True)
    if not (cert_path.exists() and key_path.exists()):
        ca_key = ser.load_pem_private_key(ca_key_path.read_bytes(), None)
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ACME_NAME)])).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=820))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(ACME_NAME), x509.IPAddress(ipaddress.ip_address(ACME_IP))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(key_path, key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()))
        _write_private(cert_path, cert.public_bytes(ser.Encoding.PEM))
    return ca_path, cert_path.read_bytes(), key_path.read_bytes()


def material() -> Material:
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    _, operator_pub = _ed25519(d / "id_ed25519")
    _write_private(d / "id_ed25519.pub", (operator_pub + " bgp4mesh-sim-operator\n").encode())
    host_keys = {name: _ed25519(d / "hostkeys" / f"{name}_ed25519") for name in HOSTS}
    ca_path, cert, key = _ca_and_listener(d)
    md5_path = d / "isp-md5-password"
    if not md5_path.exists():
        _write_private(md5_path, secrets.token_urlsafe(24).encode())
    known = d / "known_hosts"
    lines = [f"{_known_name(h)} {host_keys[h.name][1]}" for h in HOSTS.values()]
    _write_private(known, ("\n".join(lines) + "\n").encode())
    # For tools that run plain `ssh` (the docker CLI with DOCKER_HOST=ssh://...): a config
    # trusting exactly the pinned keys, and an `ssh` that uses it, to put first on PATH.
    _write_private(d / "ssh_config", (
        f"Host {' '.join(sorted({h.ssh_address for h in HOSTS.values()}))}\n  User root\n  IdentityFile {d / 'id_ed25519'}\n"
        f"  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n"
        "  BatchMode yes\n").encode())
    wrapper = d / "bin" / "ssh"
    _write_private(wrapper, f'#!/bin/sh\nexec /usr/bin/ssh -F {d / "ssh_config"} "$@"\n'.encode())
    os.chmod(wrapper, 0o700)
    os.chmod(wrapper.parent, 0o700)
    return Material(d, d / "id_ed25519", operator_pub, host_keys, ca_path, ca_path.read_text(), cert, key, md5_path, md5_path.read_text().strip(), known)


def _known_name(h: Host) -> str:
    return h.ssh_address if h.ssh_port == 22 else f"[{h.ssh_address}]:{h.ssh_port}"


# --- images -------------------------------------------------------------------------


def _context_hash(context: Path, dockerfile: Path) -> str:
    h = hashlib.sha256()
    for p in sorted([*context.rglob("*"), dockerfile]):
        if p.is_file():
            h.update(str(p.relative_to(ROOT)).encode() + b"\0" + oct(p.stat().st_mode & 0o777).encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:16]


def _build(ref: str, context: str, dockerfile: Optional[str], build_args: Optional[dict] = None, label: Optional[str] = None) -> None:
    args = ["build", "-q", "-t", ref]
    if dockerfile:
        args += ["-f", str(ROOT / dockerfile)]
    for k, v in (build_args or {}).items():
        args += ["--build-arg", f"{k}={v}"]
    if label:
        args += ["--label", f"{CONTEXT_LABEL}={label}"]
    t = time.monotonic()
    docker(*args, str(ROOT / context), timeout=1800)
    log(f"built {ref} ({time.monotonic() - t:.0f}s)")


def _stale_sim_image(ref: str) -> Optional[tuple]:
    """`_build`'s arguments for SIM_IMAGES[ref] when the image is missing or was built from
    another context (label), else None."""
    context, dockerfile = (SIM_IMAGES | ON_DEMAND_IMAGES)[ref]
    want = _context_hash(ROOT / context, ROOT / (dockerfile or f"{context}/Dockerfile"))
    have = docker("image", "inspect", "-f", f'{{{{index .Config.Labels "{CONTEXT_LABEL}"}}}}', ref, check=False)
    return None if have == want else (ref, context, dockerfile, None, want)


def sim_image(ref: str) -> str:
    """SIM_IMAGES[ref], built first if missing or stale (for tests and benches that need one
    image without the whole simulation)."""
    stale = _stale_sim_image(ref)
    if stale:
        _build(*stale)
    return ref


def ensure_images() -> None:
    """Build the sim images and our own release images whose context changed (label)."""
    todo = [t for t in map(_stale_sim_image, SIM_IMAGES) if t]
    with ThreadPoolExecutor(3) as pool:
        for f in [pool.submit(_build, *t) for t in todo]:
            f.result()
    hashes: dict[str, str] = {}
    for kind, (context, bases) in OWN_IMAGES.items():
        want = hashlib.sha256((_context_hash(ROOT / context, ROOT / context / "Dockerfile") + "".join(hashes[b] for b in bases.values())).encode()).hexdigest()[:16]
        hashes[kind] = want
        have = docker("image", "inspect", "-f", f'{{{{index .Config.Labels "{CONTEXT_LABEL}"}}}}', own_ref(kind), check=False)
        if have != want:
            _build(own_ref(kind), context, None, {arg: own_ref(base) for arg, base in bases.items()}, want)


# --- containers ---------------------------------------------------------------------


@dataclass
class Spec:
    """One container: run arguments, files copied in before the first start, extra networks."""

    name: str
    image: str
    nets: list[tuple[str, str]]  # (network key, address), first at create, the others connected
    args: list[str] = field(default_factory=list)
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # path -> (content, mode)
    cmd: list[str] = field(default_factory=list)
    volumes: dict[str, str] = field(default_factory=dict)  # volume name -> path

    def digest(self, image: str) -> str:
        h = hashlib.sha256(json.dumps([image, self.nets, self.args, self.cmd, self.volumes]).encode())
        for path, (content, mode) in sorted(self.files.items()):
            h.update(path.encode() + hashlib.sha256(content).digest() + str(mode).encode())
        return h.hexdigest()[:16]


def _tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs: set[str] = set()
        for path, (content, mode) in files.items():
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    ti = tarfile.TarInfo(d)
                    ti.type, ti.mode = tarfile.DIRTYPE, 0o700 if d in ("root", "root/.ssh") else 0o755
                    tar.addfile(ti)
            ti = tarfile.TarInfo("/".join(parts))
            ti.size, ti.mode, ti.mtime = len(content), mode, int(time.time())
            tar.addfile(ti, io.BytesIO(content))
    return buf.getvalue()


def container_action(found: Optional[dict], digest: str) -> str:
    """What `ensure_container` does with what `docker inspect` found: "reuse", "start",
    "replace" or "create". A dead container, or one whose removal an interrupted run or a
    dockerd restart left half done, cannot be started: it is replaced."""
    if not found:
        return "create"
    if found["State"]["Status"] in ("dead", "removing") or found["Config"]["Labels"].get(SPEC_LABEL) != digest:
        return "replace"
    return "reuse" if found["State"]["Running"] else "start"


def remove_container(name: str, timeout: float = 120) -> None:
    """Remove `name` and its anonymous volumes, and wait until it is gone (a removal already
    under way makes `docker rm` fail while it finishes)."""
    docker("rm", "-f", "-v", name, check=False, timeout=timeout)
    _wait(f"removal of container {name}", lambda: _inspect("container", name) is None, 60, 1)


def ensure_container(spec: Spec) -> str:
    """Create and start `spec` unless a container of the same spec exists (then start it
    if stopped). Returns "reused", "started" or "created"."""
    image = image_id(spec.image)
    if image is None:
        raise SimError(f"image {spec.image} missing")
    digest = spec.digest(image)
    found = _inspect("container", spec.name)
    action = container_action(found, digest)
    if action == "reuse":
        return "reused"
    if action == "start":
        docker("start", spec.name)
        return "started"
    if action == "replace":
        remove_container(spec.name)
    for vol in spec.volumes:
        if _inspect("volume", vol) is None:
            docker("volume", "create", "--label", LABEL, vol)
    (net0, ip0), *more = spec.nets
    args = ["create", "--name", spec.name, "--label", LABEL, "--label", f"{SPEC_LABEL}={digest}",
            "--network", NETS[net0].name, "--ip", ip0, "--restart", "unless-stopped"]
    for vol, path in spec.volumes.items():
        args += ["-v", f"{vol}:{path}"]
    docker(*args, *spec.args, spec.image, *spec.cmd)
    for net, ip in more:
        docker("network", "connect", "--ip", ip, NETS[net].name, spec.name)
    if spec.files:
        docker("cp", "-", f"{spec.name}:/", input=_tar(spec.files))
    docker("start", spec.name)
    return "created"


def _intra_bridge_rule(network_id: str) -> list[str]:
    """Docker isolates an internal network with FORWARD rules that, with br_netfilter on,
    also drop packets routed between containers of the same bridge when an address is
    outside the subnet (node-b -> router -> the Internet, edge -> ISP for the mesh). This
    DOCKER-USER rule accepts only what enters and leaves that same bridge, so nothing
    can leave the machine (as components/docker_parts.lab_network does for labs)."""
    br = f"br-{network_id[:12]}"
    return ["DOCKER-USER", "-i", br, "-o", br, "-j", "ACCEPT"]


def _iptables(*args: str, check: bool = True) -> bool:
    proc = subprocess.run(["iptables", "-w", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SimError(f"iptables {' '.join(args)}: {proc.stderr.strip()}")
    return proc.returncode == 0


def check_no_clash() -> None:
    """Refuse to put a sim network over an address this machine needs: its own addresses
    and gateway, its DNS servers, the package registries (a connected route to a sim
    bridge would capture their traffic)."""
    needed: list[tuple[str, str]] = []
    for line in _run(["ip", "-4", "-o", "addr", "show"]).splitlines():
        f = line.split()
        addr = f[3].split("/")[0]
        if addr not in {n.gateway for n in NETS.values()}:
            needed.append((addr, f"this machine's address on {f[1]}"))
    for line in _run(["ip", "-4", "route", "show", "default"]).splitlines():
        needed.append((line.split()[2], "this machine's default gateway"))
    resolv = Path("/etc/resolv.conf").read_text() if Path("/etc/resolv.conf").exists() else ""
    needed += [(line.split()[1], "a DNS server in /etc/resolv.conf") for line in resolv.splitlines() if line.startswith("nameserver ")]
    for name in ("deb.debian.org", "pypi.org", "proxy.golang.org"):
        try:
            needed += [(ai[4][0], name) for ai in socket.getaddrinfo(name, 443, socket.AF_INET)]
        except OSError:
            pass
    for addr, what in needed:
        for net in NETS.values():
            if ipaddress.ip_address(addr) in ipaddress.ip_network(net.subnet):
                raise SimError(f"{addr} ({what}) is inside the sim's {net.key} network {net.subnet}; "
                               "bringing it up would cut this machine off from it")


def _run(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def ensure_networks() -> None:
    check_no_clash()
    for net in NETS.values():
        found = _inspect("network", net.name)
        if found:
            cfg = (found.get("IPAM", {}).get("Config") or [{}])[0]
            if not (found.get("Internal") and cfg.get("Subnet") == net.subnet):
                raise SimError(f"network {net.name} exists with another shape ({cfg}); run `scripts/sim down` first")
        else:
            docker("network", "create", "--internal", "--driver", "bridge", "--label", LABEL,
                   "--subnet", net.subnet, "--gateway", net.gateway, "--ip-range", net.ip_range, net.name)
            found = _inspect("network", net.name)
        rule = _intra_bridge_rule(found["Id"])
        if not _iptables("-C", *rule, check=False):
            _iptables("-I", *rule)


def isp_conf(password: str) -> str:
    """The ISP's BIRD configuration (the ISP is not ours: written here, small). BFD runs on
    every session; a customer that does not run it leaves that BFD session down, which BIRD
    ignores until it has once been up."""
    sessions = "".join(_isp_session(name, address, password) for name, address in CUSTOMERS.items())
    return f"""# Sim ISP AS {ISP_ASN} (harness/sim.py): announces {ISP_ANNOUNCES} and a default
# route to each customer router, accepts only {EDGE_PREFIX} from them, MD5-protected sessions.
log stderr all;
router id {ISP_IP};

protocol device {{
}}

protocol bfd {{
}}

protocol static announce_v4 {{
  ipv4;
  route {ISP_ANNOUNCES} blackhole;
  route 0.0.0.0/0 blackhole;
}}
{sessions}
# Routes learnt from the edge go to the kernel: the way back to {EDGE_PREFIX}.
protocol kernel {{
  ipv4 {{
    import none;
    export where source = RTS_BGP;
  }};
  learn off;
}}
"""


def _isp_session(name: str, address: str, password: str) -> str:
    return f"""
protocol bgp {name} {{
  description "customer AS{EDGE_ASN} (bgp4mesh edge {address})";
  local {ISP_IP} as {ISP_ASN};
  neighbor {address} as {EDGE_ASN};
  password "{password}";
  hold time 9;
  keepalive time 3;
  connect retry time 2;
  bfd on;
  ipv4 {{
    import filter {{
      if net = {EDGE_PREFIX} then accept;
      reject;
    }};
    export where source = RTS_STATIC;
  }};
}}
"""


def whoami_caddyfile() -> str:
    """Each caller's address, over HTTPS with a certificate from the sim's ACME CA (so it
    is trusted wherever Pebble's root is, as a public service's is by the system roots)."""
    return (
        "{\n"
        f"\temail noc@{ZONE}\n"
        f"\tacme_ca {ACME_DIRECTORY}\n"
        "\tacme_ca_root /etc/sim/ca.pem\n"
        "}\n\n"
        f"{', '.join(WHOAMI_NAMES)} {{\n"
        "\trespond \"{remote_host}\"\n"
        "}\n"
    )


def specs(m: Material) -> list[Spec]:
    dns = ["--dns", RESOLVER]
    out = [
        Spec(PREFIX + "dns", "bgp4mesh/sim-dns:local", [("internet", RESOLVER)], ["--hostname", "ns"]),
        Spec(PREFIX + "registry", "bgp4mesh/sim-registry:local", [("internet", REGISTRY_IP)], ["--hostname", "registry", *dns],
             volumes={PREFIX + "registry-data": "/var/lib/docker-registry"}),
        Spec(PREFIX + "acme", "bgp4mesh/sim-acme:local", [("internet", ACME_IP)], ["--hostname", "acme", *dns],
             files={"/etc/pebble/cert.pem": (m.pebble_cert, 0o644), "/etc/pebble/key.pem": (m.pebble_key, 0o600)}),
        Spec(PREFIX + "stun", "bgp4mesh/sim-stun:local", [("internet", STUN_IP)], ["--hostname", "stun", *dns]),
        Spec(PREFIX + "whoami", UPSTREAM["caddy:2.8.4"], [("internet", WHOAMI_IP)], ["--hostname", "whoami", *dns],
             files={"/etc/caddy/Caddyfile": (whoami_caddyfile().encode(), 0o644), "/etc/sim/ca.pem": (m.ca_pem.encode(), 0o644)}),
        Spec(PREFIX + "isp", own_ref("bird"), [("uplink", ISP_IP)],
             ["--hostname", "isp", "--cap-add", "NET_ADMIN", "-e", f"ISP_ADDRESSES={ISP_TEST_ADDRESS}/32", "-e", "ROUTES_FROM_BGP_ONLY=1"],
             files={"/etc/bird/bird.conf": (isp_conf(m.md5).encode(), 0o600)}),
        Spec(PREFIX + "nat", "bgp4mesh/sim-nat:local", [("internet", NAT_WAN), ("home", NAT_LAN)],
             ["--hostname", "router", "--cap-add", "NET_ADMIN", "--sysctl", "net.ipv4.ip_forward=1",
              "-e", f"WAN_ADDR={NAT_WAN}", "-e", f"LAN_ADDR={NAT_LAN}", "-e", f"LAN_NET={NETS['home'].subnet}",
              "-e", f"FORWARD={NAT_SSH_PORT}={HOSTS['node-b'].addresses[0][1]}:22"]),
    ]
    auth = (m.operator_pub + " bgp4mesh-sim-operator\n").encode()
    for h in HOSTS.values():
        key, pub = m.host_keys[h.name]
        out.append(Spec(
            h.container, "bgp4mesh/simhost:local", list(h.addresses),
            ["--hostname", h.name, *HOST_PRIVILEGES, "--cgroupns", "private", "--tmpfs", "/run", "--stop-timeout", "30",
             "-e", f"IFNAMES={h.ifnames}", "-e", f"DEFAULT_VIA={h.default_via}", "-e", f"RESOLVER={RESOLVER}"],
            files={
                "/etc/ssh/ssh_host_ed25519_key": (key, 0o600),
                "/etc/ssh/ssh_host_ed25519_key.pub": ((pub + f" root@{h.name}\n").encode(), 0o644),
                "/root/.ssh/authorized_keys": (auth, 0o600),
            },
            volumes={f"{h.container}-docker": "/var/lib/docker"},
        ))
    return out


# --- probes (from the operator's machine) -------------------------------------------


def ssh_argv(host: Host, m: Material, *command: str, host_key: Optional[str] = None, timeout: int = 10) -> list[str]:
    """ssh to `host` trusting exactly its pinned key (or `host_key`), nothing from ~/.ssh."""
    key = host_key or m.host_keys[host.name][1]
    return ["ssh", "-i", str(m.operator_key), "-p", str(host.ssh_port), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", f"KnownHostsCommand=/bin/echo %H {key}", "-o", f"ConnectTimeout={timeout}", "-o", "LogLevel=ERROR",
            "-F", "/dev/null", f"root@{host.ssh_address}", *command]


def ssh(host: Host, m: Material, *command: str, timeout: float = 60, check: bool = True, input: Optional[bytes] = None) -> str:
    proc = subprocess.run(ssh_argv(host, m, *command), capture_output=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise SimError(f"ssh {host.name} {' '.join(command)[:60]}: exit {proc.returncode}: {proc.stderr.decode(errors='replace').strip()[-400:]}")
    return proc.stdout.decode(errors="replace").strip()


def dns_query(name: str, server: str = RESOLVER, qtype: int = 1, timeout: float = 2) -> tuple[int, list[str]]:
    """(rcode, A records) of one UDP query."""
    qid = secrets.randbits(16)
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack("!HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, (server, 53))
        data = s.recv(4096)
    rid, flags, qd, an = struct.unpack("!HHHH", data[:8])
    if rid != qid:
        raise SimError("DNS: wrong id")
    pos = 12
    for _ in range(qd):
        while data[pos]:
            pos += data[pos] + 1
        pos += 5
    out = []
    for _ in range(an):
        pos += 2 if data[pos] & 0xC0 == 0xC0 else data.index(b"\0", pos) + 1 - pos
        typ, _cls, _ttl, rdlen = struct.unpack("!HHIH", data[pos:pos + 10])
        pos += 10
        if typ == 1:
            out.append(socket.inet_ntoa(data[pos:pos + 4]))
        pos += rdlen
    return flags & 0xF, out


STUN_MAGIC = 0x2112A442


def stun_request() -> bytes:
    return struct.pack("!HHI", 0x0001, 0, STUN_MAGIC) + secrets.token_bytes(12)


def stun_mapped(resp: bytes) -> tuple[str, int]:
    """XOR-MAPPED-ADDRESS of a STUN binding success response."""
    typ, length, magic = struct.unpack("!HHI", resp[:8])
    if typ != 0x0101 or magic != STUN_MAGIC:
        raise SimError(f"STUN: not a binding success ({typ:#x})")
    pos = 20
    while pos < 20 + length:
        atype, alen = struct.unpack("!HH", resp[pos:pos + 4])
        if atype == 0x0020:
            port = struct.unpack("!H", resp[pos + 6:pos + 8])[0] ^ (STUN_MAGIC >> 16)
            addr = struct.unpack("!I", resp[pos + 8:pos + 12])[0] ^ STUN_MAGIC
            return socket.inet_ntoa(struct.pack("!I", addr)), port
        pos += 4 + alen + (-alen % 4)
    raise SimError("STUN: no XOR-MAPPED-ADDRESS")


def stun_probe(server: str = STUN_IP, port: int = 3478, timeout: float = 2) -> tuple[str, int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(stun_request(), (server, port))
        return stun_mapped(s.recv(2048))


def _https_get(url: str, ip: str, ca_pem: str, timeout: float = 5) -> bytes:
    """GET `url` connecting to `ip` (the operator's machine does not use the sim DNS),
    verifying the name in the URL against `ca_pem`."""
    host = url.split("/")[2].split(":")[0]
    ctx = ssl.create_default_context(cadata=ca_pem)

    class Conn(urllib.request.HTTPSHandler):
        def https_open(self, req):
            import http.client

            class C(http.client.HTTPSConnection):
                def connect(self_):
                    sock = socket.create_connection((ip, self_.port), timeout)
                    self_.sock = ctx.wrap_socket(sock, server_hostname=host)

            return self.do_open(C, req)

    return urllib.request.build_opener(Conn).open(url, timeout=timeout).read()


def registry_manifest(repo: str, tag: str) -> Optional[tuple[str, str]]:
    """(manifest digest, image id) of repo:tag in the registry; None when it holds no such tag.
    The manifest digest is what a pull by digest names: the registry's Docker-Content-Digest,
    checked against the bytes it serves."""
    req = urllib.request.Request(
        f"http://{REGISTRY_IP}:5000/v2/{repo}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            body, digest = r.read(), r.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise
    if digest != "sha256:" + hashlib.sha256(body).hexdigest():
        raise SimError(f"{REGISTRY}/{repo}:{tag}: Docker-Content-Digest {digest} is not the digest of the manifest it serves")
    return digest, json.loads(body)["config"]["digest"]


def _registry_up() -> bool:
    with urllib.request.urlopen(f"http://{REGISTRY_IP}:5000/v2/", timeout=2) as r:
        return r.status == 200


# --- publishing into the registry ---------------------------------------------------


def default_tag() -> str:
    ids = [image_id(ref) or "" for ref in PUBLISHED.values()]
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]


def _wanted(tag: str) -> dict[str, tuple[str, str]]:
    """Name a host pulls -> (repository:tag in the registry, local image): the look-alikes
    under their Docker Hub names (library/ for official images), ours under bgp4mesh/<kind>:<tag>."""
    wanted = {}
    for hub, local in UPSTREAM.items():
        repo, t = hub.rsplit(":", 1)
        wanted[hub] = (f"{'library/' if '/' not in repo else ''}{repo}:{t}", local)
    for kind, local in PUBLISHED.items():
        wanted[f"{REGISTRY}/bgp4mesh/{kind}:{tag}"] = (f"bgp4mesh/{kind}:{tag}", local)
    return wanted


def _held(dest: str) -> tuple[Optional[str], Optional[str]]:
    """(manifest digest, image id) under repository:tag `dest`; (None, None) when absent."""
    return registry_manifest(*dest.rsplit(":", 1)) or (None, None)


def publish(tag: str) -> dict[str, str]:
    """Push the look-alikes and our images (_wanted), skipping what the registry holds
    already (same config digest = same image id). Returns each name a host pulls -> the
    manifest digest the registry serves for it (the staging stack pins it)."""
    wanted = _wanted(tag)
    todo = [(dest, local) for dest, local in wanted.values() if _held(dest)[1] != image_id(local)]
    sock = "/var/run/docker.sock"
    if os.environ.get("DOCKER_HOST", "unix://" + sock) != "unix://" + sock or not Path(sock).exists():
        raise SimError(f"publishing reads images from the local engine through {sock}; DOCKER_HOST points elsewhere")

    if todo:
        # One pusher container for all copies (they run side by side inside it): Docker
        # 20.10 can leak a network's endpoint count when containers on it come and go
        # concurrently (moby/moby#43286), after which the network cannot be removed.
        t = time.monotonic()
        cmds = [shlex.join(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"docker-daemon:{local}", f"docker://{REGISTRY}/{dest}"])
                for dest, local in todo]
        script = "set -e\n" + "".join(f"{c} &\np{i}=$!\n" for i, c in enumerate(cmds)) + "".join(f"wait $p{i}\n" for i in range(len(cmds)))
        name = PREFIX + "push"
        docker("rm", "-f", name, check=False)
        try:
            docker("run", "--name", name, "--label", LABEL, "--network", NETS["internet"].name, "--dns", RESOLVER,
                   "-v", f"{sock}:{sock}", "--entrypoint", "/bin/sh", "bgp4mesh/sim-skopeo:local",
                   "-c", script, timeout=1800)
        finally:
            docker("rm", "-f", name, check=False)
        log(f"pushed {', '.join(f'{local} as {REGISTRY}/{dest}' for dest, local in todo)} ({time.monotonic() - t:.0f}s)")
    digests = {}
    for name, (dest, local) in wanted.items():
        digests[name], held_id = _held(dest)
        if held_id != image_id(local):
            raise SimError(f"{REGISTRY}/{dest} does not hold {local} after the push")
    if not todo:
        log("registry already holds every image")
    return digests


# --- up / down / status -------------------------------------------------------------


def _wait(what: str, check: Callable, wait: float, every: float = 0.5):
    try:
        return until(check, wait, every)
    except WaitTimeout as exc:
        raise SimError(f"{what} not ready within {wait:.0f}s: {exc}") from None


def _host_ready(h: Host, m: Material) -> str:
    return ssh(h, m, "docker", "info", "--format", "{{.Driver}}", timeout=20)


def _isp_ready() -> bool:
    if "peer_edge" in docker("exec", PREFIX + "isp", "birdc", "show", "protocols", check=False):
        return True
    logs = subprocess.run(["docker", "logs", "--tail", "2", PREFIX + "isp"], capture_output=True, text=True).stderr
    raise SimError("birdc does not answer; last log: " + logs.strip().replace("\n", " | "))


def up(tag: Optional[str] = None) -> dict:
    """Bring the simulation up (idempotent) and write staging.json; returns its content."""
    t0 = time.monotonic()
    m = material()
    ensure_images()
    t_img = time.monotonic()
    ensure_networks()
    all_specs = specs(m)
    states = {}
    # Services first (fixed addresses; the resolver before anything that resolves).
    for s in all_specs:
        states[s.name] = ensure_container(s)
    log("containers: " + ", ".join(f"{n.removeprefix(PREFIX)} {st}" for n, st in states.items()))
    _wait("DNS", lambda: dns_query(f"registry.{ZONE}") == (0, [REGISTRY_IP]), 30)
    _wait("registry", _registry_up, 30)
    tag = tag or default_tag()
    published = publish(tag)
    _wait("STUN", lambda: stun_probe(), 30)
    root_pem = _wait("pebble", lambda: _https_get(ACME_ROOT_URL, ACME_IP, m.ca_pem).decode(), 30)
    _https_get(ACME_DIRECTORY, ACME_IP, m.ca_pem)
    _wait("ISP (BIRD)", _isp_ready, 30)
    drivers = {h.name: _wait(f"host {h.name} (ssh + docker)", lambda h=h: _host_ready(h, m), 90, 1) for h in HOSTS.values()}
    for name, driver in drivers.items():
        if driver != "overlay2":
            log(f"note: host {name}'s engine uses storage driver {driver}")
    root_path = m.dir / "pebble-root.pem"
    _write_private(root_path, root_pem.encode())
    info = sim_info(m, tag, root_pem, root_path, published)
    _write_private(info_path(), (json.dumps(info, indent=2) + "\n").encode())
    _resolve_here(OPERATOR_NAMES)
    log(f"up in {time.monotonic() - t0:.1f}s (images {t_img - t0:.1f}s); wrote {info_path()}")
    return info


def sim_info(m: Material, tag: str, root_pem: str, root_path: Path, published: dict) -> dict:
    """SimInfo: what the staging stack's config is filled from (staging.json, 0600)."""
    hosts = {}
    for h in HOSTS.values():
        e = {
            "name": h.name,
            "ssh_address": h.ssh_address,
            "ssh_port": h.ssh_port,
            "user": "root",
            "host_key": m.host_keys[h.name][1],
            "public_address": h.public_address,
            "docker_host": f"ssh://root@{h.ssh_address}" + (f":{h.ssh_port}" if h.ssh_port != 22 else ""),
        }
        if "uplink" in dict(h.addresses):
            e.update(uplink_interface="uplink", uplink_address=dict(h.addresses)["uplink"], uplink_network=NETS["uplink"].subnet)
        if h.name == "node-b":
            e.update(lan_address=dict(h.addresses)["home"], behind_nat=NAT_WAN)
        hosts[h.name] = e
    return {
        "operator_key": str(m.operator_key),
        "operator_public_key": m.operator_pub,
        "known_hosts": str(m.known_hosts),
        "ssh_config": str(m.dir / "ssh_config"),
        "ssh_path": str(m.dir / "bin"),  # PATH=$ssh_path:$PATH DOCKER_HOST=ssh://root@203.0.113.20 docker ps
        "hosts": hosts,
        "registry": REGISTRY,
        "image_tag": tag,
        "images": {name: f"{REGISTRY}/bgp4mesh/{name}:{tag}" for name in PUBLISHED},
        "digests": published,  # name a host pulls -> manifest digest in the registry
        "mirrored": sorted(UPSTREAM),
        "acme_directory": ACME_DIRECTORY,
        "acme_listener_ca_pem": m.ca_pem,
        "acme_listener_ca_file": str(m.ca_pem_path),
        "acme_root_pem": root_pem,
        "acme_root_file": str(root_path),
        "stun_server": STUN,
        "dns_server": RESOLVER,
        "domain": ZONE,
        "isp": {
            "address": ISP_IP,
            "asn": ISP_ASN,
            "test_address": ISP_TEST_ADDRESS,
            "announces": [ISP_ANNOUNCES, "0.0.0.0/0"],
            "accepts": [EDGE_PREFIX],
            "neighbor": EDGE_UPLINK_ADDRESS,
            "neighbor_asn": EDGE_ASN,
            "md5_password_file": str(m.md5_path),
            "md5_password": m.md5,  # secret: this file is 0600; never printed
        },
    }


def load_info() -> dict:
    return json.loads(info_path().read_text())


def _ours(kind: str) -> list[str]:
    """Names of sim objects of `kind` (ps, network, volume): labelled, or named with the prefix."""
    fmt = "{{.Names}}" if kind == "ps" else "{{.Name}}"
    base = ["ps", "-a"] if kind == "ps" else [kind, "ls"]
    names = set(docker(*base, "--filter", f"label={LABEL}", "--format", fmt).split())
    names.update(n for n in docker(*base, "--filter", f"name={PREFIX}", "--format", fmt).split() if n.startswith(PREFIX))
    return sorted(names)


HOSTS_FILE = Path("/etc/hosts")
HOSTS_MARK = "# bgp4mesh sim (harness/sim.py)"
OPERATOR_NAMES = {f"nm.{ZONE}": "203.0.113.20", f"broker.nm.{ZONE}": "203.0.113.20"}
"""Names the operator's machine resolves as public DNS would (`pulumi up` talks to the
Netmaker API by name): kept in /etc/hosts between markers while the sim is up."""


def _resolve_here(names: dict[str, str]) -> None:
    kept = [line for line in HOSTS_FILE.read_text().splitlines() if not line.endswith(HOSTS_MARK)]
    HOSTS_FILE.write_text("\n".join(kept + [f"{ip} {name} {HOSTS_MARK}" for name, ip in names.items()]) + "\n")


def down() -> None:
    """Remove every sim container, network and volume, and its names from /etc/hosts;
    keep images and the cache's keys."""
    t0 = time.monotonic()
    _resolve_here({})
    containers = _ours("ps")
    # One at a time: removing many containers of one network at once can leak the
    # network's endpoint count in Docker 20.10 (moby/moby#43286; only a dockerd restart
    # clears it). Restart policies off first, so nothing comes back meanwhile.
    if containers:
        docker("update", "--restart", "no", *containers, check=False)
    for name in containers:
        remove_container(name)
    errors = []
    for net in _ours("network"):
        found = _inspect("network", net)
        if found:
            while _iptables("-D", *_intra_bridge_rule(found["Id"]), check=False):
                pass
        try:  # endpoints of just-removed containers are released asynchronously
            _wait(f"removal of network {net}", lambda net=net: docker("network", "rm", net) or True, 10)
        except SimError as exc:
            errors.append(f"{exc} (with no container attached this is moby/moby#43286: a leaked endpoint count "
                          "that only a dockerd restart clears; `up` reuses the network meanwhile)")
    vols = _ours("volume")
    if vols:
        docker("volume", "rm", "-f", *vols)
    info_path().unlink(missing_ok=True)
    left = leftovers()
    if left:
        raise SimError(f"down left {left}" + "".join(f"; {e}" for e in errors))
    log(f"down in {time.monotonic() - t0:.1f}s (removed {len(containers)} containers)")


def leftovers() -> list[str]:
    return [f"{k} {n}" for k in ("ps", "network", "volume") for n in _ours(k)]


def status() -> dict:
    rows = {}
    for name in _ours("ps"):
        c = _inspect("container", name) or {}
        nets = c.get("NetworkSettings", {}).get("Networks", {})
        rows[name] = {"state": c.get("State", {}).get("Status"), "addresses": {k.removeprefix(PREFIX): v.get("IPAddress") for k, v in nets.items()}}
    return {"containers": rows, "networks": _ours("network"), "volumes": _ours("volume"), "info": str(info_path()) if info_path().exists() else None}


SCAN_ADDRESS = "203.0.113.50"
"""Where the scanner stands on the simulated Internet: an address no host trusts."""


def scan(addresses: list[str]) -> dict[str, list[str]]:
    """Every open TCP port (1-65535, SYN scan) of each address as the Internet sees it:
    {address: ["22/tcp", ...]}."""
    return {a: [f"{p}/tcp" for p in sorted(opened)] for a, (opened, _) in scan_report(addresses).items()}


def scan_report(addresses: list[str], network: str = "", source: str = SCAN_ADDRESS, label: str = LABEL,
                rate: int = 5000, retries: int = 1) -> dict[str, tuple[set[int], dict[str, int]]]:
    """A SYN scan of every TCP port from one throwaway nmap container at `source` on
    `network` (the sim's internet by default): {address: (open ports, how many of the rest
    nmap found in each other state: dropped is "filtered", refused "closed")}."""
    name = PREFIX + "scan"
    docker("rm", "-f", name, check=False)
    try:
        xml = docker("run", "--name", name, "--label", label, "--network", network or NETS["internet"].name, "--ip", source,
                     "--cap-add", "NET_RAW", "--cap-add", "NET_ADMIN", sim_image(SCAN_IMAGE),
                     "-n", "-Pn", "-sS", "-p-", "--min-rate", str(rate), "--max-retries", str(retries), "-oX", "-", *addresses, timeout=900)
    finally:
        docker("rm", "-f", name, check=False)
    import xml.etree.ElementTree as ET

    found: dict[str, tuple[set[int], dict[str, int]]] = {}
    for host in ET.fromstring(xml).iter("host"):
        states = {int(p.get("portid")): p.find("state").get("state") for p in host.iter("port")}
        rest = Counter(s for s in states.values() if s != "open")
        rest.update({e.get("state"): int(e.get("count")) for e in host.iter("extraports")})
        found[host.find("address").get("addr")] = ({p for p, s in states.items() if s == "open"}, dict(rest))
    return {a: found.get(a, (set(), {})) for a in addresses}


SCAN_IMAGE = "bgp4mesh/sim-scan:local"
BOOT_IMAGE = "bgp4mesh/sim-boot:local"


def outsider_http(network: str, source: str, host: str, address: str, calls: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The HTTP status of each (method, path) at https://<host> (resolved to `address`),
    asked by a throwaway container at `source` on `network`: an address that is neither
    an operator's nor a member's, with no credential and no trust in the certificate. HTTP/1.1,
    so that a path Go's HTTP/2 server resets before Caddy sees it (`..` segments) still meets
    the allow-list."""
    script = "\n".join(
        f"curl -sk --http1.1 -o /dev/null -w '%{{http_code}}\\n' -m 10 --path-as-is -X {m} -H 'Content-Type: application/json' "
        f"-d '{{\"username\":\"mallory\",\"password\":\"mallory-pw\"}}' --resolve {host}:443:{address} 'https://{host}{p}'"
        for m, p in calls
    )
    name = PREFIX + "outsider"
    docker("rm", "-f", name, check=False)
    try:
        out = docker("run", "--name", name, "--label", LABEL, "--network", network, "--ip", source,
                     "--entrypoint", "sh", sim_image(SCAN_IMAGE), "-c", script, timeout=300)
    finally:
        docker("rm", "-f", name, check=False)
    return dict(zip(calls, (int(code) for code in out.split())))


def set_isp_password(password: str) -> None:
    """The ISP's side of the MD5 session with another password (reconfigured in place)."""
    docker("cp", "-", PREFIX + "isp:/etc/bird/", input=_tar({"bird.conf": (isp_conf(password).encode(), 0o600)}))
    docker("exec", PREFIX + "isp", "birdc", "configure")


def stop_isp() -> None:
    docker("stop", "-t", "2", PREFIX + "isp")


def start_isp() -> None:
    docker("start", PREFIX + "isp")


def restart_host(name: str, wait: float = 120) -> None:
    """Reboot a host (docker restart) and wait until its engine answers over SSH again."""
    h = HOSTS[name]
    docker("restart", h.container, timeout=120)
    m = material()
    _wait(f"host {name} after restart", lambda: _host_ready(h, m), wait, 1)


def memory() -> dict[str, str]:
    """Memory in use per running sim container, as `docker stats --no-stream` counts it
    (a host's figure includes its inner engine's containers, which live in its cgroup).
    Where docker stats answers 0B the figure is read from the container's memory cgroup
    the same way (usage minus inactive file cache)."""
    names = [n for n in _ours("ps") if (_inspect("container", n) or {}).get("State", {}).get("Running")]
    out = docker("stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *names) if names else ""
    rows = dict(line.split("\t", 1) for line in out.splitlines() if line)
    for name, usage in rows.items():
        if usage.startswith("0B"):
            rows[name] = f"{_cgroup_memory(name) / 2**20:.1f}MiB (cgroup)"
    return rows


def _cgroup_memory(name: str) -> int:
    pid = docker("inspect", "-f", "{{.State.Pid}}", name)
    rel = next(line.split(":", 2)[2] for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines() if line.split(":")[1] == "memory")
    d = Path("/sys/fs/cgroup/memory") / rel.lstrip("/")
    stat = dict(line.split() for line in (d / "memory.stat").read_text().splitlines())
    return int((d / "memory.usage_in_bytes").read_text()) - int(stat.get("total_inactive_file", 0))


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="./scripts/sim", description="the simulated Internet for the staging stack (harness/sim.py)")
    p.add_argument("action", choices=["up", "down", "status", "stop-isp", "start-isp", "restart-host", "memory"])
    p.add_argument("host", nargs="?", help="for restart-host")
    p.add_argument("--tag", help="tag for our images in the registry (default: a hash of their image ids)")
    a = p.parse_args(argv)
    try:
        if a.action == "up":
            info = up(a.tag)
            print(json.dumps({k: v for k, v in info.items() if k != "isp"} | {"isp": {k: v for k, v in info["isp"].items() if k != "md5_password"}}, indent=2))
        elif a.action == "down":
            down()
        elif a.action == "status":
            print(json.dumps(status(), indent=2))
        elif a.action == "stop-isp":
            stop_isp()
        elif a.action == "start-isp":
            start_isp()
        elif a.action == "restart-host":
            if a.host not in HOSTS:
                p.error(f"restart-host needs one of {', '.join(HOSTS)}")
            restart_host(a.host)
        else:
            print(json.dumps(memory(), indent=2))
    except SimError as exc:
        print(f"sim {a.action}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
