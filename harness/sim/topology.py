"""The simulated Internet's addresses: its networks, the hosts the staging stack deploys
to, the services every host finds by name, and the ISP with its customer sessions."""

from __future__ import annotations

from dataclasses import dataclass

from .base import PREFIX

ZONE = "staging.test"
RESOLVER = "203.0.113.53"
REGISTRY_IP, ACME_IP, STUN_IP, WHOAMI_IP = "203.0.113.5", "203.0.113.6", "203.0.113.7", "203.0.113.8"
WHOAMI_NAMES = ("icanhazip.com", "ifconfig.me", "myexternalip.com")
"""The public-IP services netclient asks (functions.GetPublicIP) before it uses STUN at all:
without an answer a host behind NAT never learns its endpoint."""
REGISTRY = f"registry.{ZONE}:5000"
ACME_NAME = f"acme.{ZONE}"
ACME_DIRECTORY = f"https://{ACME_NAME}:14000/dir"
ACME_ROOT_URL = f"https://{ACME_NAME}:15000/roots/0"
STUN = f"stun.{ZONE}:3478"
NAT_WAN, NAT_LAN = "203.0.113.40", "192.168.77.1"
NAT_SSH_PORT = 2222
SCAN_ADDRESS = "203.0.113.50"
"""Where the scanner stands on the simulated Internet: an address no host trusts."""
OPERATOR_NAMES = {f"nm.{ZONE}": "203.0.113.20", f"broker.nm.{ZONE}": "203.0.113.20"}
"""Names the operator's machine resolves as public DNS would (`pulumi up` talks to the
Netmaker API by name): kept in /etc/hosts between markers while the sim is up."""

ISP_IP, ISP_ASN, ISP_TEST_ADDRESS, ISP_ANNOUNCES = "192.0.2.9", 65001, "198.51.100.1", "198.51.100.0/24"
EDGE_UPLINK_ADDRESS, EDGE_ASN, EDGE_PREFIX = "192.0.2.10", 64500, "44.30.127.0/24"
EDGE_B_UPLINK_ADDRESS = "192.0.2.11"  # the second border router's (staging-ha)
CUSTOMERS = {"peer_edge": EDGE_UPLINK_ADDRESS, "peer_edge_b": EDGE_B_UPLINK_ADDRESS}
"""The ISP's sessions: BIRD protocol -> the customer router's uplink address."""
ISP_IP6, ISP_TEST_ADDRESS6, ISP_ANNOUNCES6 = "2001:db8:ac2e::9", "2001:db8:5100::1", "2001:db8:5100::/48"
EDGE_UPLINK_ADDRESS6, EDGE_PREFIX6 = "2001:db8:ac2e::a", "2001:db8:4430::/48"
CUSTOMERS6 = {"peer6_edge": EDGE_UPLINK_ADDRESS6}
"""The ISP's IPv6 sessions (staging is dual-stack; staging-ha stays IPv4-only)."""


@dataclass(frozen=True)
class Net:
    key: str
    subnet: str
    gateway: str
    ip_range: str  # where Docker may pick addresses, away from the fixed ones
    subnet6: str = ""
    """IPv6 too (every container on it gets a fixed IPv6 address: Spec.ip6)."""
    gateway6: str = ""

    @property
    def subnets(self) -> set[str]:
        return {self.subnet} | ({self.subnet6} if self.subnet6 else set())

    @property
    def name(self) -> str:
        return PREFIX + self.key


NETS = {
    n.key: n
    for n in (
        # /26, not /24: this workplace reaches its package registries at 203.0.113.80, and a
        # connected /24 on the operator's machine would capture that (apt, pip, go break).
        Net("internet", "203.0.113.0/26", "203.0.113.1", "203.0.113.56/29"),
        Net("uplink", "192.0.2.8/29", "192.0.2.14", "192.0.2.12/30", "2001:db8:ac2e::/64", "2001:db8:ac2e::e"),
        Net("home", "192.168.77.0/24", "192.168.77.254", "192.168.77.128/25"),
    )
}


@dataclass(frozen=True)
class Host:
    name: str
    addresses: tuple[tuple[str, str], ...]  # (network key, address), first one is created with
    ifnames: str  # IFNAMES for sim-init: interface name=address
    default_via: str
    ssh_address: str
    ssh_port: int = 22
    addresses6: tuple[tuple[str, str], ...] = ()
    """(network key, IPv6 address) on the networks that carry IPv6."""

    @property
    def container(self) -> str:
        return PREFIX + self.name

    @property
    def public_address(self) -> str:
        return self.ssh_address

    @property
    def known_name(self) -> str:
        """The name ssh looks this host's key up by."""
        return self.ssh_address if self.ssh_port == 22 else f"[{self.ssh_address}]:{self.ssh_port}"


HOSTS = {
    h.name: h
    for h in (
        Host("edge", (("internet", "203.0.113.10"), ("uplink", "192.0.2.13")), "wan=203.0.113.10 uplink=192.0.2.13", "203.0.113.1", "203.0.113.10",
             addresses6=(("uplink", "2001:db8:ac2e::d"),)),
        # The second edge of the two-router variant (Pulumi.staging-ha.yaml); staging leaves it idle.
        Host("edge-b", (("internet", "203.0.113.11"), ("uplink", "192.0.2.12")), "wan=203.0.113.11 uplink=192.0.2.12", "203.0.113.1", "203.0.113.11",
             addresses6=(("uplink", "2001:db8:ac2e::c"),)),
        Host("control", (("internet", "203.0.113.20"),), "wan=203.0.113.20", "203.0.113.1", "203.0.113.20"),
        Host("node-a", (("internet", "203.0.113.30"),), "wan=203.0.113.30", "203.0.113.1", "203.0.113.30"),
        Host("node-b", (("home", "192.168.77.10"),), "wan=192.168.77.10", NAT_LAN, NAT_WAN, NAT_SSH_PORT),
    )
}

# Almost --privileged: every capability but CAP_SYS_RESOURCE (this machine's engine does
# not hold it, and runc then refuses --privileged), no seccomp/AppArmor profile, /proc
# unmasked, every device allowed, /dev/net/tun for netclient's userspace WireGuard.
# sim-init remounts /sys and the cgroup hierarchies read-write.
HOST_PRIVILEGES = ["--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
                   "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
                   "--device", "/dev/net/tun", "--device-cgroup-rule", "a *:* rwm"]
