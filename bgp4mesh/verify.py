"""`python -m bgp4mesh verify --stack NAME`: the operator's check after `pulumi up`.

Modelled on `netlab validate`: an ordered list of checks, each retried until it
passes or its wait budget runs out, one PASS/FAIL line each, exit 0 only when all
pass. Checks run inside the deployed containers (on their own Docker hosts, so the
same code serves prod over ssh://). Where a mock ISP exists, BGP is checked from
the ISP's side too, including what must be absent; against a real upstream only
the border-side checks apply.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from ipaddress import ip_network
from typing import Callable

from .birdc import Target, protocols, routes
from .config import StackConfig
from .naming import docker_name
from .waiting import WaitTimeout, until
from .render import bird_protocol, isp_addresses

MESH_INTERFACE = "netmaker"
HANDSHAKE_FRESH_SECONDS = 180


class CheckFailed(Exception):
    """A check's reason for failing. Raised explicitly, never by `assert`, so a check
    still fails under `python -O` (which strips asserts)."""


RETRIED = (CheckFailed, RuntimeError, OSError, subprocess.SubprocessError)
"""What a check may raise while the deployment is still converging."""


def require(condition: object, reason: str) -> None:
    if not condition:
        raise CheckFailed(reason)


@dataclass
class Check:
    name: str
    run: Callable[[], str]
    """Returns a short detail when the check passes; raises CheckFailed (or
    RuntimeError/OSError from a command) with the reason when it does not."""


def target(cfg: StackConfig, stack: str, name: str, host: str = "local") -> Target:
    spec = cfg.host(host)
    return Target(docker_name(stack, name), spec.docker, spec.ssh)


def mesh_ip(t: Target) -> str:
    proc = t.run("ip", "-4", "-o", "addr", "show", "dev", MESH_INTERFACE)
    found = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", proc.stdout)
    require(found, f"{t.container} has no address on {MESH_INTERFACE} ({(proc.stderr or proc.stdout).strip()})")
    return found.group(1)


def build_checks(cfg: StackConfig, stack: str) -> list[Check]:
    checks: list[Check] = []
    own = [str(p) for p in cfg.prefixes]
    for router in cfg.border_routers:
        border = target(cfg, stack, router.name, router.host)
        for up in cfg.upstreams_of(router):
            checks.append(Check(f"bgp {router.name} -> {up.name} (AS {up.asn}) Established", _established(border, bird_protocol(up.name))))
            checks.append(
                Check(f"bgp {router.name}: nothing unwanted accepted from {up.name}", _nothing_unwanted(cfg, border, bird_protocol(up.name)))
            )
            if up.mock is not None:
                isp = target(cfg, stack, up.name, router.host)
                peer = bird_protocol(router.name)
                checks.append(Check(f"bgp {up.name} sees {router.name} Established", _established(isp, peer)))
                checks.append(Check(f"bgp {up.name} holds exactly {', '.join(own)} from AS {cfg.asn}", _exactly_own(cfg, isp, peer)))
    members = [(r.name, r.host) for r in cfg.border_routers] + [(n.name, n.host) for n in cfg.mesh.nodes]
    for name, host in members:
        checks.append(Check(f"mesh {name}: WireGuard handshakes with every peer", _handshakes(target(cfg, stack, name, host))))
    for up in cfg.upstreams:
        isp = target(cfg, stack, up.name, cfg.router_of(up).host) if up.mock is not None else None
        mock_probe = isp_addresses(up)[0].split("/")[0] if isp is not None and isp_addresses(up) else None
        probe = str(up.probe) if up.probe is not None else mock_probe
        for node in cfg.mesh.nodes:
            node_t = target(cfg, stack, node.name, node.host)
            if isp is not None and mock_probe:
                # An Internet host: the ISP's test address, not its link address (which
                # is no route the mesh knows, as on the real Internet).
                checks.append(Check(f"ping inbound {up.name} {mock_probe} -> {node.name}", _ping_to_member(isp, node_t, source=mock_probe)))
            if probe:
                checks.append(Check(f"ping outbound {node.name} -> {up.name} {probe}", _ping(node_t, probe)))
    for a in cfg.mesh.nodes:
        for b in cfg.mesh.nodes:
            if a.name < b.name:
                checks.append(Check(f"ping mesh {a.name} -> {b.name}", _ping_to_member(target(cfg, stack, a.name, a.host), target(cfg, stack, b.name, b.host))))
    return checks


def _established(t: Target, protocol: str) -> Callable[[], str]:
    def run() -> str:
        state = protocols(t).get(protocol)
        require(state is not None, f"no protocol {protocol} on {t.container}")
        require(state.info.startswith("Established"), f"{protocol} is {state.state} {state.info or ''}".strip() + " (expected Established)")
        return "Established"

    return run


def _exactly_own(cfg: StackConfig, isp: Target, protocol: str) -> Callable[[], str]:
    want = sorted((str(p), [cfg.asn]) for p in cfg.prefixes)

    def run() -> str:
        got = sorted((r.prefix, r.as_path) for r in routes(isp, "protocol", protocol))
        require(got == want, f"ISP holds {got}, expected {want}")
        return f"{len(got)} prefix(es), AS path {cfg.asn}"

    return run


def _nothing_unwanted(cfg: StackConfig, border: Target, protocol: str) -> Callable[[], str]:
    own = [p for p in cfg.prefixes]
    pol = cfg.policy

    def run() -> str:
        learned = routes(border, "protocol", protocol)
        bad = []
        for r in learned:
            net = ip_network(r.prefix)
            if any(net.version == p.version and net.subnet_of(p) for p in own):
                bad.append(f"{r.prefix} is inside our own space")
            if net.version == 4 and net.prefixlen > pol.max_prefix_length_v4:
                bad.append(f"{r.prefix} is longer than /{pol.max_prefix_length_v4}")
            if 23456 in r.as_path:
                bad.append(f"{r.prefix} has AS 23456 in its path")
            if len(r.as_path) > pol.max_as_path_length:
                bad.append(f"{r.prefix} has a path of {len(r.as_path)} ASNs")
        require(not bad, "; ".join(bad))
        return f"{len(learned)} route(s) accepted, none unwanted"

    return run


def _handshakes(t: Target) -> Callable[[], str]:
    def run() -> str:
        proc = t.run("wg", "show", MESH_INTERFACE, "latest-handshakes")
        require(proc.returncode == 0, f"wg show failed on {t.container}: {(proc.stderr or proc.stdout).strip()}")
        rows = [line.split() for line in proc.stdout.splitlines() if line.strip()]
        require(rows, f"{t.container} has no WireGuard peers")
        now = time.time()
        stale = [key[:8] for key, ts in rows if int(ts) == 0 or now - int(ts) > HANDSHAKE_FRESH_SECONDS]
        require(not stale, f"{len(stale)} of {len(rows)} peers without a recent handshake ({', '.join(stale)})")
        return f"{len(rows)} peer(s)"

    return run


def _ping(src: Target, address: str, source: str | None = None) -> Callable[[], str]:
    def run() -> str:
        proc = src.run("ping", "-c", "1", "-W", "1", *(["-I", source] if source else []), address)
        require(proc.returncode == 0, f"{src.container} cannot reach {address}")
        rtt = re.search(r"time=([\d.]+) ms", proc.stdout)
        return f"{address} answers ({rtt.group(1) if rtt else '?'} ms)"

    return run


def _ping_to_member(src: Target, dst: Target, source: str | None = None) -> Callable[[], str]:
    def run() -> str:
        return _ping(src, mesh_ip(dst), source)()

    return run


def run_checks(checks: list[Check], wait: float, out: Callable[[str], None] = print) -> int:
    failed = 0
    for check in checks:
        try:
            out(f"PASS {check.name}: {until(check.run, wait, every=1, retry_on=RETRIED)}")
        except WaitTimeout as exc:
            out(f"FAIL {check.name}: {exc}")
            failed += 1
    out(f"{len(checks) - failed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def run_verify(stack: str, cfg: StackConfig, wait: float) -> int:
    return run_checks(build_checks(cfg, stack), wait)
