"""Tests hold models (a stack file, or one edited in place); the product renders and checks
from the plan. These build the plan of a model and hand the renderer the part asked for."""

from __future__ import annotations

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
