"""The simulation's images: its own services, look-alikes of the upstream images staging
pulls, and bgp4mesh's images as a release pipeline makes them. Each is built again only
when what its build reads changed (the digest in its label)."""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Optional

from bgp4mesh.docker_cli import docker
from components.docker_parts import context_digest

from .base import CONTEXT_LABEL, ROOT, log

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
SCAN_IMAGE = "bgp4mesh/sim-scan:local"
BOOT_IMAGE = "bgp4mesh/sim-boot:local"
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
    "netclient": ("images/netclient", {"BIRD_IMAGE": "bird"}),  # supervise.sh ships in the bird image
    "border": ("images/border", {"NETCLIENT_IMAGE": "netclient", "BIRD_IMAGE": "bird"}),
    "monitoring": ("images/monitoring", {"BIRD_IMAGE": "bird"}),  # supervise.sh, as for netclient
}


def own_ref(kind: str) -> str:
    return f"bgp4mesh/{kind}:release"


PUBLISHED = {kind: own_ref(kind) for kind in ("border", "netclient", "monitoring")}


def build(ref: str, context: str, dockerfile: Optional[str] = None, build_args: Optional[dict] = None, label: Optional[str] = None) -> None:
    """`docker build` of `context` (relative to the checkout) as `ref`, with `label` as its
    context digest."""
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


def _label(ref: str) -> str:
    return docker("image", "inspect", "-f", f'{{{{index .Config.Labels "{CONTEXT_LABEL}"}}}}', ref, check=False)


def _stale_sim_image(ref: str) -> Optional[tuple]:
    """`build`'s arguments for SIM_IMAGES[ref] when the image is missing or was built from
    another context (label), else None."""
    context, dockerfile = (SIM_IMAGES | ON_DEMAND_IMAGES)[ref]
    want = context_digest(ROOT / context, ROOT / dockerfile if dockerfile else None)
    return None if _label(ref) == want else (ref, context, dockerfile, None, want)


def sim_image(ref: str) -> str:
    """SIM_IMAGES[ref], built first if missing or stale (for tests and benches that need one
    image without the whole simulation)."""
    stale = _stale_sim_image(ref)
    if stale:
        build(*stale)
    return ref


def own_image_labels() -> dict[str, str]:
    """Kind -> the label its release image must carry: its context's digest chained with its
    bases' labels, so a changed base rebuilds every image built FROM it."""
    labels: dict[str, str] = {}
    for kind, (context, bases) in OWN_IMAGES.items():
        chained = context_digest(ROOT / context) + "".join(labels[b] for b in bases.values())
        labels[kind] = hashlib.sha256(chained.encode()).hexdigest()
    return labels


def _with_bases(kind: str) -> list[str]:
    """`kind` after every kind it builds FROM, directly or not, each once."""
    return list(dict.fromkeys([k for base in OWN_IMAGES[kind][1].values() for k in _with_bases(base)] + [kind]))


def _ensure_own(kinds: Iterable[str]) -> None:
    labels = own_image_labels()
    for kind in kinds:
        context, bases = OWN_IMAGES[kind]
        if _label(own_ref(kind)) != labels[kind]:
            build(own_ref(kind), context, None, {arg: own_ref(base) for arg, base in bases.items()}, labels[kind])


def own_image(kind: str) -> str:
    """Our release image `kind`, built first (with its bases) when missing or stale."""
    _ensure_own(dict.fromkeys(_with_bases(kind)))
    return own_ref(kind)


def ensure_images() -> None:
    """Build the sim images and our own release images whose context changed (label)."""
    todo = [t for t in map(_stale_sim_image, SIM_IMAGES) if t]
    with ThreadPoolExecutor(3) as pool:
        for f in [pool.submit(build, *t) for t in todo]:
            f.result()
    _ensure_own(OWN_IMAGES)
