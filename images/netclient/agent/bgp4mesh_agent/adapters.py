"""The system as the agent sees and changes it: TCP probes, birdc, iptables, ip, wg, the
daemon's supervisor and the state files. Thin on purpose: every decision is in core.py."""

from __future__ import annotations

import errno
import os
import re
import select
import socket
import subprocess
import sys
import time

from . import core
from .schema import DEFAULT6_RULES, DEFAULT6_TABLE, RULE_PREF, TABLE

LIB = "/usr/local/lib/bgp4mesh/netclient.sh"
"""The netclient image's shell helpers: restart_daemon asks the daemon's supervisor."""
NORMAL, DRAINED = "/etc/bird/bird.conf", "/etc/bird/bird-drained.conf"
UNREACHABLE_METRIC = "4242"
"""The last resort: every real route to the mesh range wins."""
FALLBACK_METRIC = "4096"
"""A node's own route for an egress range: netclient's are 256 and up."""


class Log:
    def __init__(self, name: str):
        self.name = name

    def __call__(self, text: str) -> None:
        print(f"[{self.name}] {text}", file=sys.stderr, flush=True)


def run(*args: str, timeout: float = 10) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except (subprocess.TimeoutExpired, OSError) as e:
        return subprocess.CompletedProcess(args, 124, "", str(e))


def probe(addresses, port: int, timeout_ms: int) -> dict[str, bool]:
    """A TCP connect to each address at once; True where it completed within the timeout."""
    pending: dict[socket.socket, str] = {}
    result = {a: False for a in addresses}
    for address in result:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        code = s.connect_ex((address, port))
        if code == 0:
            result[address] = True
            s.close()
        elif code in (errno.EINPROGRESS, errno.EAGAIN):
            pending[s] = address
        else:
            s.close()
    deadline = time.monotonic() + timeout_ms / 1000
    while pending and (left := deadline - time.monotonic()) > 0:
        _, ready, _ = select.select([], list(pending), [], left)
        for s in ready:
            result[pending.pop(s)] = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            s.close()
    for s in pending:
        s.close()
    return result


PROTOCOL_LINE = re.compile(r"^(\S+)\s+(\S+)\s+\S+\s+\S+\s+(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?|\S+)(?:\s+(.*))?$")
"""A `show protocols` line: Name, Proto, Table, State, Since, Info. Since is a date and a time
(`timeformat protocol iso long`, which prometheus-bird-exporter needs) or one word."""


def upstream_established(protocols: tuple[str, ...]) -> bool:
    """One of the eBGP sessions is Established (`birdc show protocols`)."""
    for line in run("birdc", "show", "protocols", timeout=5).stdout.splitlines():
        found = PROTOCOL_LINE.match(line)
        if found and found[1] in protocols and found[2] == "BGP" and (found[3] or "").startswith("Established"):
            return True
    return False


def mesh_allowed_ips(interface: str) -> list[tuple[str, tuple[str, ...]]]:
    """`wg show` of the mesh interface: (public key, allowed IPs) per peer (bounded: an
    agent must not hang on a busy userspace WireGuard)."""
    out = run("wg", "show", interface, "allowed-ips", timeout=5).stdout
    return [(w[0], tuple(w[1:])) for w in (line.split() for line in out.splitlines()) if w]


def has_address(interface: str) -> bool:
    return "inet" in run("ip", "-4", "-o", "addr", "show", "dev", interface).stdout


def routed(interface: str) -> frozenset[str]:
    """The prefixes routed into `interface`, both families (egress ranges may be IPv6)."""
    out = "".join(run("ip", family, "route", "show", "dev", interface).stdout for family in ("-4", "-6"))
    return frozenset(line.split()[0] for line in out.splitlines() if line.strip())


def has_default6(interface: str) -> bool:
    """IPv6's default into `interface` and the rules that look it up are in place."""
    route = run("ip", "-6", "route", "show", "table", DEFAULT6_TABLE, "default", "dev", interface).stdout.strip()
    rules = run("ip", "-6", "rule", "show").stdout
    return bool(route) and all(f"{pref}:" in rules for pref, _table, _extra in DEFAULT6_RULES)


class System:
    """Carries out core's actions; returns whether each worked. Core decides in IPv4 terms
    (gateways by mesh and iBGP address); with a v6 mesh (`mesh_range6`, `ibgp6`: each
    router's v4 iBGP address -> its v6 one) the routes and rules are made for IPv6 too."""

    def __init__(self, log: Log, interface: str, port: int, mesh_range: str = "", mesh_range6: str = "", ibgp6: dict[str, str] | None = None):
        self.log, self.interface, self.port, self.mesh_range = log, interface, port, mesh_range
        self.mesh_range6, self.ibgp6 = mesh_range6, ibgp6 or {}

    def _families(self, mesh_range: str, ibgp: str) -> list[tuple[str, str, str]]:
        """(ip's family flag, the mesh range, the iBGP address) of each family the mesh carries."""
        v6 = [("-6", self.mesh_range6, self.ibgp6.get(ibgp, ""))] if self.mesh_range6 else []
        return [("-4", mesh_range, ibgp), *v6]

    def do(self, action) -> bool:
        handler = getattr(self, "_" + type(action).__name__)
        return handler(action)

    def _Log(self, a: core.Log) -> bool:
        self.log(a.text)
        return True

    def _Refuse(self, a: core.Refuse) -> bool:
        """Logs what iptables needed changing, after the reason (nothing when it agreed)."""
        rule = ["INPUT", "-i", self.interface, "-p", "tcp", "--dport", str(self.port), "-j", "REJECT", "--reject-with", "tcp-reset"]
        if a.refuse:
            if run("iptables", "-C", *rule).returncode == 0:
                return True
            ok = run("iptables", "-I", *rule).returncode == 0
            if ok:
                self.log(f"{a.why}: inserted the refusal")
            return ok
        removed = 0
        while run("iptables", "-D", *rule).returncode == 0:
            removed += 1
        if removed:
            self.log(f"{a.why}: removed {removed} refusal rule(s)")
        return True

    def _Announce(self, a: core.Announce) -> bool:
        path = DRAINED if a.mode == "drained" else NORMAL
        proc = run("birdc", "configure", f'"{path}"')
        reply = (proc.stdout + proc.stderr).strip()
        self.log(f"announcing {a.mode}" if "Reconfigur" in reply else f"birdc configure {path}: {reply}")
        return "Reconfigur" in reply

    def _ForwardTo(self, a: core.ForwardTo) -> bool:
        if not a.via:
            for family, _, _ in self._families(self.mesh_range, ""):
                run("ip", family, "route", "flush", "table", TABLE)
            self.log("inbound for the mesh: delivered here")
            return True
        ok = all(
            run("ip", family, "route", "replace", rng, "via", via, "table", TABLE).returncode == 0
            for family, rng, via in self._families(self.mesh_range, a.via)
        )
        if ok:
            self.log(f"inbound for the mesh: forwarded to {a.gateway} ({a.via})")
        return ok

    def _RestartDaemon(self, a: core.RestartDaemon) -> bool:
        ok = run("bash", "-c", f". {LIB} && restart_daemon").returncode == 0
        what = "restarted the netclient daemon" if ok else "and no daemon to restart"
        self.log(f"netclient's port {self.port} has been closed for {a.closed_for_s:.0f}s with the mesh up{': ' if ok else ', '}{what}")
        return ok

    def _ClearRules(self, a: core.ClearRules) -> bool:
        for family, rng, _ in self._families(a.mesh_range, ""):
            for pref in range(RULE_PREF, RULE_PREF + 4):
                while run("ip", family, "rule", "del", "pref", str(pref)).returncode == 0:
                    pass
            run("ip", family, "route", "flush", "table", TABLE)
            if rng:
                run("ip", family, "route", "del", "unreachable", rng, "metric", UNREACHABLE_METRIC)
        return True

    def _InstallRules(self, a: core.InstallRules) -> bool:
        """What arrives for the mesh from anywhere but here, the mesh or the iBGP link goes by
        table 44; the mesh range is reachable only through the mesh (until netclient's
        interface is up, a fallback refuses it: else a probe of the other gateway would find
        it over table 44 or the upstream, and count as a working mesh)."""
        return all(self._install(family, rng, own) for family, rng, own in self._families(a.mesh_range, a.own_ibgp))

    def _install(self, family: str, mesh_range: str, own_ibgp: str) -> bool:
        run("ip", family, "route", "replace", "unreachable", mesh_range, "metric", UNREACHABLE_METRIC)
        dev = next((w[1] for w in (line.split() for line in run("ip", family, "-o", "addr", "show").stdout.splitlines())
                    if len(w) > 3 and w[3].split("/")[0] == own_ibgp), "")
        rules = [["lo", "main"], [self.interface, "main"], *([[dev, "main"]] if dev else [])]
        for pref, (iif, table) in enumerate(rules, RULE_PREF):
            run("ip", family, "rule", "add", "pref", str(pref), "to", mesh_range, "iif", iif, "lookup", table)
        return run("ip", family, "rule", "add", "pref", str(RULE_PREF + 3), "to", mesh_range, "lookup", TABLE).returncode == 0

    def _SetAllowedIps(self, a: core.SetAllowedIps) -> bool:
        return run("wg", "set", self.interface, "peer", a.key, "allowed-ips", ",".join(a.ips)).returncode == 0

    def _FallbackRoute(self, a: core.FallbackRoute) -> bool:
        return run("ip", "route", "replace", a.range, "dev", self.interface, "metric", FALLBACK_METRIC).returncode == 0

    def _DefaultRoute6(self, a: core.DefaultRoute6) -> bool:
        ok = run("ip", "-6", "route", "replace", "default", "dev", self.interface, "table", DEFAULT6_TABLE).returncode == 0
        for pref, table, extra in DEFAULT6_RULES:
            while run("ip", "-6", "rule", "del", "pref", str(pref)).returncode == 0:
                pass
            ok = run("ip", "-6", "rule", "add", "pref", str(pref), "lookup", table, *extra).returncode == 0 and ok
        return ok


class Reporter:
    """The agent's state for `verify`, written whole when it changed (a reader never sees
    half of it); PATH.at gets the time on every round, so a state whose agent died or hangs
    is seen to be stale."""

    def __init__(self, path: str):
        self.path, self.last = path, None
        os.makedirs(os.path.dirname(path), exist_ok=True)

    def __call__(self, text: str) -> None:
        _write(self.path + ".at", f"{int(time.time())}\n")
        if text != self.last:
            _write(self.path, text)
            self.last = text


def _write(path: str, text: str) -> None:
    with open(path + ".new", "w") as f:
        f.write(text)
    os.replace(path + ".new", path)
