"""Live tier: the boot-time host firewall of a real host fails closed (README, "Host
preparation"). The simulated hosts have no systemd, so this boots one that has: a container
of images/sim/boot with systemd as PID 1, playing staging's edge host (border router and
mesh member; its second NIC is the uplink the plan names). The product's own script
(`render_host_prep`) is installed and run as `pulumi up` runs it, which installs the unit
and Docker's drop-in. Then `docker restart` reboots the host:

* a good boot: systemd's record shows host-prep done before network-pre.target and Docker
  started after it; from outside (nmap on the same internal network) only SSH and an inner
  container's published port answer, every other port is dropped, not refused;
* a boot whose host-prep fails (the uplink NIC is gone): Docker never started, the inner
  container's port does not answer, and the firewall's policy drop holds: only SSH answers.

Everything is on `internal` networks of its own, labelled bgp4mesh.test=boot and removed at
the end (the container with its anonymous volume)."""

from __future__ import annotations

import contextlib
import re
from typing import Iterator

import pytest

from bgp4mesh.host_plan import NFT_TABLE, SCRIPT_PATH
from bgp4mesh.stack import load_file
from bgp4mesh.docker_cli import docker
from harness import sim
from tests.live import eventually
from tests import plans

LABEL = "bgp4mesh.test=boot"
HOST = "bgp4mesh-test-boot"
WAN, UPLINK = HOST + "-wan", HOST + "-uplink"
SUBNETS = {WAN: "198.18.64.0/28", UPLINK: "198.18.64.16/28"}  # RFC 2544 space: no route here
WAN_IP, UPLINK_IP, SCANNER_IP = "198.18.64.10", "198.18.64.26", "198.18.64.5"
SSH_PORT = 2222
"""The host's sshd listens here, not on 22 (as many real hosts' do): the firewall must
admit whatever port sshd listens on, at boot too."""
PUBLISHED = 8080
"""The inner container's published port: it answers only while Docker runs."""
PREP, DROPIN = "bgp4mesh-host-prep.service", "/etc/systemd/system/docker.service.d/10-bgp4mesh.conf"
INSTALL = f"umask 022 && cat > {SCRIPT_PATH}.new && chmod 755 {SCRIPT_PATH}.new && mv {SCRIPT_PATH}.new {SCRIPT_PATH} && {SCRIPT_PATH}"
"""What `pulumi up` runs on the host with the script on stdin (components/hosts.py, prepare)."""
LISTENER = f"""set -eu
r=$(mktemp -d)
for f in /usr/bin/nc.openbsd $(ldd /usr/bin/nc.openbsd | grep -o '/[^ ]*'); do
  mkdir -p "$r$(dirname "$f")" && cp -L "$f" "$r$f"
done
tar -C "$r" -c . | docker import - bgp4mesh-test/listener >/dev/null
rm -rf "$r"
docker run -d --name listener --restart always --stop-timeout 1 -p {PUBLISHED}:{PUBLISHED} bgp4mesh-test/listener /usr/bin/nc.openbsd -lk {PUBLISHED}
"""
"""An image of netcat and its libraries, made from the host's own packages (the networks are
internal: nothing to pull), run with a published port and `--restart always`."""


def run(*command: str, check: bool = True, input: bytes | None = None) -> str:
    return docker("exec", "-i", HOST, *command, check=check, input=input, timeout=120)


def remove_all() -> None:
    """Whatever a run (this one or an interrupted earlier one) left, by label."""
    for name in docker("ps", "-aq", "--filter", f"label={LABEL}").split():
        docker("rm", "-f", "-v", name, check=False)
    for name in docker("network", "ls", "-q", "--filter", f"label={LABEL}").split():
        docker("network", "rm", name, check=False)


def create_host() -> None:
    """The booting host: systemd as PID 1 (see images/sim/boot/Dockerfile for the flags),
    its WAN and its uplink NIC named as IFNAMES says, a volume for the inner Docker."""
    for net, subnet in SUBNETS.items():
        docker("network", "create", "--internal", "--label", LABEL, "--subnet", subnet, net)
    docker("create", "--name", HOST, "--label", LABEL, "--hostname", "edge", "--network", WAN, "--ip", WAN_IP,
           *sim.HOST_PRIVILEGES, "--cgroupns", "private", "--tmpfs", "/run", "--tmpfs", "/run/lock",
           "-v", "/var/lib/docker", "--stop-timeout", "30", "-e", f"IFNAMES=wan={WAN_IP} uplink={UPLINK_IP}",
           sim.sim_image(sim.BOOT_IMAGE))
    docker("network", "connect", "--ip", UPLINK_IP, UPLINK, HOST)
    docker("start", HOST)


def booted() -> str:
    """Wait until systemd finished booting; its verdict ("running" or "degraded")."""
    def done() -> str:
        state = run("systemctl", "is-system-running", check=False)
        assert state in ("running", "degraded"), f"system {state or 'not answering'}"
        return state
    return eventually(done, 90, what="boot")


def reboot() -> str:
    docker("restart", HOST, timeout=120)
    return booted()


def prepare_as_pulumi_up_does() -> None:
    """sshd moved to SSH_PORT, then the product's script for staging's edge host installed
    and run over the same command `pulumi up` uses; it enables the unit and the drop-in."""
    run("sh", "-c", f"echo 'Port {SSH_PORT}' > /etc/ssh/sshd_config.d/port.conf && systemctl restart ssh")
    cfg = load_file("staging")
    assert "ready" in run("sh", "-c", INSTALL, input=plans.host_prep(cfg, cfg.host("edge")).encode())
    assert run("systemctl", "is-enabled", PREP) == "enabled"
    assert f"Requires={PREP}" in run("cat", DROPIN)
    run("sh", "-c", LISTENER)


@contextlib.contextmanager
def boot_host() -> Iterator[str]:
    """A prepared host with a running inner container; everything removed afterwards."""
    remove_all()
    try:
        create_host()
        booted()
        prepare_as_pulumi_up_does()
        yield HOST
    finally:
        remove_all()
        left = docker("ps", "-aq", "--filter", f"label={LABEL}") + docker("network", "ls", "-q", "--filter", f"label={LABEL}")
        assert not left, f"left behind: {left}"


@pytest.fixture(scope="module")
def host() -> Iterator[str]:
    with boot_host() as h:
        yield h


# ---- what the checks read --------------------------------------------------------------


def units(*names: str) -> dict[str, dict[str, str]]:
    """systemd's record of this boot (PID 1 is new at every reboot) for each unit."""
    props = "ActiveState,Result,InactiveExitTimestampMonotonic,ActiveEnterTimestampMonotonic,ExecMainStartTimestampMonotonic,ExecMainStartTimestamp"
    blocks = run("systemctl", "show", "-p", props, *names).split("\n\n")
    return {n: dict(line.split("=", 1) for line in b.splitlines() if "=" in line) for n, b in zip(names, blocks)}


def said_by(unit: str, record: dict[str, str]) -> str:
    """What a unit's run of this boot wrote: its journal lines since that run started (the
    journal outlives reboots, and a container shares the machine's boot id). Matched by
    unit, not invocation: journald stamps the unit from the output stream's header, while
    the invocation id it looks up from the writer's cgroup, which a process that has
    already exited no longer has (one CI run lost the line that way)."""
    return run("journalctl", "-o", "cat", f"_SYSTEMD_UNIT={unit}", "--since", record["ExecMainStartTimestamp"])


def input_policy() -> str:
    """The policy of the host firewall's input chain, or what nft said instead."""
    chain = run("sh", "-c", f"nft list chain inet {NFT_TABLE} input 2>&1", check=False)
    found = re.search(r"policy (\w+);", chain)
    return found.group(1) if found else chain


def outside_scan() -> tuple[set[int], dict[str, int]]:
    """Every TCP port of the host as a stranger on its WAN sees it: the open ports, and how
    many of the rest nmap found in each other state (dropped is "filtered", refused "closed")."""
    return sim.scan_report([WAN_IP], network=WAN, source=SCANNER_IP, label=LABEL, rate=20000, retries=2)[WAN_IP]


def listener_running() -> bool:
    return run("docker", "inspect", "-f", "{{.State.Running}}", "listener") == "true"


# ---- the claim -----------------------------------------------------------------------------


def test_at_boot_the_firewall_loads_before_the_network_and_docker_after_it(host):
    """Good boot: host-prep finished before network-pre.target was reached and before Docker
    started; Docker brought the inner container back; outside, only SSH and its port answer."""
    assert reboot() == "running", run("systemctl", "--failed", "--no-legend")
    u = units(PREP, "network-pre.target", "docker.service")
    prep_done = int(u[PREP]["ActiveEnterTimestampMonotonic"])
    assert u[PREP]["Result"] == "success" and prep_done > 0, u[PREP]
    after = {"network-pre.target reached": int(u["network-pre.target"]["ActiveEnterTimestampMonotonic"]),
             "docker.service started": int(u["docker.service"]["InactiveExitTimestampMonotonic"])}
    assert all(after.values()), after
    assert not [what for what, t in after.items() if t < prep_done], f"before host-prep finished ({prep_done}): {after}"
    assert input_policy() == "drop"
    eventually(listener_running, 60, what="the inner container restarted by Docker")
    opened, rest = outside_scan()
    assert opened == {SSH_PORT, PUBLISHED}, (opened, rest)
    assert set(rest) == {"filtered"}, rest  # dropped, not refused: the policy drop holds


def test_a_failed_host_prep_keeps_docker_down_and_the_host_closed(host):
    """The uplink NIC is gone at boot: the script loads the firewall, then fails on the
    missing interface; Docker, which Requires= it, never starts, so the inner container's
    published port does not answer; the host stays closed but for SSH."""
    docker("network", "disconnect", UPLINK, HOST)
    assert reboot() == "degraded"
    u = units(PREP, "docker.service")
    assert (u[PREP]["ActiveState"], u[PREP]["Result"]) == ("failed", "exit-code"), u[PREP]
    eventually(lambda: "no interface uplink on host edge" in said_by(PREP, u[PREP]), 10, what="host-prep's reason in its journal")
    assert u["docker.service"]["ActiveState"] == "inactive", u["docker.service"]
    assert u["docker.service"]["ExecMainStartTimestampMonotonic"] == "0", "dockerd ran this boot"
    assert input_policy() == "drop"
    opened, rest = outside_scan()
    assert opened == {SSH_PORT}, (opened, rest)
    assert set(rest) == {"filtered"}, rest
    # A client knocking on docker.sock (socket activation) does not bring Docker up either.
    run("docker", "ps", check=False)
    assert units("docker.service")["docker.service"]["ExecMainStartTimestampMonotonic"] == "0", "docker.sock started dockerd"
