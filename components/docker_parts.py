"""Small builders shared by every component: labelled lab networks, locally built
images, and container arguments that all bgp4mesh containers have in common."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Optional

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from bgp4mesh.config import Images
from bgp4mesh.naming import STACK_LABEL, docker_name

IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"


def fixed_name(parent: pulumi.Resource, **kwargs) -> pulumi.ResourceOptions:
    """Options for a child whose Docker name is fixed: the engine replaces
    create-before-delete by default, and the new object would find the old one
    still holding its name, so such a resource is deleted first."""
    return pulumi.ResourceOptions(parent=parent, delete_before_replace=True, **kwargs)


def labels(stack: str) -> list[dict]:
    return [{"label": STACK_LABEL, "value": stack}]


def lab_network(name: str, stack: str, subnet: str, gateway: str, opts: Optional[pulumi.ResourceOptions] = None, v6: Optional[tuple[str, str]] = None) -> docker.Network:
    """An internal bridge: no lab packet can be forwarded off this machine. The
    gateway is placed explicitly so the bridge never takes a configured address. With
    `v6` (subnet, gateway) it is dual-stack.

    Docker isolates internal networks with FORWARD rules that, with br_netfilter on,
    also drop packets routed *between containers of the same bridge* when the
    destination is outside the subnet (ISP -> border -> mesh address). A rule that
    accepts only what enters and leaves that same bridge restores routing inside
    the lab without opening any path out of it; it lives and dies with the network.

    IPv6: Debian's Docker 20.10 writes no ip6tables rules, yet turns the host's IPv6
    forwarding on with the first IPv6 network, and every container it attaches gets a
    default route to the bridge. So the bridge gets the isolation Docker gives IPv4's
    internal networks: nothing forwarded into or out of it from another interface."""
    network = docker.Network(
        name,
        name=docker_name(stack, name),
        driver="bridge",
        internal=True,
        ipv6=v6 is not None,
        ipam_configs=[docker.NetworkIpamConfigArgs(subnet=subnet, gateway=gateway)]
        + ([docker.NetworkIpamConfigArgs(subnet=v6[0], gateway=v6[1])] if v6 else []),
        labels=[docker.NetworkLabelArgs(**label) for label in labels(stack)],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(delete_before_replace=True)),
    )
    bridge = network.id.apply(lambda i: f"br-{i[:12]}")
    _host_rules(f"{name}-intra-bridge-routing", "iptables", bridge.apply(intra_bridge_routing), network)
    if v6:
        _host_rules(f"{name}-ipv6-isolation", "ip6tables", bridge.apply(ipv6_isolation), network)
    return network


def intra_bridge_routing(bridge: str) -> list[str]:
    """The iptables rule that lets packets enter and leave the same internal bridge (routing
    between its containers), and nothing else."""
    return [f"DOCKER-USER -i {bridge} -o {bridge} -j ACCEPT"]


def ipv6_isolation(bridge: str) -> list[str]:
    """ip6tables rules that keep an internal IPv6 network's traffic on its bridge: Docker
    20.10 writes none (its ip6tables support is experimental and off), yet turns the host's
    IPv6 forwarding on and gives its containers a default route to the bridge."""
    return [f"FORWARD -i {bridge} ! -o {bridge} -j DROP", f"FORWARD -o {bridge} ! -i {bridge} -j DROP"]


def _host_rules(name: str, tool: str, rules: pulumi.Output[list[str]], network: docker.Network) -> None:
    """`rules` (iptables or ip6tables) first in their chains on this machine while the lab
    network lives: inserted once, all copies deleted with it."""
    insert = lambda r: f"{tool} -C {r} 2>/dev/null || {tool} -I {r}"  # noqa: E731  (one rule: as stacks made before have it)
    command.local.Command(
        name,
        create=rules.apply(lambda rs: insert(rs[0]) if len(rs) == 1 else " && ".join(f"{{ {insert(r)}; }}" for r in rs)),
        delete=rules.apply(lambda rs: "; ".join(f"while {tool} -D {r} 2>/dev/null; do :; done" for r in rs)),
        opts=pulumi.ResourceOptions(parent=network),
    )


def context_digest(context: Path, dockerfile: Optional[Path] = None) -> str:
    """sha256 over every file of a build context (paths, modes, contents) and over a
    `dockerfile` kept outside it: the image is rebuilt exactly when what the build reads
    changes (the program's image triggers, the simulation's image labels)."""
    files = [(str(p.relative_to(context)), p) for p in sorted(context.rglob("*")) if p.is_file()]
    if dockerfile is not None and not dockerfile.is_relative_to(context):
        files.append(("<dockerfile>", dockerfile))
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(name.encode() + b"\0" + oct(path.stat().st_mode & 0o777).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


_context_digest_once = functools.cache(context_digest)
"""Once per program run, however many hosts build an image (contexts hold tens of MB)."""


class ImageSet:
    """The one way images reach an engine: bgp4mesh's own built once per program from
    images/<kind>/ (a lab: no registry) or pulled from the registry the stack names
    (prod), and upstream images pulled by name; a pulled reference pinned by digest is
    pulled as written. A kind may build FROM other kinds'
    images (BASES: build arg -> kind). References are image ids, so a new image
    replaces the containers that run it."""

    BASES = {
        # supervise.sh, every image's supervisor, ships in the bird image (the smallest)
        "netclient": {"BIRD_IMAGE": "bird"},
        "monitoring": {"BIRD_IMAGE": "bird"},
        "border": {"NETCLIENT_IMAGE": "netclient", "BIRD_IMAGE": "bird"},
    }

    def __init__(self, prefix: str = "", images: Images = Images(), opts: Optional[pulumi.ResourceOptions] = None):
        self.prefix = prefix
        self.source = images
        self.opts = opts
        self._images: dict[str, docker.RemoteImage] = {}

    def get(self, kind: str) -> pulumi.Output[str]:
        """The id of bgp4mesh's image `kind`: <registry>/<kind>:<tag>[@<digest>] pulled, or
        bgp4mesh/<kind>:<tag> built from images/<kind>."""
        if self.source.registry is not None:
            return self.pull(kind, self.source.reference(kind))
        if kind not in self._images:
            bases = self.BASES.get(kind, {})
            base_ids = {base: self.get(base) for base in bases.values()}
            context = IMAGES_DIR / kind
            self._images[kind] = docker.RemoteImage(
                f"{self.prefix}image-{kind}",
                name=self.name(kind),
                build=docker.RemoteImageBuildArgs(
                    context=str(context), build_args={arg: self.name(base) for arg, base in bases.items()} or None
                ),
                triggers={"context": _context_digest_once(context), **base_ids},
                keep_locally=True,  # a build cache, not stack state
                opts=pulumi.ResourceOptions.merge(
                    self.opts, pulumi.ResourceOptions(depends_on=[self._images[base] for base in bases.values()])
                ),
            )
        return self._images[kind].image_id

    def name(self, kind: str) -> str:
        return f"bgp4mesh/{kind}:{self.source.tag}"

    def pull(self, kind: str, reference: str) -> pulumi.Output[str]:
        """`reference` (e.g. gravitl/netmaker:v1.6.0, or pinned: ...@sha256:<digest>) pulled
        onto the engine as written, so a digest makes the engine refuse any other image; kept there."""
        if kind not in self._images:
            self._images[kind] = docker.RemoteImage(f"{self.prefix}image-{kind}", name=reference, keep_locally=True, opts=self.opts)
        return self._images[kind].image_id


def uploads(files: dict[str, str], base: str, secret: bool = False) -> list[docker.ContainerUploadArgs]:
    """Files copied into a container before it starts; `secret` keeps their content
    encrypted in the state, masked in previews, and readable by root alone (0600)."""
    if not secret:
        return [docker.ContainerUploadArgs(file=f"{base}/{path}", content=content) for path, content in sorted(files.items())]
    return [
        docker.ContainerUploadArgs(file=f"{base}/{path}", content=pulumi.Output.secret(content), permissions="0600")
        for path, content in sorted(files.items())
    ]


ROUTER_CAPS = docker.ContainerCapabilitiesArgs(adds=["NET_ADMIN", "NET_RAW"])
ROUTER_SYSCTLS = {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.default.rp_filter": "0"}
MEMBER_SYSCTLS = {"net.ipv4.conf.all.src_valid_mark": "1"}
"""What netclient's default-route policy needs in a member's own namespace (wg-quick's fwmark)."""
IPV6_ON = {"net.ipv6.conf.all.disable_ipv6": "0", "net.ipv6.conf.default.disable_ipv6": "0"}
"""IPv6 on for every interface of the container, those made later (WireGuard's) included."""
IPV6_FORWARD = {"net.ipv6.conf.all.forwarding": "1"}
"""A router that forwards IPv6 (a dual-stack mesh's gateway)."""
IPV6_LINK = {"net.ipv6.conf.all.keep_addr_on_down": "1"}
"""A router's IPv6 link addresses outlive a link flap: the kernel flushes them on link down
otherwise (unlike IPv4's), and the IPv6 session never comes back on that link."""


def exporter_envs(bird: Optional[str] = None, member: Optional[str] = None) -> list[str]:
    """Where a container's exporters listen (ip:port, the plan's scrape targets): the images
    start prometheus-bird-exporter on BIRD_EXPORTER_LISTEN and the member exporter on
    EXPORTER_LISTEN, and neither without its variable."""
    return [f"{k}={v}" for k, v in (("BIRD_EXPORTER_LISTEN", bird), ("EXPORTER_LISTEN", member)) if v]
