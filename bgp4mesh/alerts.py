"""The shipped Prometheus alert rules, rendered from the plan.

What the stack should have (its BGP and BFD sessions, each session's import limit, the own
prefixes and how many of them each mock ISP must import, the members, the RTR caches) comes
from the plan as recording rules, `facts`
(bgp4mesh.metrics.FACTS); the alerts compare the measured series with them. So limits and
prefix counts follow the stack with no hand edit, and a session or member whose series
are missing altogether (BIRD or an exporter down) alerts instead of going quiet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from . import metrics
from .jinja import template
from .metrics import Metric
from .naming import bird_rpki
from .plan import RouterPlan, StackPlan

TEMPLATE = "alert-rules.yml.j2"
FACTS_GROUP = "bgp4mesh-facts"
ALERTS_GROUP = "bgp4mesh-alerts"

IMPORT_WARN_FRACTION = 0.8
"""An eBGP channel importing more than this share of its import limit is near the limit."""
HANDSHAKE_MAX_AGE = 180
"""Seconds without a WireGuard handshake: a live peer rekeys every 2 minutes (netclient keeps
persistent keepalives on), so 3 minutes means the tunnel is gone."""


@dataclass(frozen=True)
class Alert:
    for_: str
    severity: str


ALERTS = {
    # 0s: the issue asks for the alert within 2 scrape intervals; BIRD's hold timer and BFD
    # already debounce a session.
    "BgpSessionDown": Alert("0s", "critical"),
    "BfdSessionDown": Alert("0s", "warning"),
    # A session just established takes a moment to receive its routes.
    "BgpNoPrefixesImported": Alert("2m", "warning"),
    "BgpImportNearLimit": Alert("5m", "warning"),
    "BgpExportNotOwnPrefixes": Alert("2m", "critical"),
    # Propagation through the upstream takes a moment.
    "OwnPrefixNotSeenUpstream": Alert("2m", "critical"),
    # The 3 minutes are in the expression (HANDSHAKE_MAX_AGE).
    "WireguardHandshakeStale": Alert("0s", "warning"),
    "NetmakerMemberOffline": Alert("2m", "warning"),
    "RpkiCacheDown": Alert("2m", "warning"),
    "RpkiCacheEmpty": Alert("2m", "warning"),
}


@dataclass(frozen=True)
class Fact:
    """One recording rule: `metric` with these labels is `value`."""

    metric: Metric
    labels: dict[str, str] = field(default_factory=dict)
    value: Union[int, float] = 1


def render_alert_rules(plan: StackPlan) -> str:
    """The Prometheus rule file of the stack (facts group, then alerts group)."""
    return template(TEMPLATE).render(
        facts=plan_facts(plan),
        m=metrics,
        alerts=ALERTS,
        facts_group=FACTS_GROUP,
        alerts_group=ALERTS_GROUP,
        import_warn_fraction=IMPORT_WARN_FRACTION,
        handshake_max_age=HANDSHAKE_MAX_AGE,
    )


def plan_facts(plan: StackPlan) -> list[Fact]:
    """Everything the alerts compare against, in a stable order."""
    facts = [f for router in plan.routers for f in _router_facts(plan, router)]
    own = _own_prefix_facts(plan)
    facts += own
    facts += [
        Fact(metrics.FACT_UPSTREAM_OWN_PREFIXES, {metrics.TARGET_UPSTREAM: isp.name, "name": s.peer, **f.labels}, f.value)
        for isp in plan.isps
        for s in isp.sessions
        for f in own
        if f.labels["ip_version"] == str(s.version)
    ]
    facts += [Fact(metrics.FACT_MESH_MEMBER, {"member": m.name}) for m in (*plan.routers, *plan.nodes)]
    return facts


def _router_facts(plan: StackPlan, router: RouterPlan) -> list[Fact]:
    """A border router's sessions (eBGP with their limits, iBGP), BFD sessions and caches."""
    at = {metrics.TARGET_ROUTER: router.name}
    facts = []
    for s in router.sessions:
        session = {**at, "name": s.protocol, "peer": s.upstream.name}
        facts += [Fact(metrics.FACT_BGP_SESSION, session), Fact(metrics.FACT_IMPORT_LIMIT, session, s.upstream.max_prefixes)]
        if s.upstream.bfd:
            facts.append(Fact(metrics.FACT_BFD_SESSION, {**at, "ip": str(s.neighbor), "peer": s.upstream.name}))
    for p in router.ibgp:
        facts.append(Fact(metrics.FACT_BGP_SESSION, {**at, "name": p.protocol, "peer": p.router}))
        if plan.model.policy.ibgp_bfd:
            facts.append(Fact(metrics.FACT_BFD_SESSION, {**at, "ip": str(p.address), "peer": p.router}))
    if plan.model.rpki is not None:
        caches = plan.model.rtr_caches
        facts += [Fact(metrics.FACT_RPKI_CACHE, {**at, "name": bird_rpki(i), "cache": f"{c.address}:{c.port}"}) for i, c in enumerate(caches)]
    return facts


def _own_prefix_facts(plan: StackPlan) -> list[Fact]:
    """Per address family with own prefixes: how many every eBGP channel must export."""
    versions = sorted({p.version for p in plan.model.prefixes})
    return [
        Fact(metrics.FACT_OWN_PREFIXES, {"ip_version": str(v)}, sum(p.version == v for p in plan.model.prefixes))
        for v in versions
    ]
