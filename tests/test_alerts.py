"""The shipped alert rules: every stack's rendered rule file passes `promtool check rules`,
every alert has a `promtool test rules` unit test with synthetic series (tests/promtool/),
and the numbers the rules compare with come from the stack.

promtool (Debian's prometheus package, installed by scripts/bootstrap) is required: without
it these tests fail, they do not skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bgp4mesh import metrics
from bgp4mesh.alerts import ALERTS, ALERTS_GROUP, FACTS_GROUP, IMPORT_WARN_FRACTION, render_alert_rules
from bgp4mesh.stack import load_plan

STACKS = ("dev", "lab", "staging", "staging-ha", "prod")
PROMTOOL_DIR = Path(__file__).resolve().parent / "promtool"
FIXTURE_STACK = "alerts"
"""tests/promtool/Pulumi.alerts.yaml: the stack the promtool unit tests' series are written for."""
RULES_FILE = "alert-rules.yml"
"""The name the unit tests' `rule_files` give the rendered rules."""
UNIT_TESTS = sorted(p for p in PROMTOOL_DIR.glob("*.yml"))


def promtool(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: install Debian's prometheus package (scripts/bootstrap does)"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)


def rules_of(stack: str, project_dir: Path | None = None) -> str:
    plan = load_plan(stack, project_dir) if project_dir else load_plan(stack)
    return render_alert_rules(plan)


def run_unit_tests(rules: str, tests: list[Path], workdir: Path) -> subprocess.CompletedProcess:
    """`promtool test rules` on copies of `tests` beside `rules` written as RULES_FILE."""
    (workdir / RULES_FILE).write_text(rules)
    for test in tests:
        shutil.copy(test, workdir / test.name)
    return promtool("test", "rules", *(str(workdir / t.name) for t in tests))


def fixture_rules() -> str:
    return rules_of(FIXTURE_STACK, PROMTOOL_DIR)


def groups(text: str) -> dict[str, list[dict]]:
    return {g["name"]: g["rules"] for g in yaml.safe_load(text)["groups"]}


def facts(text: str, metric: metrics.Metric) -> list[tuple[dict, str]]:
    return [(r.get("labels", {}), r["expr"]) for r in groups(text)[FACTS_GROUP] if r["record"] == metric.name]


# ---- promtool --------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_rules_pass_promtool_check(stack, tmp_path):
    path = tmp_path / RULES_FILE
    path.write_text(rules_of(stack))
    proc = promtool("check", "rules", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("unit", UNIT_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(unit, tmp_path):
    proc = run_unit_tests(fixture_rules(), [unit], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_broken_rule_fails_its_unit_test(tmp_path):
    """Not vacuous: the same tests against a rule whose threshold is off fail, and say which."""
    broken = fixture_rules().replace(f"({IMPORT_WARN_FRACTION} * ", "(0.95 * ")
    assert broken != fixture_rules()
    proc = run_unit_tests(broken, UNIT_TESTS, tmp_path)
    assert proc.returncode != 0
    assert "alertname: BgpImportNearLimit" in proc.stdout + proc.stderr


def test_upstream_view_counts_the_stacks_own_prefixes():
    """The fixture stack has two own IPv4 prefixes: each mock ISP must import both."""
    got = {(lb["upstream"], expr) for lb, expr in facts(fixture_rules(), metrics.FACT_UPSTREAM_OWN_PREFIXES)}
    assert got == {("isp-a", "vector(2)"), ("isp-b", "vector(2)")}


@pytest.mark.parametrize("good, bad", [
    ("group_left bgp4mesh:upstream_own_prefixes\n", "group_left bgp4mesh:upstream_own_prefixes - 1\n"),  # one missing is fine
    ("on(upstream, name, ip_version)", "on(upstream, ip_version)"),  # any session of the ISP will do
])
def test_a_broken_upstream_view_fails_its_unit_test(tmp_path, good, bad):
    """Not vacuous either: an upstream view that tolerates one missing prefix, or that lets
    another session of the ISP stand in for the one with our router, fails upstream.yml."""
    rules = fixture_rules()
    assert good in rules
    proc = run_unit_tests(rules.replace(good, bad), [PROMTOOL_DIR / "upstream.yml"], tmp_path)
    assert proc.returncode != 0
    assert "alertname: OwnPrefixNotSeenUpstream" in proc.stdout + proc.stderr


def test_a_broken_rule_file_fails_promtool_check(tmp_path):
    path = tmp_path / RULES_FILE
    path.write_text(fixture_rules().replace("unless on(", "unless_on(", 1))
    assert promtool("check", "rules", str(path)).returncode != 0


def test_every_alert_has_a_unit_test_that_expects_it_to_fire():
    fired = set()
    for unit in UNIT_TESTS:
        for group in yaml.safe_load(unit.read_text())["tests"]:
            fired |= {case["alertname"] for case in group.get("alert_rule_test", []) if case.get("exp_alerts")}
    rendered = {r["alert"] for r in groups(fixture_rules())[ALERTS_GROUP]}
    assert rendered == set(ALERTS)
    assert fired == set(ALERTS)


# ---- what the plan decides ---------------------------------------------------------------


def test_import_limits_are_each_sessions_max_prefixes():
    plan = load_plan("lab")
    expected = {(r.name, s.protocol, s.upstream.name, f"vector({s.upstream.max_prefixes})") for r in plan.routers for s in r.sessions}
    got = {(labels["router"], labels["name"], labels["peer"], expr) for labels, expr in facts(render_alert_rules(plan), metrics.FACT_IMPORT_LIMIT)}
    assert got == expected
    assert {e for *_, e in got} == {"vector(10)", "vector(20)"}  # lab: isp-a 10, isp-b 20


def test_own_prefix_count_is_the_stacks():
    plan = load_plan(FIXTURE_STACK, PROMTOOL_DIR)
    assert facts(render_alert_rules(plan), metrics.FACT_OWN_PREFIXES) == [({"ip_version": "4"}, f"vector({len(plan.model.prefixes)})")]
    assert len(plan.model.prefixes) == 2


def test_sessions_members_and_upstream_views_come_from_the_plan():
    plan = load_plan("lab")
    text = render_alert_rules(plan)
    sessions = {(lb["router"], lb["name"]) for lb, _ in facts(text, metrics.FACT_BGP_SESSION)}
    assert sessions == {(r.name, s.protocol) for r in plan.routers for s in r.sessions} | {(r.name, p.protocol) for r in plan.routers for p in r.ibgp}
    assert len(sessions) == 8, "an eBGP and an iBGP session per router and family"
    assert {lb["member"] for lb, _ in facts(text, metrics.FACT_MESH_MEMBER)} == {"border-a", "border-b", "node1", "node2"}
    # each ISP should see one own prefix of each family, over that family's session
    seen = {(lb["upstream"], lb["name"], lb["ip_version"], expr) for lb, expr in facts(text, metrics.FACT_UPSTREAM_OWN_PREFIXES)}
    assert seen == {(i.name, s.peer, str(s.version), "vector(1)") for i in plan.isps for s in i.sessions}
    assert {(name, v) for _, name, v, _ in seen} == {  # the router's protocol on each ISP
        ("peer_border_a", "4"), ("peer_border_b", "4"), ("peer6_border_a", "6"), ("peer6_border_b", "6")}
    bfd = {(lb["router"], lb["ip"]) for lb, _ in facts(text, metrics.FACT_BFD_SESSION)}
    assert bfd == {
        ("border-a", "172.30.16.1"), ("border-a", "172.31.16.11"), ("border-b", "172.30.17.1"), ("border-b", "172.31.16.10"),
        ("border-a", "2001:db8:ac1e:10::1"), ("border-a", "2001:db8:ac1f:10::b"), ("border-b", "2001:db8:ac1e:11::1"), ("border-b", "2001:db8:ac1f:10::a"),
    }


def test_rpki_caches_only_where_rpki_is_on():
    assert facts(rules_of("lab"), metrics.FACT_RPKI_CACHE) == []  # lab has no rpki
    dev = load_plan("dev")
    cached = facts(render_alert_rules(dev), metrics.FACT_RPKI_CACHE)
    assert [(lb["router"], lb["name"]) for lb, _ in cached] == [("border", "rpki_cache_1")]


def test_prod_has_no_upstream_view_to_alert_on():
    """Only a lab's mock ISPs are observed: a real upstream's view is not, so no fact asks for it."""
    assert facts(rules_of("prod"), metrics.FACT_UPSTREAM_OWN_PREFIXES) == []


# ---- the metric contract -----------------------------------------------------------------


def test_rules_read_only_metrics_of_the_contract():
    contract = {m.name for m in (*metrics.BIRD_EXPORTER, *metrics.BGP4MESH_EXPORTER, *metrics.FACTS)}
    exprs = " ".join(r["expr"] for r in groups(fixture_rules())[ALERTS_GROUP])
    used = set(re.findall(r"\b(?:bird_|bgp4mesh[_:])[a-z0-9_:]*", exprs))
    assert used and used <= contract, used - contract


def test_contract_names_are_unique_and_valid():
    every = (*metrics.BIRD_EXPORTER, *metrics.BGP4MESH_EXPORTER, *metrics.FACTS)
    names = [m.name for m in every]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", n) for n in names)
    assert all(":" not in m.name for m in (*metrics.BIRD_EXPORTER, *metrics.BGP4MESH_EXPORTER)), "colons are for recording rules"
