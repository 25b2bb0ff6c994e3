"""The simulated registry: a mirror serving Docker Hub names (the look-alikes) and
bgp4mesh's release images, pushed from the local engine, and read back by manifest digest
so that staging pulls each image by the digest the registry serves."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from .base import LABEL, PREFIX, SimError, image_id, log
from .containers import run_once
from .images import PUBLISHED, UPSTREAM
from .topology import NETS, REGISTRY, REGISTRY_IP, RESOLVER


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


def registry_up() -> bool:
    with urllib.request.urlopen(f"http://{REGISTRY_IP}:5000/v2/", timeout=2) as r:
        return r.status == 200



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
    if todo:
        _push(todo)
    digests = {}
    for name, (dest, local) in wanted.items():
        digests[name], held_id = _held(dest)
        if held_id != image_id(local):
            raise SimError(f"{REGISTRY}/{dest} does not hold {local} after the push")
    if not todo:
        log("registry already holds every image")
    return digests


def _push(todo: list[tuple[str, str]]) -> None:
    """Copy each (repository:tag, local image) into the registry with skopeo, reading the
    local engine through its socket. One pusher container for all copies (they run side by
    side inside it): Docker 20.10 can leak a network's endpoint count when containers on it
    come and go concurrently (moby/moby#43286), after which the network cannot be removed."""
    sock = "/var/run/docker.sock"
    if os.environ.get("DOCKER_HOST", "unix://" + sock) != "unix://" + sock or not Path(sock).exists():
        raise SimError(f"publishing reads images from the local engine through {sock}; DOCKER_HOST points elsewhere")
    t = time.monotonic()
    cmds = [shlex.join(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"docker-daemon:{local}", f"docker://{REGISTRY}/{dest}"])
            for dest, local in todo]
    script = "set -e\n" + "".join(f"{c} &\np{i}=$!\n" for i, c in enumerate(cmds)) + "".join(f"wait $p{i}\n" for i in range(len(cmds)))
    run_once(PREFIX + "push", "--label", LABEL, "--network", NETS["internet"].name, "--dns", RESOLVER,
             "-v", f"{sock}:{sock}", "--entrypoint", "/bin/sh", "bgp4mesh/sim-skopeo:local", "-c", script, timeout=1800)
    log(f"pushed {', '.join(f'{local} as {REGISTRY}/{dest}' for dest, local in todo)} ({time.monotonic() - t:.0f}s)")
