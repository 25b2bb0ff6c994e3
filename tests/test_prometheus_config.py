"""Prometheus's and Alertmanager's configuration as bgp4mesh renders them from the plan:
`promtool check config` accepts each lab stack's (with its rule file beside it), every
target the plan lists is scraped with its labels, the intervals are the stack's, and
Alertmanager sends nothing anywhere.

promtool (Debian's prometheus package, installed by scripts/bootstrap) is required: without
it these tests fail, they do not skip.
"""

from __future__ import annotations

import json

import pytest
import yaml

from bgp4mesh import monitoring
from bgp4mesh.prometheus_config import ALERTMANAGER_FILE, CONFIG_DIR, PROMETHEUS_FILE, RULES_DIR, live_files, monitoring_files, render_prometheus
from bgp4mesh.stack import load_file, load_plan
from tests import plans
from tests.test_alerts import promtool

LAB_STACKS = ("dev", "lab")


def write(plan, where, **changed: str) -> None:
    """The container's /etc/prometheus as `where`: its files and the live ones, with every
    path that names /etc/prometheus pointed at `where` (changed: {file name: new text})."""
    files = {f"{CONFIG_DIR}/{name}": text for name, text in monitoring_files(plan).items()} | live_files(plan)
    for path, text in files.items():
        name = path.removeprefix(CONFIG_DIR + "/")
        target = where / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(changed.get(name, text).replace(CONFIG_DIR, str(where)))


def scraped(plan) -> set[tuple[str, str, tuple]]:
    """(job, address, sorted labels) of every target Prometheus reads: each job of
    prometheus.yml, its targets in the file_sd file it names."""
    live, found = live_files(plan), set()
    for job in yaml.safe_load(render_prometheus(plan))["scrape_configs"]:
        (sd,) = job["file_sd_configs"]
        for group in (g for f in sd["files"] for g in json.loads(live[f])):
            found |= {(job["job_name"], t, tuple(sorted((group.get("labels") or {}).items()))) for t in group["targets"]}
    return found


@pytest.mark.parametrize("stack", LAB_STACKS)
def test_rendered_config_passes_promtool_check(stack, tmp_path):
    write(load_plan(stack), tmp_path)
    proc = promtool("check", "config", str(tmp_path / PROMETHEUS_FILE))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 1 rule files found" in proc.stdout + proc.stderr  # the rules were read too
    assert "WARNING" not in proc.stdout + proc.stderr  # every file_sd file was there and read


def test_promtool_check_is_not_vacuous(tmp_path):
    """A config whose timeout exceeds its interval, or a broken targets file, fails."""
    plan = load_plan("dev")
    conf = monitoring_files(plan)[PROMETHEUS_FILE]
    write(plan, tmp_path, **{PROMETHEUS_FILE: conf.replace("scrape_timeout: 5s", "scrape_timeout: 9s")})
    assert promtool("check", "config", str(tmp_path / PROMETHEUS_FILE)).returncode != 0
    write(plan, tmp_path, **{"targets/member.json": '[{"targets": "not a list"}]'})
    assert promtool("check", "config", str(tmp_path / PROMETHEUS_FILE)).returncode != 0


@pytest.mark.parametrize("stack", LAB_STACKS)
def test_every_plan_target_is_scraped_with_its_labels(stack):
    plan = load_plan(stack)
    expected = {(t.job, t.address, tuple(sorted(t.labels))) for t in plan.monitoring.targets}
    assert scraped(plan) == expected
    # Each router, member and mock ISP by name; the control exporter beside Prometheus.
    names = {v for _, _, labels in expected for _, v in labels}
    assert names == {m.name for m in (*plan.routers, *plan.nodes)} | {i.name for i in plan.isps}
    assert (monitoring.JOB_CONTROL, f"127.0.0.1:{monitoring.CONTROL_EXPORTER_PORT}", ()) in expected


def test_a_node_added_to_the_stack_is_scraped():
    cfg = load_file("dev")
    before = scraped(plans.of(cfg))
    more = cfg.model_copy(update={"mesh": cfg.mesh.model_copy(update={"nodes": [*cfg.mesh.nodes, cfg.mesh.nodes[-1].model_copy(update={"name": "node3"})]})})
    added = scraped(plans.of(more)) - before
    assert [(job, labels) for job, _, labels in added] == [(monitoring.JOB_MEMBER, (("member", "node3"),))]
    assert render_prometheus(plans.of(more)) == render_prometheus(plans.of(cfg))  # the container's own config stays


@pytest.mark.parametrize("interval, timeout", [(5, 5), (30, 10)])
def test_intervals_are_the_stacks(interval, timeout):
    cfg = load_file("dev")
    cfg = cfg.model_copy(update={"monitoring": cfg.monitoring.model_copy(update={"scrape_interval": interval})})
    conf = yaml.safe_load(render_prometheus(plans.of(cfg)))["global"]
    assert conf == {"scrape_interval": f"{interval}s", "scrape_timeout": f"{timeout}s", "evaluation_interval": f"{interval}s"}


def test_alerts_go_to_alertmanager_beside_prometheus_and_no_further():
    files = monitoring_files(load_plan("dev"))
    conf = yaml.safe_load(files[PROMETHEUS_FILE])
    assert conf["rule_files"] == [f"{RULES_DIR}/*.yml"]
    assert conf["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": [f"127.0.0.1:{monitoring.ALERTMANAGER_PORT}"]}]}]
    am = yaml.safe_load(files[ALERTMANAGER_FILE])
    assert am["route"]["receiver"] == "api-only"
    assert am["receivers"] == [{"name": "api-only"}]  # no mail, webhook or chat: nothing leaves the lab


def test_a_stack_without_monitoring_has_no_config():
    cfg = load_file("dev")
    with pytest.raises(ValueError, match="monitoring"):
        render_prometheus(plans.of(cfg.model_copy(update={"monitoring": None})))


def test_a_real_hosts_config_passes_promtool_and_scrapes_every_reachable_member(tmp_path):
    """Staging with `monitoring`: the members at their hosts' addresses, none behind NAT."""
    from bgp4mesh.stack import plan_stack, raw_from_file

    raw, _ = raw_from_file("staging")
    plan = plan_stack({**raw, "monitoring": {}})
    write(plan, tmp_path)
    proc = promtool("check", "config", str(tmp_path / PROMETHEUS_FILE))
    assert proc.returncode == 0 and "SUCCESS: 1 rule files found" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stdout + proc.stderr
    assert {(job, address) for job, address, _ in scraped(plan)} == {
        ("bird", "203.0.113.10:9324"), ("member", "203.0.113.10:9586"), ("member", "203.0.113.30:9586"), ("control", "127.0.0.1:9587"),
    }
