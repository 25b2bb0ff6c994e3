"""What every part of the simulation shares: the names it gives Docker objects, where it
keeps its cache, how it reports, waits and fails."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable, Optional

from bgp4mesh.docker_cli import docker
from bgp4mesh.waiting import WaitTimeout, until

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "bgp4mesh-sim-"
LABEL_KEY = "bgp4mesh.sim"
LABEL = f"{LABEL_KEY}=1"
SPEC_LABEL = "bgp4mesh.sim.spec"
CONTEXT_LABEL = "bgp4mesh.sim.context"


class SimError(RuntimeError):
    """A step of the simulation failed; the message says which and why."""


def log(msg: str) -> None:
    print(f"sim: {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    root = Path(os.environ.get("BGP4MESH_CACHE") or Path.home() / ".cache" / "bgp4mesh")
    return root / "sim"


def info_path() -> Path:
    return cache_dir() / "staging.json"


def write_private(path: Path, data: bytes) -> None:
    """`data` at `path`, readable by its owner alone (0600 in a 0700 folder), replaced at once."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def wait(what: str, check: Callable, seconds: float, every: float = 0.5):
    """`check`'s first truthy result within `seconds`, else SimError naming `what`."""
    try:
        return until(check, seconds, every)
    except WaitTimeout as exc:
        raise SimError(f"{what} not ready within {seconds:.0f}s: {exc}") from None


def inspect(kind: str, name: str) -> Optional[dict]:
    """`docker KIND inspect NAME`, or None when there is no such object."""
    out = docker(kind, "inspect", name, check=False)
    try:
        return json.loads(out)[0] if out else None
    except (ValueError, IndexError):
        return None


def image_id(ref: str) -> Optional[str]:
    return docker("image", "inspect", "-f", "{{.Id}}", ref, check=False) or None
