"""Small builders shared by every component: labelled lab networks, locally built
images, and container arguments that all bgp4mesh containers have in common."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pulumi
import pulumi_docker as docker

IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"
STACK_LABEL = "bgp4mesh.stack"


def resource_name(stack: str, name: str) -> str:
    """Docker-side name: unique per stack on a shared engine, easy to find."""
    return f"bgp4mesh-{stack}-{name}"


def labels(stack: str) -> list[dict]:
    return [{"label": STACK_LABEL, "value": stack}]


def lab_network(name: str, stack: str, subnet: str, gateway: str, opts: Optional[pulumi.ResourceOptions] = None) -> docker.Network:
    """An internal bridge: no lab packet can be forwarded off this machine. The
    gateway is placed explicitly so the bridge never takes a configured address."""
    return docker.Network(
        name,
        name=resource_name(stack, name),
        driver="bridge",
        internal=True,
        ipam_configs=[docker.NetworkIpamConfigArgs(subnet=subnet, gateway=gateway)],
        labels=[docker.NetworkLabelArgs(**label) for label in labels(stack)],
        opts=opts,
    )


class ImageSet:
    """Builds each image kind once per program from images/<kind>/ (no registry)."""

    def __init__(self, prefix: str = "", tag: str = "local", opts: Optional[pulumi.ResourceOptions] = None):
        self.prefix = prefix
        self.tag = tag
        self.opts = opts
        self._images: dict[str, docker.Image] = {}

    def get(self, kind: str) -> pulumi.Output[str]:
        if kind not in self._images:
            self._images[kind] = docker.Image(
                f"{self.prefix}image-{kind}",
                image_name=f"bgp4mesh/{kind}:{self.tag}",
                build=docker.DockerBuildArgs(context=str(IMAGES_DIR / kind)),
                skip_push=True,
                opts=self.opts,
            )
        return self._images[kind].image_name


def uploads(files: dict[str, str], base: str) -> list[docker.ContainerUploadArgs]:
    return [docker.ContainerUploadArgs(file=f"{base}/{path}", content=content) for path, content in sorted(files.items())]


ROUTER_CAPS = docker.ContainerCapabilitiesArgs(adds=["NET_ADMIN", "NET_RAW"])
ROUTER_SYSCTLS = {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.default.rp_filter": "0"}
