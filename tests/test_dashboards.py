"""The dashboards (dashboards/): a Grafana dashboard and a console page Prometheus serves
itself. Both read only the metric contract (bgp4mesh/metrics.py), every PromQL expression
parses (`promtool check rules`), and on a throwaway Prometheus 2.42 fed series shaped as
the contract says, with the lab's rendered rule file loaded, every Grafana panel finds
data and the console page renders without a template error, showing what the series say.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from bgp4mesh import alerts, metrics
from bgp4mesh.naming import bird_rpki
from bgp4mesh.plan import StackPlan
from bgp4mesh.stack import plan_stack, raw_from_file

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "dashboards" / "grafana" / "bgp4mesh.json"
CONSOLE = ROOT / "dashboards" / "console" / "bgp4mesh.html"
CONSOLE_LIBRARIES = Path("/usr/share/doc/prometheus/examples/console_libraries")
"""Debian's prom.lib and menu.lib (package prometheus): /etc/prometheus/console_libraries holds only a README."""

CONTRACT = {m.name for m in vars(metrics).values() if isinstance(m, metrics.Metric)}
PROMETHEUS_OWN = {"ALERTS", "up"}
"""Series Prometheus makes itself (firing alerts, each scrape's result): no exporter's."""
GRAFANA_VARIABLES = {"$__rate_interval": "1m"}
"""What Grafana puts in for its own variables before a query reaches Prometheus."""

needs_prometheus = pytest.mark.skipif(shutil.which("promtool") is None or shutil.which("prometheus") is None,
                                      reason="Debian's prometheus is not installed (scripts/bootstrap installs it)")


# ---- the expressions ------------------------------------------------------------------------------


def grafana() -> dict:
    return json.loads(GRAFANA.read_text())


def grafana_panels() -> list[dict]:
    """Every panel but the rows (a collapsed row holds its panels)."""
    found = []
    for p in grafana()["panels"]:
        found += p.get("panels", []) if p["type"] == "row" else [p]
    return found


def grafana_queries(panel: dict) -> list[str]:
    """A panel's PromQL as Prometheus receives it (Grafana's variables filled in)."""
    queries = []
    for t in panel["targets"]:
        expr = t["expr"]
        for name, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(name, value)
        queries.append(expr)
    return queries


def console_queries() -> list[str]:
    """Every `raw string` of the console page (its PromQL, by the page's own rule), with
    each printf %s filled in as a label value would be."""
    return [q.replace("%s", "x") for q in re.findall(r"`([^`]*)`", CONSOLE.read_text())]


def all_queries() -> list[str]:
    return [q for p in grafana_panels() for q in grafana_queries(p)] + console_queries()


AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile"}
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "inf", "nan", "atan2"}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads: its identifiers once strings, numbers and
    durations, label matchers, ranges and label lists are out, less functions (a word
    before a parenthesis), aggregations and keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[a-zA-Z]*", "0", text)
    text = re.sub(r"\{[^}]*\}", "{}", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text)
    found = set()
    for word in re.finditer(r"[A-Za-z_:][\w:]*", text):
        if word[0].lower() in KEYWORDS | AGGREGATIONS or text[word.end():].lstrip().startswith("("):
            continue
        found.add(word[0])
    return found


def test_metric_names_finds_the_metrics_and_nothing_else():
    expr = 'sum by (router) (rate(foo_total{a="b", c=~"d.*"}[5m] offset 1h)) / on(x) group_left(y, z) bar:baz > bool 1e3 unless ALERTS'
    assert metric_names(expr) == {"foo_total", "bar:baz", "ALERTS"}
    assert metric_names('label_replace(time() - qux, "key", "$1", "peer", "(.{8}).*")') == {"qux"}


def test_the_grafana_dashboard_has_a_panel_for_each_essential():
    titles = {p["title"] for p in grafana_panels()}
    assert {
        "BGP sessions up per router", "BGP session state", "Prefixes per eBGP session vs import limit", "Import limit used",
        "BFD sessions", "WireGuard last handshake age", "WireGuard bytes per peer", "HA agent state", "Active gateway",
        "Netmaker members online", "RPKI cache ROAs", "Firing alerts",
    } <= titles


def test_the_grafana_dashboard_is_importable_with_any_prometheus():
    """Grafana 9/10's dashboard model: unique panel ids, a grid place each, every query on
    the dashboard's Prometheus datasource variable, none hard-wired to one datasource."""
    board = grafana()
    assert board["schemaVersion"] >= 36 and board["uid"] == "bgp4mesh"
    sources = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert [(v["name"], v["query"]) for v in sources] == [("datasource", "prometheus")]
    ids = [p["id"] for p in board["panels"]] + [p["id"] for p in grafana_panels() if p not in board["panels"]]
    assert len(ids) == len(set(ids))
    variable = {"type": "prometheus", "uid": "${datasource}"}
    for p in grafana_panels():
        assert set(p["gridPos"]) == {"x", "y", "w", "h"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]
        assert p["datasource"] == variable and p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)) and all(t["datasource"] == variable for t in p["targets"]), p["title"]


def test_thresholds_are_the_alert_rules():
    """The dashboards mark as bad exactly what the shipped alerts fire on."""
    warn = int(alerts.IMPORT_WARN_FRACTION * 100)
    by_title = {p["title"]: p for p in grafana_panels()}
    assert [s["value"] for s in by_title["Import limit used"]["fieldConfig"]["defaults"]["thresholds"]["steps"]][1] == warn
    assert f"{alerts.IMPORT_WARN_FRACTION} * bgp4mesh:bgp_import_limit" in grafana_queries(by_title["Prefixes per eBGP session vs import limit"])
    handshake = by_title["WireGuard last handshake age"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in handshake] == [None, alerts.HANDSHAKE_MAX_AGE]
    page = CONSOLE.read_text()
    assert f') {float(warn)} "printf.1f"' in page and f') {float(alerts.HANDSHAKE_MAX_AGE)} "humanizeDuration"' in page


def test_every_expression_reads_only_the_metric_contract():
    queries = all_queries()
    assert len(console_queries()) >= 20 and len(queries) >= 45
    stray = {q: sorted(metric_names(q) - CONTRACT - PROMETHEUS_OWN) for q in queries}
    assert not {q: s for q, s in stray.items() if s}, "names not in bgp4mesh/metrics.py"
    used = set().union(*map(metric_names, queries))
    wanted = {m.name for m in (*metrics.BIRD_EXPORTER, metrics.WG_LATEST_HANDSHAKE, metrics.WG_RECEIVE_BYTES, metrics.AGENT_STATE,
                               metrics.AGENT_ACTIVE_GATEWAY, metrics.NETMAKER_MEMBER_ONLINE, *metrics.FACTS)}
    assert wanted <= used, f"not shown: {sorted(wanted - used)}"


@needs_prometheus
def test_every_expression_parses(tmp_path):
    """promtool parses each expression as a recording rule of its own, so an error names it."""
    rules = {"groups": [{"name": "dashboards", "rules": [{"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(all_queries())]}]}
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules))
    proc = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules['groups'][0]['rules'])} rules found" in proc.stdout


def test_a_broken_expression_fails_the_parse_check(tmp_path):
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (scripts/bootstrap installs it)")
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": [{"record": "d:q", "expr": "sum by (router (up)"}]}]}))
    assert subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, timeout=60).returncode != 0


# ---- a throwaway Prometheus ------------------------------------------------------------------------

KEY = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="
"""A made-up WireGuard public key (44 characters, as `wg` prints them)."""


def lab_with_rpki() -> StackPlan:
    """The lab (two routers, iBGP, BFD, mock ISPs, nodes) with its RTR cache on."""
    raw, secret_keys = raw_from_file("lab")
    raw = copy.deepcopy(raw)
    raw["rpki"] = {"invalid": "reject"}
    raw["lab"]["roas"] = [{"prefix": str(raw["prefixes"][0]), "max_length": 24, "asn": raw["asn"]}]
    return plan_stack(raw, secret_keys)


def series(metric: metrics.Metric, expr: str, target: dict[str, str] | None = None, **labels: str) -> dict:
    """A recording rule making one series of `metric`: its contract labels, no more, no fewer
    (plus the scrape target's label), so the data is shaped as the exporters publish it."""
    assert set(labels) == set(metric.labels), (metric.name, sorted(labels))
    return {"record": metric.name, "expr": expr, "labels": {**labels, **(target or {})}}


def _bird_channel(proto: str, name: str, state: str = "Established", version: int = 4) -> dict[str, str]:
    return {"name": name, "proto": proto, "ip_version": str(version), "import_filter": "", "export_filter": "", "state": state}


def measured(plan: StackPlan) -> list[dict]:
    """What the exporters would publish for a healthy lab, but: node2 never handshook with
    border-b (stale: its alert fires) and Netmaker's view of node2 is missing."""
    m, rules = metrics, []
    no_state = {k: v for k, v in _bird_channel("BGP", "").items() if k != "state"}
    for r in plan.routers:
        at = {m.TARGET_ROUTER: r.name}
        for name, version in [(s.protocol, s.version) for s in r.sessions] + [(p.protocol, p.version) for p in r.ibgp]:
            channel = {**no_state, "name": name, "ip_version": str(version)}  # one channel per session, of its family
            rules.append(series(m.BIRD_PROTOCOL_UP, "vector(1)", at, **_bird_channel("BGP", name, version=version)))
            rules.append(series(m.BIRD_IMPORT_COUNT, "vector(3)", at, **channel))
            rules.append(series(m.BIRD_EXPORT_COUNT, "vector(1)", at, **channel))
        neighbors = [str(s.neighbor) for s in r.sessions if s.upstream.bfd] + [str(p.address) for p in r.ibgp]
        rules += [series(m.BIRD_BFD_SESSION_UP, "vector(1)", at, name="bfd1", ip=ip, interface="eth0") for ip in neighbors]
        for i, _ in enumerate(plan.model.rtr_caches):
            rules.append(series(m.BIRD_PROTOCOL_UP, "vector(1)", at, **_bird_channel("RPKI", bird_rpki(i))))
            rules.append(series(m.BIRD_IMPORT_COUNT, "vector(2)", at, **{**no_state, "proto": "RPKI", "name": bird_rpki(i)}))
    for isp in plan.isps:
        at = {m.TARGET_UPSTREAM: isp.name}
        for s in isp.sessions:  # each family's session imports the one own prefix of its family
            rules.append(series(m.BIRD_PROTOCOL_UP, "vector(1)", at, **_bird_channel("BGP", s.peer, version=s.version)))
            rules.append(series(m.BIRD_IMPORT_COUNT, "vector(1)", at, **{**no_state, "name": s.peer, "ip_version": str(s.version)}))
    for member in (*plan.routers, *plan.nodes):
        name = member.name
        for gateway in (r.name for r in plan.routers if r.name != name):
            stale = name == "node2" and gateway == "border-b"
            peer = {"member": name, "interface": "netmaker", "peer": f"{gateway[-1]}{KEY[1:]}"}
            rules.append(series(m.WG_LATEST_HANDSHAKE, "vector(0)" if stale else "vector(time() - 30)", **peer))
            rules += [series(c, "vector(time() * 100)", **peer) for c in (m.WG_RECEIVE_BYTES, m.WG_TRANSMIT_BYTES)]
        if name != "node2":
            rules.append(series(m.NETMAKER_MEMBER_ONLINE, "vector(1)", member=name, network="bgp4mesh"))
            rules.append(series(m.NETMAKER_MEMBER_CHECKIN, "vector(time() - 20)", member=name, network="bgp4mesh"))
        rules.append(series(m.AGENT_STATE, "vector(1)", member=name, field="mesh"))
        rules.append(series(m.AGENT_STATE, "vector(0)", member=name, field="maintenance"))
        rules.append(series(m.AGENT_ACTIVE_GATEWAY, "vector(1)", member=name, gateway="border-a"))
    rules.append(series(m.BROKER_CLIENTS_CONNECTED, "vector(4)"))
    rules.append(series(m.BROKER_PUBLISH_DROPPED, "vector(time())"))
    return rules


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def query(base: str, expr: str) -> list[dict]:
    status, body = _get(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    assert status == 200, (expr, body)
    return json.loads(body)["data"]["result"]


def _wait(base: str, expr: str, proc: subprocess.Popen, log: Path) -> None:
    """Until `expr` has data: the rules have been evaluated (twice, for a rate)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if query(base, expr):
                return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"no {expr} within 60 s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """Prometheus on loopback with a temporary TSDB, the lab's rule file and the measured
    series, serving dashboards/console/ with Debian's console libraries: its base URL."""
    if shutil.which("prometheus") is None or not (CONSOLE_LIBRARIES / "prom.lib").exists():
        pytest.skip("Debian's prometheus (with its example console libraries) is not installed (scripts/bootstrap installs it)")
    here = tmp_path_factory.mktemp("prometheus")
    plan = lab_with_rpki()
    (here / "consoles").mkdir()
    shutil.copy(CONSOLE, here / "consoles" / CONSOLE.name)
    (here / "stack.rules.yml").write_text(alerts.render_alert_rules(plan))
    (here / "measured.rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "measured", "rules": measured(plan)}]}))
    port = _free_port()
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "rule_files": [str(here / "stack.rules.yml"), str(here / "measured.rules.yml")],
              "scrape_configs": [{"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]}
    (here / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = here / "prometheus.log"
    with log.open("w") as out:
        proc = subprocess.Popen(["prometheus", f"--config.file={here / 'prometheus.yml'}", f"--storage.tsdb.path={here / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{port}", f"--web.console.templates={here / 'consoles'}",
                                 f"--web.console.libraries={CONSOLE_LIBRARIES}"], stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base, 'ALERTS{alertstate="firing"}', proc, log)
        _wait(base, f"rate({metrics.WG_RECEIVE_BYTES.name}[1m]) > 0", proc, log)
        _wait(base, "up", proc, log)  # its first scrape of itself: discovery hands targets on every 5 s
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_every_grafana_panel_finds_data(prometheus):
    empty = [p["title"] for p in grafana_panels() if not any(query(prometheus, q) for q in grafana_queries(p))]
    assert not empty, f"panels without data on contract-shaped series: {empty}"


def rows(page: str, section: str) -> list[list[str]]:
    """The console page's table under <h2 id=section>: each row's cells as 'class|text'."""
    table = page.split(f'<h2 id="{section}">', 1)[1].split("</table>", 1)[0]
    found = []
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        cells = re.findall(r'<td(?: class="([^"]*)")?[^>]*>(.*?)</td>', row, re.S)
        found.append([f"{cls}|{re.sub(r'<[^>]+>', '', text).strip()}" for cls, text in cells])
    return [r for r in found if r]


def test_the_console_page_renders_what_the_series_say(prometheus):
    status, page = _get(f"{prometheus}/consoles/{CONSOLE.name}")
    assert status == 200, page
    assert "error" not in page.lower().replace("alert-danger", ""), page[:2000]
    assert sorted(rows(page, "bgp")) == [  # an eBGP and an iBGP session per router and family
        ["|border-a", "|border-b", "|ibgp6_border_b", "alert-success|Established"],
        ["|border-a", "|border-b", "|ibgp_border_b", "alert-success|Established"],
        ["|border-a", "|isp-a", "|peer6_isp_a", "alert-success|Established"],
        ["|border-a", "|isp-a", "|peer_isp_a", "alert-success|Established"],
        ["|border-b", "|border-a", "|ibgp6_border_a", "alert-success|Established"],
        ["|border-b", "|border-a", "|ibgp_border_a", "alert-success|Established"],
        ["|border-b", "|isp-b", "|peer6_isp_b", "alert-success|Established"],
        ["|border-b", "|isp-b", "|peer_isp_b", "alert-success|Established"],
    ]
    # one row per eBGP session (each family's); the last column is the stack's own prefixes, both families
    assert sorted(rows(page, "prefixes")) == [
        ["|border-a", "|isp-a", "text-right|3", "text-right|10", "alert-success|30.0 %", "text-right|1", "text-right|2"],
    ] * 2 + [
        ["|border-b", "|isp-b", "text-right|3", "text-right|20", "alert-success|15.0 %", "text-right|1", "text-right|2"],
    ] * 2
    assert {tuple(r[:3]) + (r[3].split("|")[0],) for r in rows(page, "bfd")} == {
        ("|border-a", "|isp-a", "|172.30.16.1", "alert-success"), ("|border-a", "|border-b", "|172.31.16.11", "alert-success"),
        ("|border-b", "|isp-b", "|172.30.17.1", "alert-success"), ("|border-b", "|border-a", "|172.31.16.10", "alert-success"),
        ("|border-a", "|isp-a", "|2001:db8:ac1e:10::1", "alert-success"), ("|border-a", "|border-b", "|2001:db8:ac1f:10::b", "alert-success"),
        ("|border-b", "|isp-b", "|2001:db8:ac1e:11::1", "alert-success"), ("|border-b", "|border-a", "|2001:db8:ac1f:10::a", "alert-success")}
    assert sorted((r[0], r[1], r[2], r[-1]) for r in rows(page, "upstreams")) == [
        (f"|{isp}", f"|{name}", f"|IPv{v}", "alert-success|all of them")
        for isp, name, v in (("isp-a", "peer6_border_a", 6), ("isp-a", "peer_border_a", 4), ("isp-b", "peer6_border_b", 6), ("isp-b", "peer_border_b", 4))]
    tunnels = {(r[0], r[1]): r[2] for r in rows(page, "mesh")}
    assert tunnels[("|node2", f"|b{KEY[1:8]}")].startswith("alert-danger|") and tunnels[("|node1", f"|b{KEY[1:8]}")].startswith("alert-success|")
    assert sum(v.startswith("alert-success|") for v in tunnels.values()) == len(tunnels) - 1 == 5
    members = {r[0]: r[1] for r in rows(page, "members")}
    assert members == {"|border-a": "alert-success|online", "|border-b": "alert-success|online", "|node1": "alert-success|online", "|node2": "alert-warning|no data"}
    assert [r[3:5] for r in rows(page, "rpki")] == [["alert-success|Established", "text-right|2"]] * 2
    firing = [r[0] for r in rows(page, "alerts")]
    assert "alert-danger|WireguardHandshakeStale" in firing and "alert-danger|BgpSessionDown" not in firing


def test_a_template_error_is_an_error_page(prometheus, tmp_path):
    """The render test can fail: Prometheus answers a console whose query does not parse with 500."""
    consoles = Path(re.search(r"--web.console.templates=(\S+)", _cmdline(prometheus)).group(1))
    broken = consoles / "broken.html"
    broken.write_text(CONSOLE.read_text().replace("`bgp4mesh:bgp_session`", "`sum by (router (up)`", 1))
    status, page = _get(f"{prometheus}/consoles/broken.html")
    assert status == 500 and "parse error" in page, page[:500]


def _cmdline(base: str) -> str:
    """The throwaway Prometheus's command line, as its own API reports its flags."""
    status, body = _get(f"{base}/api/v1/status/flags")
    assert status == 200, body
    return " ".join(f"--{k}={v}" for k, v in json.loads(body)["data"].items())
