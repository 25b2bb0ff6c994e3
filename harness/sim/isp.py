"""The simulated ISP (not ours, so configured here, small): BIRD with an MD5-protected,
BFD-watched session to each customer router, announcing a test prefix and a default.
Tests reconfigure, stop and start it to see the routers' side."""

from __future__ import annotations

from bgp4mesh.docker_cli import LOCAL, docker

from .base import PREFIX, SimError
from .containers import copy_in
from .topology import CUSTOMERS, CUSTOMERS6, EDGE_ASN, EDGE_PREFIX, EDGE_PREFIX6, ISP_ANNOUNCES, ISP_ANNOUNCES6, ISP_ASN, ISP_IP, ISP_IP6

ISP = PREFIX + "isp"
CONF = "/etc/bird/bird.conf"


def isp_conf(password: str) -> str:
    """The ISP's BIRD configuration (the ISP is not ours: written here, small). One session
    per customer address and family; BFD runs on every session, and a customer that does not
    run it leaves that BFD session down, which BIRD ignores until it has once been up."""
    sessions = "".join(_isp_session(name, address, password, 4) for name, address in CUSTOMERS.items())
    sessions += "".join(_isp_session(name, address, password, 6) for name, address in CUSTOMERS6.items())
    return f"""# Sim ISP AS {ISP_ASN} (harness/sim/isp.py): announces {ISP_ANNOUNCES}, {ISP_ANNOUNCES6} and
# defaults to each customer router, accepts only {EDGE_PREFIX} and {EDGE_PREFIX6} from them,
# MD5-protected sessions.
log stderr all;
router id {ISP_IP};

protocol device {{
}}

protocol bfd {{
}}

protocol static announce_v4 {{
  ipv4;
  route {ISP_ANNOUNCES} blackhole;
  route 0.0.0.0/0 blackhole;
}}

protocol static announce_v6 {{
  ipv6;
  route {ISP_ANNOUNCES6} blackhole;
  route ::/0 blackhole;
}}
{sessions}
# Routes learnt from the edge go to the kernel: the way back to the customer's prefixes.
protocol kernel {{
  ipv4 {{
    import none;
    export where source = RTS_BGP;
  }};
  learn off;
}}

protocol kernel {{
  ipv6 {{
    import none;
    export where source = RTS_BGP;
  }};
  learn off;
}}
"""


def _isp_session(name: str, address: str, password: str, version: int) -> str:
    local, prefix = (ISP_IP, EDGE_PREFIX) if version == 4 else (ISP_IP6, EDGE_PREFIX6)
    return f"""
protocol bgp {name} {{
  description "customer AS{EDGE_ASN} (bgp4mesh edge {address})";
  local {local} as {ISP_ASN};
  neighbor {address} as {EDGE_ASN};
  password "{password}";
  hold time 9;
  keepalive time 3;
  connect retry time 2;
  bfd on;
  ipv{version} {{
    import filter {{
      if net = {prefix} then accept;
      reject;
    }};
    export where source = RTS_STATIC;
  }};
}}
"""


def set_isp_conf(text: str) -> None:
    """The ISP runs `text` as its BIRD configuration from now on (reconfigured in place)."""
    copy_in(ISP, {CONF: (text.encode(), 0o600)})
    docker("exec", ISP, "birdc", "configure")


def set_isp_password(password: str) -> None:
    """The ISP's side of the MD5 sessions with another password."""
    set_isp_conf(isp_conf(password))


def stop_isp() -> None:
    docker("stop", "-t", "2", ISP)


def start_isp() -> None:
    docker("start", ISP)


def isp_ready() -> bool:
    if "peer_edge" in docker("exec", ISP, "birdc", "show", "protocols", check=False):
        return True
    logs = LOCAL.run("logs", "--tail", "2", ISP).stderr
    raise SimError("birdc does not answer; last log: " + logs.strip().replace("\n", " | "))
