"""SimInfo: what `up` writes to staging.json (0600) and the staging stack's config is
filled from: how to reach each host, the registry and the digests it serves, the ACME CA,
STUN, DNS and the ISP (its MD5 password included: never printed)."""

from __future__ import annotations

import json
from pathlib import Path

from .base import info_path
from .images import PUBLISHED, UPSTREAM
from .material import Material
from .topology import (
    ACME_DIRECTORY, EDGE_ASN, EDGE_PREFIX, EDGE_PREFIX6, EDGE_UPLINK_ADDRESS, EDGE_UPLINK_ADDRESS6, HOSTS, ISP_ANNOUNCES,
    ISP_ANNOUNCES6, ISP_ASN, ISP_IP, ISP_IP6, ISP_TEST_ADDRESS, ISP_TEST_ADDRESS6, NAT_WAN, NETS, REGISTRY, RESOLVER, STUN, ZONE, Host,
)


def sim_info(m: Material, tag: str, root_pem: str, root_path: Path, published: dict) -> dict:
    """SimInfo: what the staging stack's config is filled from (staging.json, 0600)."""
    return {
        "operator_key": str(m.operator_key),
        "operator_public_key": m.operator_pub,
        "known_hosts": str(m.known_hosts),
        "ssh_config": str(m.dir / "ssh_config"),
        "ssh_path": str(m.dir / "bin"),  # PATH=$ssh_path:$PATH DOCKER_HOST=ssh://root@203.0.113.20 docker ps
        "hosts": {h.name: _host_info(h, m) for h in HOSTS.values()},
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
            "announces": [ISP_ANNOUNCES, "0.0.0.0/0", ISP_ANNOUNCES6, "::/0"],
            "accepts": [EDGE_PREFIX, EDGE_PREFIX6],
            "neighbor": EDGE_UPLINK_ADDRESS,
            "address6": ISP_IP6,
            "test_address6": ISP_TEST_ADDRESS6,
            "neighbor6": EDGE_UPLINK_ADDRESS6,
            "neighbor_asn": EDGE_ASN,
            "md5_password_file": str(m.md5_path),
            "md5_password": m.md5,  # secret: this file is 0600; never printed
        },
    }


def load_info() -> dict:
    return json.loads(info_path().read_text())


def _host_info(h: Host, m: Material) -> dict:
    """How the operator reaches host `h`, and what the staging stack needs of its place."""
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
    return e
