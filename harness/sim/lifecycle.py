"""Bringing the simulation up (idempotent: what did not change is reused) and down (also
after a failed `up`; the cache's keys stay), and rebooting one of its hosts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

from bgp4mesh.docker_cli import docker

from .access import host_ready
from .base import PREFIX, SimError, info_path, log, wait, write_private
from .containers import ensure_container, remove_container
from .images import ensure_images
from .info import sim_info
from .inventory import leftovers, ours
from .isp import isp_ready
from .material import Material, material
from .networks import ensure_networks, remove_network
from .probes import https_get, dns_query, stun_probe
from .registry import default_tag, publish, registry_up
from .services import specs
from .topology import ACME_DIRECTORY, ACME_IP, ACME_ROOT_URL, HOSTS, OPERATOR_NAMES, REGISTRY_IP, ZONE

HOSTS_FILE = Path("/etc/hosts")
HOSTS_MARK = "# bgp4mesh sim (harness/sim.py)"
"""Ends each line `up` adds to HOSTS_FILE (kept as first written, so `down` still finds the
lines an older harness added)."""


def up(tag: Optional[str] = None) -> dict:
    """Bring the simulation up (idempotent) and write staging.json; returns its content."""
    t0 = time.monotonic()
    m = material()
    ensure_images()
    t_img = time.monotonic()
    ensure_networks()
    states = {s.name: ensure_container(s) for s in specs(m)}
    log("containers: " + ", ".join(f"{n.removeprefix(PREFIX)} {st}" for n, st in states.items()))
    wait("DNS", lambda: dns_query(f"registry.{ZONE}") == (0, [REGISTRY_IP]), 30)
    wait("registry", registry_up, 30)
    tag = tag or default_tag()
    published = publish(tag)
    root_pem = _wait_for_services(m)
    root_path = m.dir / "pebble-root.pem"
    write_private(root_path, root_pem.encode())
    info = sim_info(m, tag, root_pem, root_path, published)
    write_private(info_path(), (json.dumps(info, indent=2) + "\n").encode())
    _resolve_here(OPERATOR_NAMES)
    log(f"up in {time.monotonic() - t0:.1f}s (images {t_img - t0:.1f}s); wrote {info_path()}")
    return info


def _wait_for_services(m: Material) -> str:
    """Wait until STUN, pebble, the ISP and every host (sshd and its engine) answer;
    returns pebble's root certificate (PEM), which signs what it issues."""
    wait("STUN", lambda: stun_probe(), 30)
    root_pem = wait("pebble", lambda: https_get(ACME_ROOT_URL, ACME_IP, m.ca_pem).decode(), 30)
    https_get(ACME_DIRECTORY, ACME_IP, m.ca_pem)
    wait("ISP (BIRD)", isp_ready, 30)
    for h in HOSTS.values():
        driver = wait(f"host {h.name} (ssh + docker)", lambda h=h: host_ready(h, m), 90, 1)
        if driver != "overlay2":
            log(f"note: host {h.name}'s engine uses storage driver {driver}")
    return root_pem


def _resolve_here(names: dict[str, str]) -> None:
    kept = [line for line in HOSTS_FILE.read_text().splitlines() if not line.endswith(HOSTS_MARK)]
    HOSTS_FILE.write_text("\n".join(kept + [f"{ip} {name} {HOSTS_MARK}" for name, ip in names.items()]) + "\n")


def down() -> None:
    """Remove every sim container, network and volume, and its names from /etc/hosts;
    keep images and the cache's keys."""
    t0 = time.monotonic()
    _resolve_here({})
    containers = ours("ps")
    # One at a time: removing many containers of one network at once can leak the
    # network's endpoint count in Docker 20.10 (moby/moby#43286; only a dockerd restart
    # clears it). Restart policies off first, so nothing comes back meanwhile.
    if containers:
        docker("update", "--restart", "no", *containers, check=False)
    for name in containers:
        remove_container(name)
    errors = [e for e in map(remove_network, ours("network")) if e]
    vols = ours("volume")
    if vols:
        docker("volume", "rm", "-f", *vols)
    info_path().unlink(missing_ok=True)
    left = leftovers()
    if left:
        raise SimError(f"down left {left}" + "".join(f"; {e}" for e in errors))
    log(f"down in {time.monotonic() - t0:.1f}s (removed {len(containers)} containers)")


def restart_host(name: str, seconds: float = 120) -> None:
    """Reboot a host (docker restart) and wait until its engine answers over SSH again."""
    h = HOSTS[name]
    docker("restart", h.container, timeout=120)
    m = material()
    wait(f"host {name} after restart", lambda: host_ready(h, m), seconds, 1)
