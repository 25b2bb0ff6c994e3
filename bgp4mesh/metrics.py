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

Scrape-target label: each border router's bird-exporter target carries `router=<name>`
(TARGET_ROUTER); mock ISPs' targets do not, so router rules never mistake an ISP's session
for the router's.
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
UPSTREAM_PREFIX_SEEN = Metric(
    "bgp4mesh_upstream_prefix_seen", ("upstream", "prefix"),
    "1 when the upstream holds a route for exactly the own prefix (a lab: the mock ISP's BIRD), else 0.",
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
    NETMAKER_MEMBER_CHECKIN, UPSTREAM_PREFIX_SEEN, AGENT_STATE, AGENT_ACTIVE_GATEWAY,
)

# ---- facts: recording rules rendered from the plan ------------------------------------------

FACT_BGP_SESSION = Metric("bgp4mesh:bgp_session", ("router", "name", "peer"), "A BGP session the router must hold (eBGP and iBGP): 1.")
FACT_IMPORT_LIMIT = Metric("bgp4mesh:bgp_import_limit", ("router", "name", "peer"), "An eBGP session's import limit per channel (upstreams[].max_prefixes).")
FACT_OWN_PREFIXES = Metric("bgp4mesh:own_prefixes", ("ip_version",), "How many own prefixes of the family every eBGP session exports.")
FACT_BFD_SESSION = Metric("bgp4mesh:bfd_session", ("router", "ip", "peer"), "A BFD session the router must hold, by neighbor address: 1.")
FACT_UPSTREAM_PREFIX = Metric("bgp4mesh:upstream_prefix", ("upstream", "prefix"), "An own prefix an observed upstream (a lab's mock ISP) must see: 1.")
FACT_MESH_MEMBER = Metric("bgp4mesh:mesh_member", ("member",), "A member (border router or node) Netmaker must list online: 1.")
FACT_RPKI_CACHE = Metric("bgp4mesh:rpki_cache", ("router", "name", "cache"), "An RTR cache protocol the router must hold up and filled: 1.")
FACTS = (FACT_BGP_SESSION, FACT_IMPORT_LIMIT, FACT_OWN_PREFIXES, FACT_BFD_SESSION, FACT_UPSTREAM_PREFIX, FACT_MESH_MEMBER, FACT_RPKI_CACHE)
