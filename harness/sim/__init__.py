"""A simulated Internet on this machine's Docker engine, for the prod code path (issue #9):
remote hosts reached only over SSH, a home host behind NAT, DNS, an image registry
serving Docker Hub names as a mirror, an ACME CA (pebble), STUN (coturn) and an ISP
speaking BGP (BIRD) on the edge host's uplink.

    .venv/bin/python -m harness.sim up|down|status      (./scripts/sim wraps it; cli.py)

`up` is idempotent (running pieces whose spec did not change are reused; images are
rebuilt only when their build context changed and pushed only when the registry holds
another digest) and writes $BGP4MESH_CACHE/sim/staging.json (0600; info.py), from
which the staging stack's per-machine values are filled in. `down` removes every
container, network and volume named bgp4mesh-sim-* or labelled bgp4mesh.sim=1, also
after a failed `up`; the keys and the CA in the cache stay, so host keys are the same
on the next `up`.

Every network is `internal`: nothing leaves this machine. The operator's machine
reaches every public address through the internet bridge's address 203.0.113.1 (and,
as a Docker bridge always has an address, the home LAN through 192.168.77.254: the
operator's route to node-b is the router's port-forward, 203.0.113.40:2222).

One module a job: topology (addresses, hosts), images, material (keys, CA), containers,
networks, services (what runs where), isp, registry, probes (DNS, STUN, HTTPS), access
(SSH), outsiders (scans and requests from the Internet), inventory, lifecycle (up, down),
info (staging.json). The names below are what tests, benches and harness/staging.py use.
"""

from .access import ssh_argv
from .base import PREFIX, SPEC_LABEL, SimError, image_id, info_path
from .containers import container_action, copy_in
from .images import BOOT_IMAGE, PUBLISHED, SCAN_IMAGE, SIM_IMAGES, UPSTREAM, build, own_image, sim_image
from .info import load_info
from .inventory import leftovers, memory
from .isp import isp_conf, set_isp_conf, set_isp_password, start_isp, stop_isp
from .lifecycle import down, restart_host, up
from .material import material
from .outsiders import outsider_http, scan, scan_report
from .probes import dns_query, stun_mapped
from .topology import (
    CUSTOMERS, CUSTOMERS6, EDGE_ASN, EDGE_PREFIX, EDGE_PREFIX6, EDGE_UPLINK_ADDRESS6, HOST_PRIVILEGES, HOSTS, ISP_IP, ISP_IP6,
    ISP_TEST_ADDRESS, ISP_TEST_ADDRESS6, NAT_SSH_PORT, NAT_WAN, NETS, REGISTRY, SCAN_ADDRESS,
)
