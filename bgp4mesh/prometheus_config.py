"""Prometheus's and Alertmanager's configuration, rendered from the stack's monitoring plan.

Scrape targets, their labels and the intervals are the plan's (bgp4mesh.monitoring), so a
member added to the stack is scraped after `pulumi up` with no hand edit; the rules are
bgp4mesh.alerts'. What changes with the members (the targets, one file_sd file per job, and
the rules, whose facts list the members) is written into the running container
(`live_files`, images/monitoring/monitoring-update), so adding a node keeps Prometheus and
its samples; only prometheus.yml and alertmanager.yml come with the container.
Alertmanager holds the alerts for its API and sends them nowhere: a lab has no Internet; an
operator who wants mail or a webhook adds a receiver to alertmanager.yml.j2.
"""

from __future__ import annotations

import json
from itertools import groupby
from pathlib import Path

from . import monitoring
from .alerts import render_alert_rules
from .jinja import template
from .monitoring import MonitoringPlan
from .plan import StackPlan

CONFIG_DIR = "/etc/prometheus"
"""Where the monitoring image's Prometheus and Alertmanager read their files (Debian's)."""
PROMETHEUS_FILE, ALERTMANAGER_FILE, RULES_FILE = "prometheus.yml", "alertmanager.yml", "alert-rules.yml"
TARGETS_DIR, RULES_DIR = f"{CONFIG_DIR}/targets", f"{CONFIG_DIR}/rules"
"""Written into the running container (live_files): Prometheus reads file_sd files as they
change and the rules on SIGHUP."""
CONSOLES_DIR = f"{CONFIG_DIR}/consoles"
"""Prometheus's console templates (--web.console.templates): a page at /consoles/<file>."""
CONSOLE_PAGES = Path(__file__).resolve().parent.parent / "dashboards" / "console"
"""The repo's console pages (*.html), which need nothing but Prometheus."""
MAX_SCRAPE_TIMEOUT = 10
"""Prometheus's default scrape timeout, which may not exceed the scrape interval."""


def render_prometheus(plan: StackPlan) -> str:
    """prometheus.yml: one scrape job per exporter kind, its targets in TARGETS_DIR/<job>.json."""
    mon = _monitoring(plan)
    return template("prometheus.yml.j2").render(
        interval=mon.scrape_interval,
        timeout=min(mon.scrape_interval, MAX_SCRAPE_TIMEOUT),
        rules=f"{RULES_DIR}/*.yml",
        alertmanager=f"127.0.0.1:{monitoring.ALERTMANAGER_PORT}",
        jobs=[(job, f"{TARGETS_DIR}/{job}.json") for job in sorted({t.job for t in mon.targets})],
    )


def live_files(plan: StackPlan) -> dict[str, str]:
    """{absolute path: content} of what changes with the members: each job's targets with
    their labels (file_sd JSON) and the rule file."""
    by_job = sorted(_monitoring(plan).targets, key=lambda t: t.job)
    files = {
        f"{TARGETS_DIR}/{job}.json": json.dumps([{"targets": [t.address], "labels": dict(t.labels)} for t in targets], indent=1) + "\n"
        for job, targets in groupby(by_job, key=lambda t: t.job)
    }
    return files | {f"{RULES_DIR}/{RULES_FILE}": render_alert_rules(plan)}


def render_alertmanager() -> str:
    """alertmanager.yml: every alert to a receiver that sends nothing; read them from its API."""
    return template("alertmanager.yml.j2").render()


def monitoring_files(plan: StackPlan) -> dict[str, str]:
    """The files of CONFIG_DIR the monitoring container is created with: {name: content}."""
    return {PROMETHEUS_FILE: render_prometheus(plan), ALERTMANAGER_FILE: render_alertmanager()}


def console_pages(folder: Path = CONSOLE_PAGES) -> dict[str, str]:
    """The console pages to serve: {file name: text} of folder/*.html (none yet is fine)."""
    return {p.name: p.read_text() for p in sorted(folder.glob("*.html"))}


def _monitoring(plan: StackPlan) -> MonitoringPlan:
    if plan.monitoring is None:
        raise ValueError("the stack has no `monitoring` section")
    return plan.monitoring
