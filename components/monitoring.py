"""Monitoring: Prometheus and Alertmanager watching a stack, and the control-plane exporter
beside them (images/monitoring), in one container: on the lab's networks, or with its
host's network on a real host (its scrapes then come from the host's public address, and
Prometheus serves on the host's loopback: `ssh -L 9090:127.0.0.1:9090 <host>`)."""

from __future__ import annotations

import hashlib
import json
import posixpath
import shlex
from typing import TYPE_CHECKING, NotRequired, Optional, TypedDict

import pulumi
import pulumi_docker as docker

from bgp4mesh.prometheus_config import CONFIG_DIR, CONSOLES_DIR

from .docker_parts import docker_name, fixed_name, labels, uploads

if TYPE_CHECKING:
    from .hosts import HostContext

class MonitoringLink(TypedDict):
    network: pulumi.Input[str]
    """Docker network of a mock ISP's peering link."""
    address: str
    """Prometheus's address there (the plan's MonitoringPlan.links), from which it scrapes the ISP's BIRD."""


class MonitoringArgs(TypedDict):
    stack: str
    """The stack: Docker names are bgp4mesh-<stack>-<name>, labels bgp4mesh.stack=<stack>."""
    image: pulumi.Input[str]
    """The monitoring image (bgp4mesh/monitoring)."""
    underlay: Optional[pulumi.Input[str]]
    """Docker network of the lab underlay, where every member's exporters listen; None on a
    real host: the container shares the host's network (MonitoringPlan.host_network)."""
    address: str
    """Its address on the underlay (or its host's endpoint): the one source each member's
    firewalls let reach the exporter ports (MonitoringPlan.address)."""
    links: list[MonitoringLink]
    """Each mock ISP's link, where that ISP's prometheus-bird-exporter listens (a lab's)."""
    web: str
    """ip:port Prometheus serves on (MonitoringPlan.web): the image's PROMETHEUS_LISTEN."""
    url: str
    """How an operator dials it (MonitoringPlan.url)."""
    files: dict[str, str]
    """/etc/prometheus files the container is created with: prometheus.yml, alertmanager.yml
    (bgp4mesh.prometheus_config.monitoring_files)."""
    live_files: dict[str, str]
    """Absolute path -> content of what changes with the members (the targets and the rules,
    bgp4mesh.prometheus_config.live_files): written into the running container, so a new
    member keeps Prometheus and its samples."""
    host: "HostContext"
    """The host it runs on (its engine; the update runs `docker exec` there)."""
    consoles: dict[str, str]
    """Console templates (file name -> text), served by Prometheus at /consoles/<name>."""
    secret_files: NotRequired[dict[str, pulumi.Input[str]]]
    """Absolute path -> content, uploaded secret and readable by root alone: the
    control-plane exporter's config (bgp4mesh.control_exporter, with Netmaker's master key
    and the broker's monitoring password), which makes the image start the exporter."""


class Monitoring(pulumi.ComponentResource):
    """Prometheus (its API and console pages on the underlay address), Alertmanager holding
    the alerts on loopback, and the control-plane exporter. The configs come in as uploads
    (a change replaces the container); the targets and rules, which change with every
    member, are written into it by `monitoring-update` and reloaded in place."""

    container_name: pulumi.Output[str]
    prometheus_url: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bgp4mesh:index:Monitoring", name, None, opts)
        stack = args["stack"]
        files = uploads(args["files"], CONFIG_DIR) + uploads(args["consoles"], CONSOLES_DIR)
        for path, content in sorted(args.get("secret_files", {}).items()):
            files += uploads({posixpath.basename(path): content}, posixpath.dirname(path), secret=True)
        container = docker.Container(
            f"{name}-prometheus",
            name=docker_name(stack, name),
            hostname=name,
            image=args["image"],
            envs=[f"PROMETHEUS_LISTEN={args['web']}"],
            uploads=files,
            restart="unless-stopped",
            labels=[docker.ContainerLabelArgs(**label) for label in labels(stack)],
            opts=fixed_name(self),
            **_networking(args),
        )
        body = json.dumps(args["live_files"], sort_keys=True)
        args["host"].run(
            f"{name}-update",
            container.name.apply(lambda c: shlex.join(["docker", "exec", "-i", c, "monitoring-update"])),
            pulumi.ResourceOptions(parent=self, depends_on=[container]),
            stdin=body,
            triggers=[container.id, hashlib.sha256(body.encode()).hexdigest()],
        )
        self.container_name = container.name
        self.prometheus_url = pulumi.Output.from_input(args["url"])
        self.register_outputs({"container_name": self.container_name, "prometheus_url": self.prometheus_url})


def _networking(args: MonitoringArgs) -> dict:
    """The lab's underlay and links at the plan's addresses, or the host's own network."""
    if args["underlay"] is None:
        return {"network_mode": "host"}
    networks = [docker.ContainerNetworksAdvancedArgs(name=args["underlay"], ipv4_address=args["address"])]
    networks += [docker.ContainerNetworksAdvancedArgs(name=link["network"], ipv4_address=link["address"]) for link in args["links"]]
    return {"networks_advanced": networks}
