"""Whether this machine's neighbour (ARP) table holds a lab of this size.

A lab puts every member, Netmaker's front and the lab's services on one Docker bridge, and
each member talks to every other directly (WireGuard, the control plane, scrapes), so each
container's network namespace keeps a neighbour entry for each. Linux keeps the entries of
every namespace in one table, capped by net.ipv4.neigh.default.gc_thresh3 (1024 by default):
past the cap a new neighbour is not resolved ("neighbor table overflow!" in the kernel log)
and new connections time out. A 40-node lab overflowed it, its joins timing out against the
front. scripts/bootstrap raises the cap; `check` and `pulumi up` warn when a lab needs more."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .plan import StackPlan

GC_THRESH3 = Path("/proc/sys/net/ipv4/neigh/default/gc_thresh3")
SYSCTL = "net.ipv4.neigh.default.gc_thresh3"


def lab_neighbours(plan: StackPlan) -> int:
    """Entries a converged lab keeps: each container on the underlay knows each other one."""
    u = plan.underlay
    if u is None:
        return 0
    on_underlay = len(u.routers) + len(u.nodes) + len(u.netmaker) + (u.monitoring is not None)
    return on_underlay * on_underlay


def neighbour_warning(plan: StackPlan, cap_file: Path = GC_THRESH3) -> Optional[str]:
    """A WARNING when the lab needs more neighbour entries than this machine's cap; None when
    it fits, when the stack is not a lab, or when the cap cannot be read (not Linux)."""
    needed = lab_neighbours(plan)
    try:
        cap = int(cap_file.read_text())
    except (OSError, ValueError):
        return None
    if needed <= cap:
        return None
    return (f"WARNING: this lab keeps about {needed} neighbour (ARP) entries, over this machine's {SYSCTL} = {cap}: "
            f"members would fail to reach each other; run ./scripts/bootstrap, or sysctl -w {SYSCTL}={4 * needed}")
