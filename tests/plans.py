"""Tests hold models (a stack file, or one edited in place); the product renders and checks
from the plan. These build the plan of a model and hand the renderer the part asked for."""

from __future__ import annotations

import copy
from ipaddress import ip_network

from bgp4mesh.config import BorderRouter, Host, StackConfig, Upstream
from bgp4mesh.host_plan import HostPlan, render_host_prep
from bgp4mesh.plan import StackPlan, build_plan
from bgp4mesh.render import render_all, render_border, render_isp, render_vrps


def of(cfg: StackConfig) -> StackPlan:
    return build_plan(cfg)


def border(cfg: StackConfig, router: BorderRouter) -> dict[str, str]:
    plan = build_plan(cfg)
    return render_border(plan, plan.router(router.name))


def isp(cfg: StackConfig, upstream: Upstream) -> dict[str, str]:
    plan = build_plan(cfg)
    return render_isp(plan, next(i for i in plan.isps if i.name == upstream.name))


def all_files(cfg: StackConfig) -> dict[str, dict[str, str]]:
    return render_all(build_plan(cfg))


def vrps(cfg: StackConfig) -> str:
    return render_vrps(build_plan(cfg))


def host(cfg: StackConfig, spec: Host) -> HostPlan:
    return build_plan(cfg).host(spec.name)


def host_prep(cfg: StackConfig, spec: Host) -> str:
    return render_host_prep(host(cfg, spec))


IPV6_SESSION_KEYS = ("link6", "neighbor6", "local_address6", "probe6")


def ipv4_only(raw: dict) -> dict:
    """A copy of the raw model `raw` with every IPv6 value taken out: own prefixes, the
    upstreams' IPv6 sessions and mock announcements, the mesh's IPv6 range and egress,
    the lab's IPv6 ROAs. For tests about IPv4 behaviour that replace the prefixes, or that
    add an IPv6 setup of their own to a stack (dev) that ships dual-stack."""

    def v4(items):
        return [x for x in items if ip_network(x["prefix"] if isinstance(x, dict) else x).version == 4]

    raw = copy.deepcopy(raw)
    raw["prefixes"] = v4(raw.get("prefixes", []))
    for u in raw.get("upstreams", []):
        for key in IPV6_SESSION_KEYS:
            u.pop(key, None)
        if isinstance(u.get("mock"), dict) and "announce" in u["mock"]:
            u["mock"]["announce"] = v4(u["mock"]["announce"])
    mesh = raw.get("mesh")
    if isinstance(mesh, dict):
        mesh.pop("range6", None)
        if "egress_ranges" in mesh:
            mesh["egress_ranges"] = v4(mesh["egress_ranges"])
    lab = raw.get("lab")
    if isinstance(lab, dict) and "roas" in lab:
        lab["roas"] = v4(lab["roas"])
    return raw
