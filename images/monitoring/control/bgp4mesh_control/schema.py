"""The contract between bgp4mesh and the control-plane exporter: the JSON config bgp4mesh
uploads (secret: it holds Netmaker's master key and the broker's monitoring password). One
definition for both sides: the image runs this file, and bgp4mesh loads it by path
(bgp4mesh/control_exporter.py). Stdlib only."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

CONFIG_PATH = "/etc/bgp4mesh/control-exporter.json"
"""Uploaded by bgp4mesh; its presence makes the monitoring image start the exporter."""
LISTEN = "127.0.0.1:9587"
"""Beside Prometheus, on loopback (bgp4mesh.monitoring.CONTROL_EXPORTER_PORT)."""


@dataclass(frozen=True)
class NetmakerSource:
    """Where the node and host lists come from."""

    api_url: str
    """The API as members reach it (the TLS front), e.g. https://172.31.0.3."""
    network: str
    """The mesh's Netmaker network (the `network` label)."""
    master_key: str = field(repr=False)
    """Sent as `Authorization: Bearer`; never logged."""
    ca_pem: str = ""
    """The CA that signed the front's certificate; empty: the system's roots."""


@dataclass(frozen=True)
class BrokerSource:
    """The broker's clients' listener, as the monitoring user (reads $SYS/# only)."""

    host: str
    port: int
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class ControlConfig:
    netmaker: NetmakerSource
    broker: Optional[BrokerSource] = None
    listen: str = LISTEN
    timeout: int = 3
    """Seconds each source may take per scrape (the scrape interval can be 5 s)."""

    def __post_init__(self) -> None:
        if not self.netmaker.api_url.startswith(("https://", "http://")):
            raise ValueError(f"control exporter config: netmaker.api_url must be an http(s) URL, not {self.netmaker.api_url!r}")
        if self.timeout < 1:
            raise ValueError("control exporter config: timeout must be at least 1 second")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @staticmethod
    def from_json(text: str) -> "ControlConfig":
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("control exporter config: must be an object")
        broker = raw.get("broker")
        return _typed(ControlConfig, {
            **raw,
            "netmaker": _typed(NetmakerSource, raw.get("netmaker"), "netmaker"),
            "broker": _typed(BrokerSource, broker, "broker") if broker else None,
        }, "config")


def _typed(cls, raw: Any, where: str):
    """`cls` from `raw`, refusing unknown keys and scalars of the wrong type by key path."""
    if not isinstance(raw, dict):
        raise ValueError(f"control exporter config: {where} must be an object")
    known = cls.__dataclass_fields__
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ValueError(f"control exporter config: {where} has unknown keys {unknown}")
    for name, value in raw.items():
        kind = known[name].type
        if kind in ("int", "str") and type(value).__name__ != kind:
            raise ValueError(f"control exporter config: {where}.{name} must be {kind}, not {type(value).__name__}")
    return cls(**raw)
