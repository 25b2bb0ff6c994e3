"""The looking glass's config as bgp4mesh writes it: the same file for every border router
(the service listens on all of a router's addresses; its edge firewall and the service both
let only `looking_glass.allow` in). The schema has one definition, the image's
(images/netclient/looking_glass/bgp4mesh_lg/schema.py, stdlib only), loaded here by path: the
image builds from its own directory alone."""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Optional

from .image_schema import load_image_schema

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "images" / "netclient" / "looking_glass" / "bgp4mesh_lg" / "schema.py"
schema = load_image_schema("bgp4mesh_lg_schema", SCHEMA_FILE)
LookingGlassConfig = schema.Config
CONFIG_PATH = schema.CONFIG_PATH
"""Where the routers' containers hold it; its presence starts the service."""
LG_DIR, LG_FILE = posixpath.split(CONFIG_PATH)


def looking_glass_config(plan) -> Optional[str]:
    """The JSON text every border router of `plan` serves from; None without `looking_glass`
    (the default: no router serves one)."""
    lg = plan.model.looking_glass
    if lg is None:
        return None
    return LookingGlassConfig(port=lg.port, allow=tuple(str(p) for p in lg.allow)).to_json()
