"""`python -m bgp4mesh verify --stack NAME`: the operator's check after `pulumi up`.

Modelled on `netlab validate`: a list of checks, run at once by a bounded pool, each
retried until it passes or the one wait budget runs out, one PASS/FAIL line each as
it settles, exit 0 only when all pass. Checks run inside the deployed containers (on their own Docker hosts, so the
same code serves prod over ssh://). Where a mock ISP exists, BGP is checked from
the ISP's side too, including what must be absent; against a real upstream only
the border-side checks apply.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import cache
from email.utils import parsedate_to_datetime
from ipaddress import ip_address, ip_network
from typing import Callable

from .birdc import RTR_ANSWERING, Target, bfd_sessions, protocols, roa_state, route_count, routes
from .config import FAILOVER_PORT, PROBE_NAME, BorderRouter, StackConfig
from .agent_config import NODE_STATE, ROUTER_STATE, decode_state
from .plan import RouterPlan, Session, StackPlan
from .naming import docker_name
from .netmaker_api import MEMBER_KEY_SECONDS, key_expires_at, key_usable
from .netmaker_env import API_PORT, SECRETS_FILE
from .waiting import WaitTimeout, until

from .naming import bird_rpki, roa_table

GSHUT = (65535, 0)
BORDER_HEALTH, EGRESS_FAILOVER = ROUTER_STATE, NODE_STATE

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


def target(plan: StackPlan, stack: str, name: str, host: str = "local") -> Target:
    spec = plan.model.host(host)
    return Target(docker_name(stack, name), spec.docker, spec.ssh)


def mesh_ip(t: Target, version: int = 4) -> str:
    """The member's mesh address of the family (its global one, not IPv6's link-local)."""
    proc = t.run("ip", f"-{version}", "-o", "addr", "show", "dev", MESH_INTERFACE, "scope", "global")
    found = re.search(r"inet6? ([0-9a-f.:]+)/", proc.stdout)
    require(found, f"{t.container} has no IPv{version} address on {MESH_INTERFACE} ({(proc.stderr or proc.stdout).strip()})")
    return found.group(1)


def build_checks(plan: StackPlan, stack: str) -> list[Check]:
    cfg = plan.model
    held = cache(mesh_ip)  # a member's address per family, read once a run (a failed read is not kept)
    members = {m.member.name: target(plan, stack, m.member.name, m.member.host) for m in (*plan.routers, *plan.nodes)}
    checks: list[Check] = []
    for router in plan.routers:
        checks += _router_checks(plan, stack, router)
    checks += rpki_checks(plan, stack)
    for name, t in members.items():
        checks.append(Check(f"mesh {name}: WireGuard handshakes with every peer", _handshakes(t, held, plan.mesh_families)))
    checks.append(Check(f"mesh {cfg.mesh.network}: no reusable enrollment key", _no_reusable_key(target(plan, stack, "netmaker-server", cfg.netmaker.host), cfg.mesh.network)))
    checks += _probe_checks(plan, stack) + _gateway_checks(plan, stack)
    for version in plan.mesh_families:
        checks += _inbound_checks(plan, stack, held, version) + _outbound_checks(plan, members, held, version)
    return checks


def _outbound_checks(plan: StackPlan, members: dict[str, Target], held: Callable, version: int) -> list[Check]:
    """Each node reaches every other node and the Internet's test addresses, in the family."""
    internet, checks = _internet_addresses(plan, version), []
    for a in plan.nodes:
        others: dict[str, Target | str] = {b.name: members[b.name] for b in plan.nodes if b.name != a.name}
        if others or internet:
            reached = ", ".join((["every other node"] if others else []) + list(internet))
            checks.append(Check(f"{_ping(version)} {a.name} -> {reached}", _pings_from(members[a.name], {**others, **internet}, held, version=version)))
    return checks


def _ping(version: int) -> str:
    """The check names' word: `ping` for IPv4 (as before IPv6), `ping6` for IPv6."""
    return "ping" if version == 4 else f"ping{version}"


def _router_checks(plan: StackPlan, stack: str, router: RouterPlan) -> list[Check]:
    """One border router's sessions (eBGP, as its mock ISP sees them too, and iBGP), their
    BFD, and whether it announces or is drained."""
    cfg, spec = plan.model, router.spec
    checks: list[Check] = []
    own = [str(p) for p in cfg.prefixes]
    border = target(plan, stack, router.name, spec.host)
    for s in router.sessions:
        up, label = s.upstream, session_label(s)
        checks.append(Check(f"bgp {router.name} -> {label} (AS {up.asn}) Established", _established(border, s.protocol)))
        if up.bfd is not None:
            checks.append(Check(f"bfd {router.name} -> {up.name} {s.neighbor} Up", _bfd_up(border, str(s.neighbor))))
        checks.append(Check(f"bgp {router.name}: nothing unwanted accepted from {label}", _nothing_unwanted(cfg, border, s.protocol)))
        if s.kind == "mock":
            isp = target(plan, stack, up.name, spec.host)
            own = [str(p) for p in cfg.prefixes if p.version == s.version]
            shown = " ".join(map(str, s.as_path)) + (", 65535:0" if spec.maintenance else "")
            checks.append(Check(f"bgp {up.name} sees {router.name}{label[len(up.name):]} Established", _established(isp, s.peer)))
            checks.append(Check(f"bgp {label} holds exactly {', '.join(own)} from AS {cfg.asn} ({shown})", _exactly_own(own, isp, s.peer, list(s.as_path), spec.maintenance)))
    for peer in router.ibgp:
        kind = "iBGP" if peer.version == 4 else f"iBGP IPv{peer.version}"
        checks.append(Check(f"bgp {router.name} -> {peer.router} ({kind}) Established", _established(border, peer.protocol)))
        if cfg.policy.ibgp_bfd is not None:
            checks.append(Check(f"bfd {router.name} -> {peer.router} {peer.address} Up", _bfd_up(border, str(peer.address))))
    checks.append(Check(f"paths {router.name}: {'drained for maintenance' if spec.maintenance else 'announces, serves as gateway'}", _router_state(plan, border, spec)))
    return checks


def _internet_addresses(plan: StackPlan, version: int) -> dict[str, str]:
    """What every node must reach on the Internet through the border in the family, by
    label: each upstream's probe address of the family (a mock ISP's test address unless
    one is set; IPv6: where the mesh routes it), and the lab's probe where the mesh routes to it."""
    isps = {i.name: i for i in plan.isps}
    found: dict[str, str] = {}
    for s in (s for router in plan.routers for s in router.sessions if s.version == 4):
        up = s.upstream
        mock = isps[up.name].test_address_of(version) if s.kind == "mock" else None
        given = up.probe if version == 4 else up.probe6
        probe = str(given) if given is not None else mock
        if probe and (version == 4 or _routed(plan, probe)):
            found[f"{up.name} {probe}"] = probe
    probe = plan.probe.test_address_of(version) if plan.probe else None
    if probe and _routed(plan, probe):
        found[f"probe {probe}"] = probe
    return found


def _routed(plan: StackPlan, address: str) -> bool:
    """The mesh sends `address` out through the border: an egress range or the internet gateway."""
    return plan.gateways.internet is not None or any(ip_address(address) in r for r in plan.egress[ip_address(address).version])


def _inbound_checks(plan: StackPlan, stack: str, held: Callable, version: int) -> list[Check]:
    """From each mock ISP's test address and the lab probe's (Internet hosts, not link
    addresses, which are no route the mesh knows), every node's mesh address answers."""
    if not plan.nodes:
        return []
    nodes: dict[str, Target | str] = {n.name: target(plan, stack, n.name, n.member.host) for n in plan.nodes}
    hosts = {r.name: r.spec.host for r in plan.routers}  # a mock ISP runs beside its router
    sources = {i.name: (target(plan, stack, i.name, hosts[i.router]), i.test_address_of(version)) for i in plan.isps if i.test_address_of(version)}
    probe = plan.probe.test_address_of(version) if plan.probe else None
    if probe:
        sources["probe"] = (target(plan, stack, PROBE_NAME, plan.model.netmaker.host), probe)
    return [
        Check(f"{_ping(version)} inbound {who} {at} -> every node", _pings_from(t, nodes, held, source=at, version=version))
        for who, (t, at) in sources.items()
    ]


def _probe_checks(plan: StackPlan, stack: str) -> list[Check]:
    """The lab's Internet host: the AS path it sees to the own prefixes."""
    if plan.probe is None:
        return []
    cfg = plan.model
    probe_t = target(plan, stack, PROBE_NAME, cfg.netmaker.host)
    return [Check(f"paths probe -> {', '.join(str(p) for p in cfg.prefixes)}", _probe_path(cfg, probe_t, tuple(plan.probe.addresses)))]


def _gateway_checks(plan: StackPlan, stack: str) -> list[Check]:
    """With several egress gateways: each node probes them, and egresses via the first undrained."""
    gateways = [r.spec for r in plan.routers if str(r.member.pinned) in plan.gateways.egress]
    if len(gateways) < 2 or not any(plan.egress.values()):
        return []
    checks: list[Check] = []
    serving = next((r for r in gateways if not r.maintenance), None)
    for node in plan.nodes:
        node_t = target(plan, stack, node.name, node.member.host)
        checks.append(Check(f"paths {node.name}: gateways answer its probes unless drained", _gateway_probes(node_t, gateways)))
        checks.append(Check(f"paths {node.name}: egress via {serving.name if serving else 'no gateway'}", _egress_via(node_t, gateways, serving)))
    return checks


def _established(t: Target, protocol: str) -> Callable[[], str]:
    def run() -> str:
        state = protocols(t).get(protocol)
        require(state is not None, f"no protocol {protocol} on {t.container}")
        require(state.info.startswith("Established"), f"{protocol} is {state.state} {state.info or ''}".strip() + " (expected Established)")
        return "Established"

    return run


def session_label(session: Session) -> str:
    """How checks name an upstream's session: its name, and the family unless IPv4."""
    return session.upstream.name + ("" if session.version == 4 else f" IPv{session.version}")


def _exactly_own(own: list[str], isp: Target, protocol: str, path: list[int], drained: bool) -> Callable[[], str]:
    """The ISP's view of a session: exactly our prefixes of its family (no other upstream's
    route, nothing learned over iBGP), with the configured prepends, and the drain's
    community only when drained."""
    want = sorted((p, path, drained) for p in own)

    def run() -> str:
        got = sorted((r.prefix, r.as_path, GSHUT in r.communities) for r in routes(isp, "protocol", protocol))
        require(got == want, f"ISP holds {got}, expected {want} (prefix, AS path, graceful shutdown)")
        return f"{len(got)} prefix(es), AS path {' '.join(map(str, path))}"

    return run


def _bfd_up(t: Target, neighbor: str) -> Callable[[], str]:
    def run() -> str:
        state = bfd_sessions(t).get(neighbor)
        require(state == "Up", f"BFD session with {neighbor} is {state or 'missing'}")
        return "Up"

    return run


STATE_WITH_AGE = 'cat "$1" || exit 1; at=$(cat "$1.at" 2>/dev/null) || at=0; echo "age=$(( $(date +%s) - at ))"'
"""An agent's state file and how long ago the agent last wrote it (the .at beside it)."""
STALE_SECONDS = 5
"""An agent reports every round (200 ms by default): older than this, it hangs or is gone."""


def state_file(t: Target, path: str) -> dict[str, str]:
    """A key=value state file an agent in the container keeps (border-health, egress-failover),
    with `age`: seconds since the agent last reported (its state means nothing once stale)."""
    proc = t.run("sh", "-c", STATE_WITH_AGE, "state", path)
    require(proc.returncode == 0, f"no {path} in {t.container} ({(proc.stderr or proc.stdout).strip()})")
    try:
        return decode_state(path, proc.stdout)
    except ValueError as e:
        raise CheckFailed(f"{e} in {t.container}") from None


def fresh_state(t: Target, path: str) -> dict[str, str]:
    state = state_file(t, path)
    age = state.get("age", "")
    require(re.fullmatch(r"-?\d+", age), f"{path} in {t.container} has no report time ({state or 'empty'})")
    require(int(age) <= STALE_SECONDS, f"{path} in {t.container} was last reported {age}s ago: its agent hangs or is gone")
    return state


def _router_state(plan: StackPlan, t: Target, router: BorderRouter) -> Callable[[], str]:
    """border-health's view: drained and no gateway exactly when in maintenance; otherwise
    mesh and upstream work, it announces normally and serves as a gateway."""

    def run() -> str:
        s = fresh_state(t, BORDER_HEALTH)
        want = {"maintenance": "1", "announce": "drained", "available": "0"} if router.maintenance else {
            "maintenance": "0", "mesh": "1", "upstream": "1", "port": "1", "announce": "normal", "available": "1"}
        wrong = {k: s.get(k) for k, v in want.items() if s.get(k) != v}
        require(not wrong, f"border-health reports {wrong}, expected {want}")
        active = plan.member_name(s.get("active", ""))
        return f"announce {s['announce']}, inbound for the mesh {'delivered here' if active in ('', router.name) else 'forwarded to ' + active}"

    return run


GATEWAY_PROBE = """for a in "$@"; do
  if timeout 1 bash -c "exec 3<>/dev/tcp/$a/$PORT" 2>/dev/null; then echo "$a answers"
  elif [ $? = 124 ]; then echo "$a silent"; else echo "$a refuses"; fi
done"""
"""What egress-failover does, once: a TCP connect to each gateway's port through the mesh."""


def _gateway_probes(t: Target, gateways: list[BorderRouter]) -> Callable[[], str]:
    """As the node's egress-failover sees them: a serving gateway answers, a drained one
    refuses (RST); a silent one has no path through the mesh."""
    want = {str(g.mesh_ip): "refuses" if g.maintenance else "answers" for g in gateways}
    names = {str(g.mesh_ip): g.name for g in gateways}

    def run() -> str:
        proc = t.run("env", f"PORT={FAILOVER_PORT}", "bash", "-c", GATEWAY_PROBE, "probe", *want)
        got = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
        shown = ", ".join(f"{names[a]} {got.get(a, 'unprobed')}" for a in want)
        require(all(got.get(a) == w for a, w in want.items()), f"{shown} (expected {', '.join(f'{names[a]} {w}' for a, w in want.items())})")
        return shown

    return run


def _egress_via(t: Target, gateways: list[BorderRouter], serving) -> Callable[[], str]:
    want = str(serving.mesh_ip) if serving else ""

    def run() -> str:
        active = fresh_state(t, EGRESS_FAILOVER).get("active", "")
        name = next((g.name for g in gateways if str(g.mesh_ip) == active), active or "none")
        require(active == want, f"egress-failover uses {name}, expected {serving.name if serving else 'none'}")
        return f"egress ranges on {name} ({active})"

    return run


def _probe_path(cfg: StackConfig, probe: Target, families: tuple[int, ...]) -> Callable[[], str]:
    """Which way the Internet sends traffic for our prefixes (the probe's best routes) in
    each family the probe peers in."""

    def run() -> str:
        shown = []
        for prefix in (str(p) for p in cfg.prefixes if p.version in families):
            best = next((r for r in routes(probe, prefix) if r.best), None)
            require(best is not None, f"the probe has no route to {prefix}")
            isp = next((u.name for u in cfg.upstreams if best.as_path[:1] == [u.asn]), "?")
            shown.append(f"{prefix} via {isp} (AS path {' '.join(map(str, best.as_path))})")
        return "; ".join(shown)

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
            longest = pol.length_range(net.version)[1]
            if net.prefixlen > longest:
                bad.append(f"{r.prefix} is longer than /{longest}")
            if 23456 in r.as_path:
                bad.append(f"{r.prefix} has AS 23456 in its path")
            if len(r.as_path) > pol.max_as_path_length:
                bad.append(f"{r.prefix} has a path of {len(r.as_path)} ASNs")
        require(not bad, "; ".join(bad))
        return f"{len(learned)} route(s) accepted, none unwanted"

    return run


def rpki_checks(plan: StackPlan, stack: str) -> list[Check]:
    """Route origin validation on each border router: its caches, and each own prefix's
    ROA state as the router sees it (what every validating network sees)."""
    cfg = plan.model
    if cfg.rpki is None:
        return []
    own = ", ".join(str(p) for p in cfg.prefixes)
    checks = []
    for router in (r.spec for r in plan.routers):
        border = target(plan, stack, router.name, router.host)
        checks.append(Check(f"rpki {router.name}: RTR caches answer", _rtr_caches(cfg, border)))
        checks.append(Check(f"rpki {router.name}: {own} from AS {cfg.asn} not invalid", _own_roa_states(cfg, border)))
    return checks


def _rtr_caches(cfg: StackConfig, border: Target) -> Callable[[], str]:
    """At least one cache answers; with none, say what validation does now (fail open)."""
    names = [bird_rpki(i) for i in range(len(cfg.rtr_caches))]
    tables = [roa_table(v) for v in sorted({p.version for p in cfg.prefixes})]

    def run() -> str:
        found = protocols(border)
        states = {n: (found[n].info or found[n].state) if n in found else "missing" for n in names}
        shown = ", ".join(f"{n} {s}" for n, s in states.items())
        answering = [n for n, s in states.items() if s in RTR_ANSWERING]
        if not answering:
            kept = sum(route_count(border, t) for t in tables)
            then = f"{kept} ROA(s) kept until they expire, then every route is not found" if kept else "no ROAs: every route is not found"
            raise CheckFailed(f"fail open: no cache ({shown}); {then}")
        return f"{len(answering)} of {len(names)} answering ({shown})"

    return run


def _own_roa_states(cfg: StackConfig, border: Target) -> Callable[[], str]:
    """valid or not found passes; invalid fails: validating networks drop the announcement."""

    def run() -> str:
        states = {p: roa_state(border, roa_table(p.version), str(p), cfg.asn) for p in cfg.prefixes}
        shown = ", ".join(f"{p} {s}" for p, s in states.items())
        require("invalid" not in states.values(), f"{shown}: networks that validate drop an invalid announcement")
        return shown

    return run


def latest_handshakes(t: Target) -> dict[str, int]:
    """The member's WireGuard peers on the mesh: public key -> Unix time of the latest
    handshake (0: none yet). `verify` and `graph --live` read tunnels through this."""
    proc = t.run("wg", "show", MESH_INTERFACE, "latest-handshakes")
    require(proc.returncode == 0, f"wg show failed on {t.container}: {(proc.stderr or proc.stdout).strip()}")
    return {key: int(ts) for key, ts in (line.split() for line in proc.stdout.splitlines() if line.strip())}


def _handshakes(t: Target, held: Callable[[Target, int], str], families: tuple[int, ...]) -> Callable[[], str]:
    """Every peer's handshake is recent; then the member's mesh address of each family, read
    once here (these checks run first, spread over the workers) for the ping checks."""

    def run() -> str:
        rows = list(latest_handshakes(t).items())
        require(rows, f"{t.container} has no WireGuard peers")
        now = time.time()
        stale = [key[:8] for key, ts in rows if ts == 0 or now - ts > HANDSHAKE_FRESH_SECONDS]
        require(not stale, f"{len(stale)} of {len(rows)} peers without a recent handshake ({', '.join(stale)})")
        return f"{len(rows)} peer(s), holds {', '.join(held(t, v) for v in families)}"

    return run


LIST_KEYS = r"""key=${MASTER_KEY:-}
if [ -z "$key" ] && [ -r "$1" ]; then key=$(sed -n 's/.*"masterkey": *"\([^"]*\)".*/\1/p' "$1"); fi
[ -n "$key" ] || { echo "no master key in the environment or $1" >&2; exit 1; }
send() {
  if command -v bash >/dev/null 2>&1; then bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" && cat >&3 && cat <&3' "$1"
  else busybox nc 127.0.0.1 "$1"; fi
}
printf 'GET /api/v1/enrollment-keys HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n' "$key" | send "$2"
"""
"""The server's enrollment keys, asked inside its container (Debian with bash, or the
upstream Alpine image with busybox) with the master key it runs with, from its environment
or its config file: only shell builtins touch the key, so no process's arguments show it."""


def enrollment_keys(server: Target) -> tuple[float, list[dict]]:
    """(the server's clock, its enrollment keys): token and value are never shown."""
    proc = server.run("sh", "-c", LIST_KEYS, "list-keys", SECRETS_FILE, str(API_PORT))
    head, _, body = proc.stdout.replace("\r\n", "\n").partition("\n\n")  # text mode may already have done it
    status = head.split("\n", 1)[0]
    require(proc.returncode == 0 and " 200 " in f"{status} ", f"listing enrollment keys in {server.container}: {status or proc.stderr.strip() or 'no answer'}")
    date = re.search(r"(?im)^date: (.+)$", head)
    try:
        now = parsedate_to_datetime(date.group(1).strip()).timestamp() if date else time.time()
        return now, json.loads(body) or []
    except (TypeError, ValueError) as exc:
        raise CheckFailed(f"the server's answer is not a key list ({type(exc).__name__})") from None


def reusable(key: dict, now: float) -> str | None:
    """Why `key` could still let a host join more than once, or long after it was meant to."""
    if not key_usable(key, now):
        return None
    left, expires = key.get("uses_remaining") or 0, key_expires_at(key)
    if left > 0:
        if expires is None:
            return f"{left} use(s) left, no expiry"
        return f"{left} use(s) left, unused past its expiry" if now >= expires else None
    if expires is None:
        return "unlimited, no expiry"
    return f"reusable for {int(expires - now)} s more" if expires - now > MEMBER_KEY_SECONDS else None


def _no_reusable_key(server: Target, network: str) -> Callable[[], str]:
    """Every key of the network is spent, expired or a member's one-use key not yet due:
    none is unlimited, and the network's default key is gone (NetmakerNetwork)."""

    def run() -> str:
        now, keys = enrollment_keys(server)
        ours = [k for k in keys if network in (k.get("networks") or []) or network in (k.get("tags") or [])[:1]]
        bad = [f"'{(k.get('tags') or ['?'])[0]}' ({why})" for k in ours if (why := reusable(k, now))]
        require(not bad, f"reusable: {', '.join(bad)}")
        return f"{len(ours)} key(s), none reusable"

    return run


PING_EACH = 'src=$1; shift; for a in "$@"; do (ping -c 1 -W 1 -q ${src:+-I "$src"} "$a" >/dev/null 2>&1 && echo "$a") & done; wait'
"""Ping every address given after the source (empty: the route's) at once; print those that answered."""


def _pings_from(src: Target, peers: dict[str, Target | str], held: Callable[[Target, int], str], source: str | None = None, version: int = 4) -> Callable[[], str]:
    """`src` (from `source`, else the route's address) reaches every peer: a member's mesh
    address of the family or a fixed one. One `docker exec` pings them all at once, and a
    retry pings only those that have not answered yet. Fails naming them."""
    left = dict(peers)

    def run() -> str:
        wanted = {(t if isinstance(t, str) else held(t, version)): name for name, t in sorted(left.items())}
        proc = src.run("sh", "-c", PING_EACH, "ping-each", source or "", *wanted)
        for address in proc.stdout.split():
            left.pop(wanted.get(address, ""), None)
        if left:
            silent = sorted(((n, a) for a, n in wanted.items() if n in left))
            shown = [n + (_why_silent(src, peers[n], a, held, version) if source is None else "") for n, a in silent]
            raise CheckFailed(f"{src.container} cannot reach {len(left)} of {len(peers)}: {', '.join(shown)}")
        return f"all {len(peers)} answer"

    return run


def _why_silent(src: Target, peer: Target | str, address: str, held: Callable[[Target, int], str], version: int) -> str:
    """Why a member does not answer a member, where WireGuard tells: a peer update that never
    arrived (one side's peers do not list the other's address) is not a lost packet."""
    if isinstance(peer, str):
        return ""
    if _unheld(src, [address]):
        return f" ({address}: no WireGuard peer here holds it)"
    own = held(src, version)
    return f" ({address}: its WireGuard peers do not hold {own})" if _unheld(peer, [own]) else ""


def _unheld(member: Target, addresses: list[str]) -> set[str]:
    """Which of the mesh `addresses` no WireGuard peer of `member` lists as its own (a /32 or
    /128 missing from its allowed IPs: a peer update that never arrived, not a lost ping)."""
    if not addresses:
        return set()
    proc = member.run("wg", "show", MESH_INTERFACE, "allowed-ips")
    if proc.returncode != 0:
        return set()
    listed = {ip.split("/")[0] for line in proc.stdout.splitlines() for ip in line.split()[1:]}
    return {a for a in addresses if a not in listed}


VERIFY_WORKERS = 8
"""Checks in flight at once: each is a `docker exec` or two, so a 100-node mesh's few
hundred checks settle within one budget instead of one budget each."""


def run_checks(checks: list[Check], wait: float, out: Callable[[str], None] = print, workers: int = VERIFY_WORKERS) -> int:
    """Run every check concurrently until it passes or `wait` seconds from now have
    passed; print each result as it settles, so a broken member is named at once."""
    deadline = time.monotonic() + wait
    failed = 0
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(checks)))) as pool:
        for settled in as_completed([pool.submit(_settle, c, deadline) for c in checks]):
            passed, line = settled.result()
            out(line)
            failed += not passed
    out(f"{len(checks) - failed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def _settle(check: Check, deadline: float) -> tuple[bool, str]:
    try:
        return True, f"PASS {check.name}: {until(check.run, max(0.0, deadline - time.monotonic()), every=1, retry_on=RETRIED)}"
    except WaitTimeout as exc:
        return False, f"FAIL {check.name}: {exc}"


def run_verify(stack: str, plan: StackPlan, wait: float) -> int:
    return run_checks(build_checks(plan, stack), wait)
