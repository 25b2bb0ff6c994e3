"""`graph --live`: what a running stack shows now, read as `verify` reads it (birdc in each
border router, `wg show` in each member), for graph.py to colour.

Only reading lives here, so the drawing stays a pure function of the plan and an
`Observed`. A container that does not answer leaves its keys out: the picture shows
that part red as "no answer" instead of failing the whole picture.
"""

from __future__ import annotations

import time
from typing import Optional

from .birdc import Protocol, Target, bfd_sessions, protocols
from .graph import Observed, gateway_names
from .plan import RouterPlan, StackPlan
from .verify import MESH_INTERFACE, RETRIED, latest_handshakes, require, target


def observe(plan: StackPlan, stack: str) -> Observed:
    """Every router's sessions and BFD, and every member's handshake with each gateway."""
    sessions: dict[tuple[str, str], str] = {}
    bfd: dict[tuple[str, str], str] = {}
    for r in plan.routers:
        t = target(plan, stack, r.name, r.spec.host)
        sessions.update({(r.name, name): session_state(p) for name, p in _read(protocols, t, {}).items()})
        if _runs_bfd(plan, r):
            bfd.update({(r.name, neighbor): state for neighbor, state in _read(bfd_sessions, t, {}).items()})
    return Observed(sessions, bfd, _handshakes(plan, stack))


def session_state(p: Protocol) -> str:
    """BIRD's info word (Established, Active, Connect...) or, without one, the protocol state."""
    return p.info.split()[0] if p.info else p.state


def _runs_bfd(plan: StackPlan, r: RouterPlan) -> bool:
    return any(s.upstream.bfd for s in r.sessions) or (bool(r.ibgp) and plan.model.policy.ibgp_bfd is not None)


def _handshakes(plan: StackPlan, stack: str) -> dict[tuple[str, str], Optional[float]]:
    """(member, gateway) -> seconds since their latest handshake (None: none), by each
    member's own `wg show`; gateways are known by the public key they show."""
    members = {m.member.name: target(plan, stack, m.member.name, m.member.host) for m in (*plan.routers, *plan.nodes)}
    keys = {g: _read(public_key, members[g], None) for g in gateway_names(plan)}
    found: dict[tuple[str, str], Optional[float]] = {}
    for name, t in members.items():
        peers = _read(latest_handshakes, t, None)
        if peers is None:
            continue
        now = time.time()
        for gateway, key in keys.items():
            if gateway != name and key is not None:
                at = peers.get(key, 0)
                found[(name, gateway)] = now - at if at else None
    return found


def public_key(t: Target) -> str:
    """The member's WireGuard public key on the mesh."""
    proc = t.run("wg", "show", MESH_INTERFACE, "public-key")
    require(proc.returncode == 0 and proc.stdout.strip(), f"no WireGuard key on {t.container}: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout.strip()


def _read(read, t: Target, otherwise):
    """`read(t)`, or `otherwise` when the container does not answer (stopped, no BIRD yet)."""
    try:
        return read(t)
    except RETRIED:
        return otherwise
