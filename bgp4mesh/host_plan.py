"""What a remote host needs before bgp4mesh's containers run on it, as plain data from
the model, and the script that applies it (templates/host-prep.sh.j2).

Containers on a real host share its network namespace (host networking), so what the
lab set per container is set on the host here: forwarding and rp_filter on a border
router's host, src_valid_mark for WireGuard's fwmark routing, the uplink address, and a
firewall that admits only what each host's roles need. The script is idempotent and is
installed to run again at boot, so a rebooted host comes back as it was left."""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import Host, StackConfig
from .render import template

SCRIPT_PATH = "/usr/local/sbin/bgp4mesh-host-prep"
NFT_TABLE = "bgp4mesh"
BGP_PORT = 179
WEB_PORTS = (80, 443)
"""The TLS front: ACME HTTP-01 validation and HTTPS (API and MQTT over websockets)."""


@dataclass(frozen=True)
class Opening:
    proto: str
    port: int
    source: str | None = None
    why: str = ""


@dataclass
class HostPlan:
    name: str
    roles: list[str] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    addresses: list[tuple[str, str]] = field(default_factory=list)
    """(interface, address/length) the host must hold."""
    openings: list[Opening] = field(default_factory=list)
    """Besides SSH (whatever port sshd listens on), ICMP and replies."""


def host_plan(cfg: StackConfig, host: Host) -> HostPlan:
    plan = HostPlan(host.name)
    routers = [r for r in cfg.border_routers if r.host == host.name]
    members = routers + [n for n in cfg.mesh.nodes if n.host == host.name]
    if members:
        plan.roles.append("mesh member")
        plan.sysctls["net.ipv4.conf.all.src_valid_mark"] = "1"
        plan.openings.append(Opening("udp", cfg.mesh.wireguard_port, why="WireGuard"))
    for router in routers:
        plan.roles.append(f"border router {router.name}")
        plan.sysctls.update({"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.default.rp_filter": "0"})
        for up in cfg.upstreams_of(router):
            if up.interface is not None:
                plan.addresses.append((up.interface, f"{up.local_address}/{up.link.prefixlen}"))
            plan.openings.append(Opening("tcp", BGP_PORT, str(up.neighbor), f"BGP from {up.name}"))
    if cfg.netmaker.host == host.name:
        plan.roles.append("netmaker control plane")
        plan.openings += [Opening("tcp", port, why="TLS front") for port in WEB_PORTS]
    return plan


def render_host_prep(cfg: StackConfig, host: Host) -> str:
    return template("host-prep.sh.j2").render(plan=host_plan(cfg, host), script_path=SCRIPT_PATH, table=NFT_TABLE)


UNDO = f"""set -eu
nft delete table inet {NFT_TABLE} 2>/dev/null || true
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then systemctl disable bgp4mesh-host-prep.service 2>/dev/null || true; fi
rm -f /etc/systemd/system/bgp4mesh-host-prep.service /etc/sysctl.d/90-bgp4mesh.conf
if [ -x {SCRIPT_PATH} ]; then {SCRIPT_PATH} --remove-addresses; fi
rm -f {SCRIPT_PATH}
"""
"""Run when the stack is destroyed: the firewall, the boot hook and the addresses go; the
sysctls keep their values until the next boot."""
