"""The contract between bgp4mesh and the looking glass: the JSON config bgp4mesh uploads.
One definition for both sides: the image runs this file, and bgp4mesh loads it by path
(bgp4mesh/looking_glass.py). Stdlib only."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import MISSING, asdict, dataclass
from typing import Any

CONFIG_PATH = "/etc/bgp4mesh/looking-glass.json"
"""Uploaded by bgp4mesh when the stack has `looking_glass`; its presence makes the image
start the service."""


@dataclass(frozen=True)
class Config:
    port: int
    allow: tuple[str, ...]
    """Source prefixes that may query; every other client is refused (the router's edge
    firewall drops them before they get here)."""
    listen: str = "0.0.0.0"
    """Any of the router's addresses: the same file serves every router."""
    socket: str = "/run/bird/bird.ctl"
    """BIRD's control socket (the image's entrypoint starts BIRD on it)."""
    birdc: str = "/usr/sbin/birdc"
    timeout_ms: int = 5000
    """A query that takes longer is ended (504)."""
    max_output: int = 256 * 1024
    """Bytes of birdc's output served at most; the rest is cut off and said so."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:  # 0: any free port (tests)
            raise ValueError(f"looking glass config: port {self.port} is not a TCP port")
        if not self.allow:
            raise ValueError("looking glass config: allow lists no source prefix")
        for prefix in self.allow:
            try:
                ipaddress.ip_network(prefix)
            except ValueError as e:
                raise ValueError(f"looking glass config: allow: {e}") from None
        if self.timeout_ms <= 0 or self.max_output <= 0:
            raise ValueError("looking glass config: timeout_ms and max_output must be positive")

    @property
    def networks(self) -> tuple:
        return tuple(ipaddress.ip_network(p) for p in self.allow)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @staticmethod
    def from_json(text: str) -> "Config":
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("looking glass config: must be an object")
        return Config(**_typed(raw))


def _typed(raw: dict[str, Any]) -> dict[str, Any]:
    """`raw`, refusing unknown keys and values of the wrong type by key."""
    known = Config.__dataclass_fields__
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ValueError(f"looking glass config: unknown keys {unknown}")
    missing = sorted(k for k, f in known.items() if k not in raw and f.default is MISSING)
    if missing:
        raise ValueError(f"looking glass config: missing keys {missing}")
    values = {}
    for name, value in raw.items():
        kind = known[name].type
        if kind == "tuple[str, ...]":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"looking glass config: {name} must be a list of strings")
            value = tuple(value)
        elif type(value).__name__ != kind:
            raise ValueError(f"looking glass config: {name} must be {kind}, not {value!r}")
        values[name] = value
    return values
