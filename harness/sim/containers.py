"""The simulation's containers: each one declared as a `Spec` and kept as declared, so a
second `up` reuses what did not change and replaces what did."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from dataclasses import dataclass, field
from typing import Optional

from bgp4mesh.docker_cli import docker

from .base import LABEL, SPEC_LABEL, SimError, image_id, inspect, wait
from .topology import NETS


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
    ip6: dict[str, str] = field(default_factory=dict)  # network key -> IPv6 address (networks with IPv6)

    def digest(self, image: str) -> str:
        h = hashlib.sha256(json.dumps([image, self.nets, self.args, self.cmd, self.volumes, self.ip6]).encode())
        for path, (content, mode) in sorted(self.files.items()):
            h.update(path.encode() + hashlib.sha256(content).digest() + str(mode).encode())
        return h.hexdigest()[:16]


def tar_archive(files: dict[str, tuple[bytes, int]]) -> bytes:
    """`files` (path -> (content, mode)) as one tar stream, parent folders included (0700
    for root's, 0755 for the others), as `docker cp -` takes it."""
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
    wait(f"removal of container {name}", lambda: inspect("container", name) is None, 60, 1)


def copy_in(container: str, files: dict[str, tuple[bytes, int]]) -> None:
    """Put `files` (path -> (content, mode)) into `container`, created or running."""
    docker("cp", "-", f"{container}:/", input=tar_archive(files))


def ensure_container(spec: Spec) -> str:
    """Create and start `spec` unless a container of the same spec exists (then start it
    if stopped). Returns "reused", "started" or "created"."""
    image = image_id(spec.image)
    if image is None:
        raise SimError(f"image {spec.image} missing")
    digest = spec.digest(image)
    action = container_action(inspect("container", spec.name), digest)
    if action == "reuse":
        return "reused"
    if action == "start":
        docker("start", spec.name)
        return "started"
    if action == "replace":
        remove_container(spec.name)
    _create(spec, digest)
    docker("start", spec.name)
    return "created"


def _create(spec: Spec, digest: str) -> None:
    """The container of `spec`, labelled with its digest, on its networks, its files in."""
    for vol in spec.volumes:
        if inspect("volume", vol) is None:
            docker("volume", "create", "--label", LABEL, vol)
    (net0, ip0), *more = spec.nets
    args = ["create", "--name", spec.name, "--label", LABEL, "--label", f"{SPEC_LABEL}={digest}",
            "--network", NETS[net0].name, "--ip", ip0, *_ip6(spec, net0), "--restart", "unless-stopped"]
    for vol, path in spec.volumes.items():
        args += ["-v", f"{vol}:{path}"]
    docker(*args, *spec.args, spec.image, *spec.cmd)
    for net, ip in more:
        docker("network", "connect", "--ip", ip, *_ip6(spec, net), NETS[net].name, spec.name)
    if spec.files:
        copy_in(spec.name, spec.files)


def _ip6(spec: Spec, net: str) -> list[str]:
    """`--ip6` on a network with IPv6: a fixed address, never one Docker picks (it could be
    one a router puts on the link later)."""
    if not NETS[net].subnet6:
        return []
    if net not in spec.ip6:
        raise SimError(f"{spec.name} on {net}, which carries IPv6, needs a fixed IPv6 address (Spec.ip6)")
    return ["--ip6", spec.ip6[net]]


def run_once(name: str, *args: str, timeout: float = 600) -> str:
    """`docker run --name NAME ARGS` (a container left by an earlier run removed first),
    removed again however it ended; what it printed."""
    docker("rm", "-f", name, check=False)
    try:
        return docker("run", "--name", name, *args, timeout=timeout)
    finally:
        docker("rm", "-f", name, check=False)
