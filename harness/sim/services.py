"""What runs on the simulated Internet: its services (DNS, the registry, pebble, STUN, a
what-is-my-IP service, the ISP, the home router) and the hosts, each as a container Spec."""

from __future__ import annotations

from .base import PREFIX
from .containers import Spec
from .images import UPSTREAM, own_ref
from .isp import CONF, ISP, isp_conf
from .material import Material
from .topology import (
    ACME_DIRECTORY, ACME_IP, HOST_PRIVILEGES, HOSTS, ISP_IP, ISP_IP6, ISP_TEST_ADDRESS, ISP_TEST_ADDRESS6, NAT_LAN, NAT_SSH_PORT, NAT_WAN, NETS,
    REGISTRY_IP, RESOLVER, STUN_IP, WHOAMI_IP, WHOAMI_NAMES, ZONE, Host,
)


def whoami_caddyfile() -> str:
    """Each caller's address, over HTTPS with a certificate from the sim's ACME CA (so it
    is trusted wherever Pebble's root is, as a public service's is by the system roots)."""
    return (
        "{\n"
        f"\temail noc@{ZONE}\n"
        f"\tacme_ca {ACME_DIRECTORY}\n"
        "\tacme_ca_root /etc/sim/ca.pem\n"
        "}\n\n"
        f"{', '.join(WHOAMI_NAMES)} {{\n"
        "\trespond \"{remote_host}\"\n"
        "}\n"
    )


def specs(m: Material) -> list[Spec]:
    """Every container of the simulation, services first (the resolver before anything
    that resolves), then the hosts."""
    dns = ["--dns", RESOLVER]
    out = [
        Spec(PREFIX + "dns", "bgp4mesh/sim-dns:local", [("internet", RESOLVER)], ["--hostname", "ns"]),
        Spec(PREFIX + "registry", "bgp4mesh/sim-registry:local", [("internet", REGISTRY_IP)], ["--hostname", "registry", *dns],
             volumes={PREFIX + "registry-data": "/var/lib/docker-registry"}),
        Spec(PREFIX + "acme", "bgp4mesh/sim-acme:local", [("internet", ACME_IP)], ["--hostname", "acme", *dns],
             files={"/etc/pebble/cert.pem": (m.pebble_cert, 0o644), "/etc/pebble/key.pem": (m.pebble_key, 0o600)}),
        Spec(PREFIX + "stun", "bgp4mesh/sim-stun:local", [("internet", STUN_IP)], ["--hostname", "stun", *dns]),
        Spec(PREFIX + "whoami", UPSTREAM["caddy:2.8.4"], [("internet", WHOAMI_IP)], ["--hostname", "whoami", *dns],
             files={"/etc/caddy/Caddyfile": (whoami_caddyfile().encode(), 0o644), "/etc/sim/ca.pem": (m.ca_pem.encode(), 0o644)}),
        Spec(ISP, own_ref("bird"), [("uplink", ISP_IP)],
             ["--hostname", "isp", "--cap-add", "NET_ADMIN", "-e", f"ISP_ADDRESSES={ISP_TEST_ADDRESS}/32 {ISP_TEST_ADDRESS6}/128",
              "-e", "ROUTES_FROM_BGP_ONLY=1"],
             files={CONF: (isp_conf(m.md5).encode(), 0o600)}, ip6={"uplink": ISP_IP6}),
        Spec(PREFIX + "nat", "bgp4mesh/sim-nat:local", [("internet", NAT_WAN), ("home", NAT_LAN)],
             ["--hostname", "router", "--cap-add", "NET_ADMIN", "--sysctl", "net.ipv4.ip_forward=1",
              "-e", f"WAN_ADDR={NAT_WAN}", "-e", f"LAN_ADDR={NAT_LAN}", "-e", f"LAN_NET={NETS['home'].subnet}",
              "-e", f"FORWARD={NAT_SSH_PORT}={HOSTS['node-b'].addresses[0][1]}:22"]),
    ]
    return out + [_host_spec(h, m) for h in HOSTS.values()]


def _host_spec(h: Host, m: Material) -> Spec:
    """A host as the staging stack meets it: sshd with its pinned key, the operator's key
    authorized, its own Docker engine (state on a volume, so images survive a replace)."""
    key, pub = m.host_keys[h.name]
    return Spec(
        h.container, "bgp4mesh/simhost:local", list(h.addresses),
        ["--hostname", h.name, *HOST_PRIVILEGES, "--cgroupns", "private", "--tmpfs", "/run", "--stop-timeout", "30",
         "-e", f"IFNAMES={h.ifnames}", "-e", f"DEFAULT_VIA={h.default_via}", "-e", f"RESOLVER={RESOLVER}"],
        files={
            "/etc/ssh/ssh_host_ed25519_key": (key, 0o600),
            "/etc/ssh/ssh_host_ed25519_key.pub": ((pub + f" root@{h.name}\n").encode(), 0o644),
            "/root/.ssh/authorized_keys": ((m.operator_pub + " bgp4mesh-sim-operator\n").encode(), 0o600),
        },
        volumes={f"{h.container}-docker": "/var/lib/docker"},
        ip6=dict(h.addresses6),
    )
