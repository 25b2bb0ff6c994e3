"""The exporter's decisions, without a system: `wg show all dump` and the HA agent's state
file in, Prometheus text exposition (format 0.0.4) out. Names and labels are
bgp4mesh/metrics.py's BGP4MESH_EXPORTER (tests/test_member_exporter.py holds them equal),
less `member`: the scrape target carries it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from bgp4mesh_agent.schema import STATE_FIELDS, decode_state

HANDSHAKE = "bgp4mesh_wireguard_peer_latest_handshake_timestamp_seconds"
RECEIVED = "bgp4mesh_wireguard_peer_receive_bytes_total"
SENT = "bgp4mesh_wireguard_peer_transmit_bytes_total"
AGENT_STATE = "bgp4mesh_agent_state"
ACTIVE_GATEWAY = "bgp4mesh_agent_active_gateway"

STALE_AFTER_S = 10
"""The agent stamps its state every round (200 ms): a state older than this is a dead or
hung agent's, and is not exported, so its absence is seen instead of old values."""
ANNOUNCE_NORMAL = "normal"
"""The state's `announce` (normal | drained) as yes/no: 1 while the router announces normally."""

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Family:
    name: str
    kind: str
    help: str
    samples: tuple[tuple[Labels, int], ...]


@dataclass(frozen=True)
class Peer:
    interface: str
    key: str
    handshake: int
    """Unix time of the latest handshake, 0 when none."""
    received: int
    sent: int


def parse_dump(text: str) -> list[Peer]:
    """`wg show all dump`: an interface's line has 5 tab-separated fields (its private key
    among them, never kept), each of its peers' 9."""
    peers = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) == 9:
            interface, key, _psk, _endpoint, _ips, handshake, received, sent, _keepalive = fields
            peers.append(Peer(interface, key, int(handshake), int(received), int(sent)))
        elif len(fields) != 5:
            raise ValueError(f"wg show all dump: a line of {len(fields)} fields")
    return peers


def wireguard(peers: list[Peer]) -> list[Family]:
    def per_peer(value) -> tuple[tuple[Labels, int], ...]:
        return tuple(((("interface", p.interface), ("peer", p.key)), value(p)) for p in peers)

    return [
        Family(HANDSHAKE, "gauge", "Unix time of the peer's latest WireGuard handshake, 0 when none.", per_peer(lambda p: p.handshake)),
        Family(RECEIVED, "counter", "Bytes received from the WireGuard peer.", per_peer(lambda p: p.received)),
        Family(SENT, "counter", "Bytes sent to the WireGuard peer.", per_peer(lambda p: p.sent)),
    ]


def agent(path: str, text: Optional[str], stamp: Optional[str], now: float) -> list[Family]:
    """The agent state file at `path` (schema.ROUTER_STATE or NODE_STATE; `text` None when
    the member has none) as its yes/no fields and its active gateway; nothing when its stamp
    (PATH.at: the Unix time of the agent's last round) is missing or stale."""
    state, active = [], []
    fresh = stamp is not None and stamp.strip().isdigit() and now - int(stamp) <= STALE_AFTER_S
    if text is not None and fresh:
        values = decode_state(path, text)
        for field in STATE_FIELDS[path]:
            value = values[field]
            if field == "active":
                active += [((("gateway", value),), 1)] if value else []
            elif field == "announce":
                state.append(((("field", field),), int(value == ANNOUNCE_NORMAL)))
            else:
                state.append(((("field", field),), int(value)))
    return [
        Family(AGENT_STATE, "gauge", "A yes/no field of the HA agent's state (announce: 1 when normal, 0 when drained).", tuple(state)),
        Family(ACTIVE_GATEWAY, "gauge", "1 for the gateway the HA agent has active.", tuple(active)),
    ]


def exposition(families: list[Family]) -> str:
    """Prometheus text format 0.0.4."""
    lines = []
    for f in families:
        lines += [f"# HELP {f.name} {f.help}", f"# TYPE {f.name} {f.kind}"]
        for labels, value in f.samples:
            shown = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{f.name}{{{shown}}} {value}")
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
