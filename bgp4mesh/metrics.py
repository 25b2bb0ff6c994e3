"""The metric contract: every series the shipped alert rules read, named once.

Three sources, one table each, so the rules (alerts.py and its template), the future
bgp4mesh exporter and its scrape config share one definition instead of three spellings:

- BIRD_EXPORTER: what Debian's prometheus-bird-exporter 1.4.x publishes with `-bird.v2`
  (default `-format.new`), as its source says (metrics/generic_exporter.go,
  metrics/default_label_strategy.go, metrics/bfd_exporter.go at tag 1.4.1). BIRD 2 gives one
  series per protocol channel (label `ip_version`); an RPKI protocol is one series whose
  import count is the ROAs of its last roa channel.
- BGP4MESH_EXPORTER: what no standard exporter provides (Netmaker CE has no metrics): the
  bgp4mesh exporter publishes these, per mesh member.
- FACTS: what the plan decides (sessions, import limits, own prefixes, members, caches),
  published as recording rules by the rendered rule file, so a rule compares what is
  measured with what the stack should have, and a missing series is a finding, not silence.

Scrape-target labels: each border router's bird-exporter target carries `router=<name>`
(TARGET_ROUTER), a lab's mock ISP's `upstream=<name>` (TARGET_UPSTREAM), so router rules
never mistake an ISP's session for the router's, and the upstream-view rule reads the
ISP's own BIRD: what its session with our router imported is what the upstream sees.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    labels: tuple[str, ...]
    help: str
    kind: str = "gauge"


TARGET_ROUTER = "router"
"""The target label the scrape config sets on a border router's bird-exporter: its name."""
TARGET_UPSTREAM = "upstream"
"""The target label the scrape config sets on a lab's mock ISP's bird-exporter: the upstream's name."""

# ---- prometheus-bird-exporter 1.4.x, -bird.v2 -------------------------------------------

_BIRD_LABELS = ("name", "proto", "ip_version", "import_filter", "export_filter")

BIRD_PROTOCOL_UP = Metric(
    "bird_protocol_up", _BIRD_LABELS + ("state",),
    "1 when BIRD shows the protocol `up`; `state` is BIRD's info column (Established, Active...).",
)
BIRD_IMPORT_COUNT = Metric("bird_protocol_prefix_import_count", _BIRD_LABELS, "Routes the channel imported (after the import filter).")
BIRD_EXPORT_COUNT = Metric("bird_protocol_prefix_export_count", _BIRD_LABELS, "Routes the channel exports to the peer.")
BIRD_BFD_SESSION_UP = Metric(
    "bird_bfd_session_up", ("name", "ip", "interface"),
    "1 when the BFD session is Up. `name` is the BFD protocol, `ip` the neighbor; 1.4.1 lists only Up and Down sessions.",
)
BIRD_EXPORTER = (BIRD_PROTOCOL_UP, BIRD_IMPORT_COUNT, BIRD_EXPORT_COUNT, BIRD_BFD_SESSION_UP)

# ---- the bgp4mesh exporter ------------------------------------------------------------------

_WG_PEER = ("member", "interface", "peer")
_NETMAKER_NODE = ("member", "network")

WG_LATEST_HANDSHAKE = Metric(
    "bgp4mesh_wireguard_peer_latest_handshake_timestamp_seconds", _WG_PEER,
    "Unix time of the peer's latest WireGuard handshake (`wg show all dump`), 0 when none; "
    "`member` is the member whose interface it is, `peer` the peer's public key.",
)
WG_RECEIVE_BYTES = Metric("bgp4mesh_wireguard_peer_receive_bytes_total", _WG_PEER, "Bytes received from the peer.", "counter")
WG_TRANSMIT_BYTES = Metric("bgp4mesh_wireguard_peer_transmit_bytes_total", _WG_PEER, "Bytes sent to the peer.", "counter")
NETMAKER_MEMBER_ONLINE = Metric(
    "bgp4mesh_netmaker_member_online", _NETMAKER_NODE,
    "1 when Netmaker's API lists the member's node as connected and online, else 0.",
)
NETMAKER_MEMBER_CHECKIN = Metric(
    "bgp4mesh_netmaker_member_last_checkin_timestamp_seconds", _NETMAKER_NODE,
    "Unix time of the node's last check-in with Netmaker.",
)
AGENT_STATE = Metric(
    "bgp4mesh_agent_state", ("member", "field"),
    "A yes/no field of the HA agent's state file (a router's maintenance, mesh, upstream, port, available, "
    "announce: images/netclient/agent/bgp4mesh_agent/schema.py ROUTER_FIELDS) as 1/0.",
)
AGENT_ACTIVE_GATEWAY = Metric(
    "bgp4mesh_agent_active_gateway", ("member", "gateway"),
    "1 for the gateway the member's agent has active (the state file's `active`).",
)
BGP4MESH_EXPORTER = (
    WG_LATEST_HANDSHAKE, WG_RECEIVE_BYTES, WG_TRANSMIT_BYTES, NETMAKER_MEMBER_ONLINE,
    NETMAKER_MEMBER_CHECKIN, AGENT_STATE, AGENT_ACTIVE_GATEWAY,
)

# ---- facts: recording rules rendered from the plan ------------------------------------------

FACT_BGP_SESSION = Metric("bgp4mesh:bgp_session", ("router", "name", "peer"), "A BGP session the router must hold (eBGP and iBGP): 1.")
FACT_IMPORT_LIMIT = Metric("bgp4mesh:bgp_import_limit", ("router", "name", "peer"), "An eBGP session's import limit per channel (upstreams[].max_prefixes).")
FACT_OWN_PREFIXES = Metric("bgp4mesh:own_prefixes", ("ip_version",), "How many own prefixes of the family every eBGP session exports.")
FACT_BFD_SESSION = Metric("bgp4mesh:bfd_session", ("router", "ip", "peer"), "A BFD session the router must hold, by neighbor address: 1.")
FACT_UPSTREAM_OWN_PREFIXES = Metric(
    "bgp4mesh:upstream_own_prefixes", (TARGET_UPSTREAM, "name", "ip_version"),
    "How many own prefixes of the family an observed upstream (a lab's mock ISP) must import over its "
    "session with our router; `name` is that session's BIRD protocol on the ISP (plan: Session.peer).",
)
FACT_MESH_MEMBER = Metric("bgp4mesh:mesh_member", ("member",), "A member (border router or node) Netmaker must list online: 1.")
FACT_RPKI_CACHE = Metric("bgp4mesh:rpki_cache", ("router", "name", "cache"), "An RTR cache protocol the router must hold up and filled: 1.")
FACTS = (FACT_BGP_SESSION, FACT_IMPORT_LIMIT, FACT_OWN_PREFIXES, FACT_BFD_SESSION, FACT_UPSTREAM_OWN_PREFIXES, FACT_MESH_MEMBER, FACT_RPKI_CACHE)

# ---- the control-plane exporter: the broker's $SYS and the exporter's own health ------------
# Published by images/monitoring/control (bgp4mesh_control/core.py holds the same names; a test
# keeps them equal), beside NETMAKER_MEMBER_* above. mosquitto 2.0 publishes each $SYS topic
# retained every sys_interval (src/sys_tree.c); the `_total` ones count since the broker started.


def _broker(name: str, help: str, kind: str = "gauge") -> Metric:
    return Metric(name, (), help, kind)


BROKER_UPTIME = _broker("bgp4mesh_broker_uptime_seconds", "Seconds since the broker started ($SYS/broker/uptime).")
BROKER_CLIENTS_CONNECTED = _broker("bgp4mesh_broker_clients_connected", "Clients connected at the broker's last $SYS update.")
BROKER_CLIENTS_DISCONNECTED = _broker("bgp4mesh_broker_clients_disconnected", "Persistent sessions whose client is not connected.")
BROKER_SUBSCRIPTIONS = _broker("bgp4mesh_broker_subscriptions", "Subscriptions the broker holds.")
BROKER_RETAINED = _broker("bgp4mesh_broker_retained_messages", "Retained messages the broker holds.")
BROKER_STORED = _broker("bgp4mesh_broker_stored_messages", "Messages in the broker's store (retained and queued).")
BROKER_MESSAGES_RECEIVED = _broker("bgp4mesh_broker_messages_received_total", "MQTT packets of any type received since the broker started.", "counter")
BROKER_MESSAGES_SENT = _broker("bgp4mesh_broker_messages_sent_total", "MQTT packets of any type sent since the broker started.", "counter")
BROKER_PUBLISH_RECEIVED = _broker("bgp4mesh_broker_publish_received_total", "PUBLISH messages received since the broker started.", "counter")
BROKER_PUBLISH_SENT = _broker("bgp4mesh_broker_publish_sent_total", "PUBLISH messages sent since the broker started.", "counter")
BROKER_PUBLISH_DROPPED = _broker(
    "bgp4mesh_broker_publish_dropped_total", "PUBLISH messages dropped (queue or inflight limits) since the broker started.", "counter",
)
BROKER_BYTES_RECEIVED = _broker("bgp4mesh_broker_received_bytes_total", "Bytes received since the broker started.", "counter")
BROKER_BYTES_SENT = _broker("bgp4mesh_broker_sent_bytes_total", "Bytes sent since the broker started.", "counter")
BROKER = (
    BROKER_UPTIME, BROKER_CLIENTS_CONNECTED, BROKER_CLIENTS_DISCONNECTED, BROKER_SUBSCRIPTIONS, BROKER_RETAINED,
    BROKER_STORED, BROKER_MESSAGES_RECEIVED, BROKER_MESSAGES_SENT, BROKER_PUBLISH_RECEIVED, BROKER_PUBLISH_SENT,
    BROKER_PUBLISH_DROPPED, BROKER_BYTES_RECEIVED, BROKER_BYTES_SENT,
)
CONTROL_SCRAPE_OK = Metric(
    "bgp4mesh_control_scrape_ok", ("source",),
    "1 when the control-plane exporter read the source (netmaker: its API, broker: $SYS) in this scrape; "
    "0 means the source's series are missing, not stale.",
)
CONTROL_EXPORTER = (NETMAKER_MEMBER_ONLINE, NETMAKER_MEMBER_CHECKIN, *BROKER, CONTROL_SCRAPE_OK)
"""Everything the control-plane exporter publishes."""
