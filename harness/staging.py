"""The staging stack on the simulated Internet (harness/sim.py): Pulumi.staging.yaml with
the simulation's per-machine values filled in (host keys, the operator's key, the image
tag, the test CA's roots), and the upstream's MD5 password set as a Pulumi secret."""

from __future__ import annotations

from typing import Any, Optional

import yaml

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
    cfg["bgp4mesh:images"] = {**cfg["bgp4mesh:images"], "tag": info["image_tag"]}
    roots = info["acme_listener_ca_pem"].strip() + "\n" + info["acme_root_pem"].strip() + "\n"
    cfg["bgp4mesh:netmaker"] = {**cfg["bgp4mesh:netmaker"], "acme_ca_roots": roots}
    return cfg


def stack(name: str = "staging", info: Optional[dict[str, Any]] = None) -> Stack:
    info = info or sim.load_info()
    staging = Stack(name, config(info, name))
    staging.set_secret("bgp4mesh:upstreams[0].password", info["isp"]["md5_password"])
    return staging
