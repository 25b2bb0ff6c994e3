"""What the exporter decides, with no I/O: Netmaker's node and host lists -> one online and
one check-in series per member, mosquitto's $SYS lines -> broker series, and the Prometheus
text format. A source that could not be read publishes `bgp4mesh_control_scrape_ok 0` and
none of its series, so a dead API is a finding and never yesterday's numbers.

Metric names and help are bgp4mesh/metrics.py's (NETMAKER_MEMBER_*, BROKER_*, CONTROL_*);
tests/test_control_exporter.py holds the two copies equal (the image builds from its own
directory alone)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

LAST_CHECKIN_THRESHOLD = 600
"""Netmaker v1.6.0 models.LastCheckInThreshold (10 minutes): a connected node whose last
check-in is older is offline (logic/status.go getNodeCheckInStatus, CE's rule). netclient
checks in every 2 minutes (functions/mqpublish.go) and the server writes check-ins to its
database every 30 s (mq/mq.go CHECKIN_FLUSH_INTERVAL)."""


@dataclass(frozen=True)
class Metric:
    name: str
    labels: tuple[str, ...]
    help: str
    kind: str = "gauge"


_NODE = ("member", "network")
MEMBER_ONLINE = Metric(
    "bgp4mesh_netmaker_member_online", _NODE,
    "1 when Netmaker's API lists the member's node as connected and online, else 0.",
)
MEMBER_CHECKIN = Metric(
    "bgp4mesh_netmaker_member_last_checkin_timestamp_seconds", _NODE,
    "Unix time of the node's last check-in with Netmaker.",
)
SCRAPE_OK = Metric(
    "bgp4mesh_control_scrape_ok", ("source",),
    "1 when the control-plane exporter read the source (netmaker: its API, broker: $SYS) in this scrape; "
    "0 means the source's series are missing, not stale.",
)


@dataclass(frozen=True)
class BrokerTopic:
    topic: str
    metric: Metric


def _broker(topic: str, name: str, help: str, kind: str = "gauge") -> BrokerTopic:
    return BrokerTopic(f"$SYS/broker/{topic}", Metric(name, (), help, kind))


BROKER_TOPICS = (
    _broker("uptime", "bgp4mesh_broker_uptime_seconds", "Seconds since the broker started ($SYS/broker/uptime)."),
    _broker("clients/connected", "bgp4mesh_broker_clients_connected", "Clients connected at the broker's last $SYS update."),
    _broker("clients/disconnected", "bgp4mesh_broker_clients_disconnected", "Persistent sessions whose client is not connected."),
    _broker("subscriptions/count", "bgp4mesh_broker_subscriptions", "Subscriptions the broker holds."),
    _broker("retained messages/count", "bgp4mesh_broker_retained_messages", "Retained messages the broker holds."),
    _broker("messages/stored", "bgp4mesh_broker_stored_messages", "Messages in the broker's store (retained and queued)."),
    _broker("messages/received", "bgp4mesh_broker_messages_received_total", "MQTT packets of any type received since the broker started.", "counter"),
    _broker("messages/sent", "bgp4mesh_broker_messages_sent_total", "MQTT packets of any type sent since the broker started.", "counter"),
    _broker("publish/messages/received", "bgp4mesh_broker_publish_received_total", "PUBLISH messages received since the broker started.", "counter"),
    _broker("publish/messages/sent", "bgp4mesh_broker_publish_sent_total", "PUBLISH messages sent since the broker started.", "counter"),
    _broker("publish/messages/dropped", "bgp4mesh_broker_publish_dropped_total",
            "PUBLISH messages dropped (queue or inflight limits) since the broker started.", "counter"),
    _broker("bytes/received", "bgp4mesh_broker_received_bytes_total", "Bytes received since the broker started.", "counter"),
    _broker("bytes/sent", "bgp4mesh_broker_sent_bytes_total", "Bytes sent since the broker started.", "counter"),
)
"""The $SYS topics mosquitto 2.0 publishes retained (src/sys_tree.c), so a new subscriber
gets each at once. Counters restart at 0 with the broker."""

SOURCE_NETMAKER, SOURCE_BROKER = "netmaker", "broker"

Labels = tuple[tuple[str, str], ...]
Samples = list[tuple[Labels, float]]


@dataclass(frozen=True)
class Family:
    metric: Metric
    samples: tuple[tuple[Labels, float], ...]


# ---- Netmaker -----------------------------------------------------------------------------


def node_online(node: Mapping[str, Any], now: float) -> bool:
    """CE's rule on the listed fields: connected, not being deleted, checked in within the
    threshold by the server's clock. The API's stored `status` lags: the server rewrites it
    only every 5 minutes (logic/status.go MarkStaleNodesOffline)."""
    checkin = _checkin(node)
    return bool(node.get("connected")) and not node.get("pendingdelete") and checkin > 0 \
        and now - checkin <= LAST_CHECKIN_THRESHOLD


def _checkin(node: Mapping[str, Any]) -> int:
    """ApiNode.lastcheckin (unix seconds); Go's zero time (never) is negative: 0."""
    value = node.get("lastcheckin")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def member_nodes(hosts: Iterable[Mapping[str, Any]], nodes: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Member name -> its node in the network `nodes` lists: a member is the Netmaker host
    named after it (netclient join -o NAME), its node the host's non-static node, as
    NetmakerClient.find_node_for_host picks it. Two hosts of one name: the fresher node."""
    names = {h.get("id"): h.get("name") for h in hosts if h.get("id") and h.get("name")}
    found: dict[str, Mapping[str, Any]] = {}
    for node in nodes:
        name = names.get(node.get("hostid"))
        if name is None or node.get("is_static"):
            continue
        if name not in found or _checkin(node) > _checkin(found[name]):
            found[name] = node
    return found


def netmaker_families(hosts: Optional[list], nodes: Optional[list], network: str, now: float) -> list[Family]:
    """The members' series; with no lists (the API failed) only scrape_ok 0."""
    if hosts is None or nodes is None:
        return [_ok(SOURCE_NETMAKER, False)]
    members = sorted(member_nodes(hosts, nodes).items())
    online = tuple(((("member", m), ("network", network)), float(node_online(n, now))) for m, n in members)
    checkin = tuple(((("member", m), ("network", network)), float(_checkin(n))) for m, n in members)
    return [Family(MEMBER_ONLINE, online), Family(MEMBER_CHECKIN, checkin), _ok(SOURCE_NETMAKER, True)]


# ---- the broker ---------------------------------------------------------------------------

_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)(?:\s+seconds)?\s*$")


def parse_sys(text: str) -> dict[str, float]:
    """`topic<TAB>payload` lines (mosquitto_sub -F '%t\\t%p') -> topic -> number; a payload
    that is no number ("mosquitto version 2.0.21") is left out."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        topic, tab, payload = line.partition("\t")
        found = _NUMBER.match(payload) if tab else None
        if found:
            values[topic] = float(found.group(1))
    return values


def broker_families(values: Optional[Mapping[str, float]]) -> list[Family]:
    """One series per $SYS topic that answered; ok only when every one did."""
    if values is None:
        return [_ok(SOURCE_BROKER, False)]
    families = [Family(t.metric, (((), values[t.topic]),)) for t in BROKER_TOPICS if t.topic in values]
    return families + [_ok(SOURCE_BROKER, len(families) == len(BROKER_TOPICS))]


def _ok(source: str, ok: bool) -> Family:
    return Family(SCRAPE_OK, (((("source", source),), float(ok)),))


# ---- the text format ----------------------------------------------------------------------


def exposition(families: Iterable[Family]) -> str:
    """Prometheus text format 0.0.4: families of one name merged (scrape_ok comes from
    each source), HELP and TYPE once, samples sorted."""
    merged: dict[str, tuple[Metric, list]] = {}
    for family in families:
        merged.setdefault(family.metric.name, (family.metric, []))[1].extend(family.samples)
    lines = []
    for name in sorted(merged):
        metric, samples = merged[name]
        lines += [f"# HELP {name} {_escape_help(metric.help)}", f"# TYPE {name} {metric.kind}"]
        lines += [f"{name}{_labels(labels)} {_value(value)}" for labels, value in sorted(samples)]
    return "\n".join(lines) + "\n" if lines else ""


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels) + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() else repr(value)
