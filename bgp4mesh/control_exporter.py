"""The control-plane exporter's config as bgp4mesh writes it (uploaded by the monitoring
component, secret: Netmaker's master key and the broker's monitoring password are in it).
The schema has one definition, the image's (images/monitoring/control/bgp4mesh_control/
schema.py, stdlib only), loaded here by path: the image builds from its own directory alone.

The exporter reaches Netmaker's API at the TLS front (NetmakerServer.api_url: https://<front's
underlay address> in a lab, https://<domain> on a real host, verified against
NetmakerServer.ca_certificate) and the broker at MonitoringPlan.broker: a lab's clients'
listener (tcp://broker.<domain>:1883, a Docker alias on the underlay), or on a real host the
broker's plain clients' listener published on the control host's loopback (the exporter runs
with that host's network), as the broker's monitoring user (NetmakerServer.broker_monitor),
which may read $SYS/# and nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

import pulumi

from .monitoring import CONTROL_EXPORTER_PORT
from .image_schema import load_image_schema

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "images" / "monitoring" / "control" / "bgp4mesh_control" / "schema.py"
schema = load_image_schema("bgp4mesh_control_schema", SCHEMA_FILE)
CONFIG_PATH = schema.CONFIG_PATH
LISTEN = f"127.0.0.1:{CONTROL_EXPORTER_PORT}"


def broker_address(endpoint: str) -> tuple[str, int]:
    """(host, port) of a plain-MQTT broker URL (tcp:// or mqtt://, port 1883 if none). An
    ACME deployment hands clients wss:// only, which mosquitto_sub does not speak: refused."""
    url = urlsplit(endpoint)
    if url.scheme not in ("tcp", "mqtt") or not url.hostname:
        raise ValueError(f"control exporter: the broker must be reachable over plain MQTT (tcp://host:port), not {endpoint!r}")
    return url.hostname, url.port or 1883


def control_exporter_config(*, api_url: str, ca_pem: str, master_key: str, network: str, broker_endpoint: str,
                            broker_monitor: Optional[Mapping[str, Any]]) -> str:
    """The config file's text; without a monitoring user the exporter reads Netmaker only."""
    broker = None
    if broker_monitor:
        host, port = broker_address(broker_endpoint)
        broker = schema.BrokerSource(host=host, port=port, username=broker_monitor["username"], password=broker_monitor["password"])
    return schema.ControlConfig(
        netmaker=schema.NetmakerSource(api_url=api_url, network=network, master_key=master_key, ca_pem=ca_pem or ""),
        broker=broker,
        listen=LISTEN,
    ).to_json()


def control_exporter_files(*, api_url: pulumi.Input[str], ca_certificate: pulumi.Input[str], master_key: pulumi.Input[str],
                           network: pulumi.Input[str], broker_endpoint: pulumi.Input[str],
                           broker_monitor: Optional[pulumi.Input[dict]]) -> dict[str, pulumi.Output[str]]:
    """Path in the monitoring container -> content, every one secret (upload them 0600):
    the exporter's config, which also carries the CA (there is no separate CA file)."""
    text = pulumi.Output.all(api_url, ca_certificate, master_key, network, broker_endpoint, broker_monitor).apply(
        lambda v: control_exporter_config(api_url=v[0], ca_pem=v[1], master_key=v[2], network=v[3],
                                          broker_endpoint=v[4], broker_monitor=v[5])
    )
    return {CONFIG_PATH: pulumi.Output.secret(text)}
