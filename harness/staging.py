"""The staging stack on the simulated Internet (harness/sim): Pulumi.staging.yaml with
the simulation's per-machine values filled in (host keys, the operator's key, the image
tag, every pulled image pinned by the digest the simulated registry serves, the test CA's
roots), and the upstream's MD5 password set as a Pulumi secret."""

from __future__ import annotations

from typing import Any, Optional

import yaml

from bgp4mesh.config import Images, Netmaker, UpstreamImages
from bgp4mesh.stack import stack_file
from harness import sim
from harness.engine import Stack


def config(info: dict[str, Any], name: str = "staging") -> dict[str, Any]:
    cfg = yaml.safe_load(stack_file(name).read_text())["config"]
    hosts = []
    for host in cfg["bgp4mesh:hosts"]:
        sim_host = info["hosts"][host["name"]]
        hosts.append({**host, "ssh": {**host["ssh"], "host_key": sim_host["host_key"], "private_key_file": info["operator_key"]}})
    cfg["bgp4mesh:hosts"] = hosts
    images = {**cfg["bgp4mesh:images"], "tag": info["image_tag"]}
    ours = Images.model_validate(images)
    cfg["bgp4mesh:images"] = {**images, "digests": {kind: _digest(ours.reference(kind), info) for kind in sim.PUBLISHED}}
    nm = Netmaker.model_validate(cfg["bgp4mesh:netmaker"])
    upstream = {kind: nm.pull_image(kind) for kind in UpstreamImages.model_fields}
    roots = info["acme_listener_ca_pem"].strip() + "\n" + info["acme_root_pem"].strip() + "\n"
    cfg["bgp4mesh:netmaker"] = {
        **cfg["bgp4mesh:netmaker"],
        "acme_ca_roots": roots,
        "upstream_images": {kind: f"{ref}@{_digest(ref, info)}" for kind, ref in upstream.items()},
    }
    return cfg


def _digest(ref: str, info: dict[str, Any]) -> str:
    """The manifest digest the simulated registry serves for `ref` (harness/sim/registry.py read it):
    staging pulls nothing by tag alone, as prod should not."""
    digests = info.get("digests")
    if digests is None:
        raise sim.SimError(f"{sim.info_path()} has no image digests (written by an older harness): run ./scripts/sim up")
    if ref not in digests:
        raise sim.SimError(f"staging pulls {ref}, which the simulation does not publish (harness/sim/images.py UPSTREAM, PUBLISHED)")
    return digests[ref]


def stack(name: str = "staging", info: Optional[dict[str, Any]] = None, cfg: Optional[dict[str, Any]] = None) -> Stack:
    """Stack `name` on the simulation: `cfg` (default: its stack file's, filled in from `info`)
    with the session's password set as a secret."""
    info = info or sim.load_info()
    cfg = cfg if cfg is not None else config(info, name)
    staging = Stack(name, cfg)
    for i in range(len(cfg["bgp4mesh:upstreams"])):  # every session is with the sim ISP
        staging.set_secret(f"bgp4mesh:upstreams[{i}].password", info["isp"]["md5_password"])
    return staging
