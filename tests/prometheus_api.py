"""Prometheus's and Alertmanager's HTTP APIs of a stack, asked from inside its monitoring
container (Prometheus on 127.0.0.1:9090, Alertmanager on 127.0.0.1:9093, which only loopback
reaches): what the live monitoring tests and bench/monitoring.py read. `stack` is a lab
stack's name (the container is on this machine's engine) or a RemoteDeployment (the
container is on the monitoring host, reached over SSH as an operator would)."""

from __future__ import annotations

import json
import shlex
import time
from urllib.parse import quote

from bgp4mesh.docker_cli import docker
from bgp4mesh.naming import docker_name
from tests import plans
from tests.live import eventually

FETCH = "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
PROMETHEUS, ALERTMANAGER = "http://127.0.0.1:9090", "http://127.0.0.1:9093"


def get(stack, url: str):
    """A JSON answer of Prometheus's or Alertmanager's API, asked from the monitoring container."""
    if isinstance(stack, str):
        return json.loads(docker("exec", docker_name(stack, "monitoring"), "python3", "-c", FETCH, url, timeout=30))
    ask = ["docker", "exec", docker_name(stack.name, "monitoring"), "python3", "-c", FETCH, url]
    return json.loads(stack.out(plans.of(stack.cfg).monitoring.host, shlex.join(ask)))


def targets(stack) -> list[dict]:
    return get(stack, f"{PROMETHEUS}/api/v1/targets?state=active")["data"]["activeTargets"]


def query(stack, expr: str) -> list[dict]:
    return get(stack, f"{PROMETHEUS}/api/v1/query?query={quote(expr)}")["data"]["result"]


def alerts(stack, name: str, **labels: str) -> list[dict]:
    """Prometheus's alerts `name` whose labels include `labels` (pending and firing)."""
    found = get(stack, f"{PROMETHEUS}/api/v1/alerts")["data"]["alerts"]
    return [a for a in found if a["labels"]["alertname"] == name and labels.items() <= a["labels"].items()]


def firing(stack, name: str, **labels: str) -> list[dict]:
    return [a for a in alerts(stack, name, **labels) if a["state"] == "firing"]


def held(stack, name: str, **labels: str) -> list[dict]:
    """Alertmanager's active alerts `name` with `labels` (a resolved alert leaves this list)."""
    found = get(stack, f"{ALERTMANAGER}/api/v2/alerts?active=true")
    return [a for a in found if a["labels"]["alertname"] == name and labels.items() <= a["labels"].items()]


def wait_for(check, wait: float, what: str, every: float = 0.5) -> float:
    """Seconds until `check()` is truthy (fails after `wait`)."""
    started = time.monotonic()
    eventually(check, wait=wait, every=every, what=what)
    return time.monotonic() - started


def plan_targets(model) -> set[tuple[str, str, tuple]]:
    return {(t.job, t.address, t.labels) for t in plans.of(model).monitoring.targets}


def scraped(target: dict) -> tuple[str, str, tuple]:
    labels = tuple((k, v) for k, v in target["labels"].items() if k in ("router", "member", "upstream"))
    return target["labels"]["job"], target["scrapeUrl"].split("/")[2], labels


def all_up(stack, expected: set) -> bool:
    found = {scraped(t): t for t in targets(stack)}
    assert set(found) == expected, f"scraped {sorted(found)} but the plan has {sorted(expected)}"
    down = {k: t["lastError"] or t["health"] for k, t in found.items() if t["health"] != "up"}
    assert not down, f"targets not up: {down}"
    return True


def monitoring_at_rest(stack: str) -> str:
    """`docker stats` of the monitoring container: the figure of its parts at rest."""
    return docker("stats", "--no-stream", "--format", "{{.CPUPerc}} CPU, {{.MemUsage}}", docker_name(stack, "monitoring"))
