"""images/monitoring/monitoring-update, which puts the targets and rules into the running
Prometheus: it writes exactly what it is sent (and removes what is no longer sent), refuses
any other path and rules promtool rejects without touching anything, and signals Prometheus
to reload."""

from __future__ import annotations

import importlib.util
import io
import json
import signal
import subprocess
from importlib.machinery import SourceFileLoader
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "images" / "monitoring" / "monitoring-update"
RULES = "groups:\n  - name: g\n    rules:\n      - record: x:y\n        expr: vector(1)\n"


@pytest.fixture()
def update(tmp_path, monkeypatch):
    loader = SourceFileLoader("monitoring_update", str(SCRIPT))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    targets, rules = tmp_path / "targets", tmp_path / "rules"
    monkeypatch.setattr(module, "FOLDERS", (str(targets), str(rules)))
    monkeypatch.setattr(module, "PIDFILE", str(tmp_path / "prometheus.pid"))
    # SIGHUP's default action restored: under nohup (a detached CI run) the stand-in would
    # inherit "ignore" and outlive the reload the test waits for
    sleeper = subprocess.Popen(["sleep", "60"], preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    (tmp_path / "prometheus.pid").write_text(f"{sleeper.pid}\n")

    def run(files: dict) -> int:
        monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(files)))
        try:
            module.main()
        except SystemExit as exc:
            return exc.code
        return 0

    yield run, targets, rules, sleeper
    sleeper.kill()


def test_writes_what_it_is_sent_removes_the_rest_and_reloads(update):
    run, targets, rules, prometheus = update
    (targets).mkdir()
    (targets / "gone.json").write_text("[]")
    assert run({f"{targets}/member.json": '[{"targets": ["10.0.0.1:9586"]}]', f"{rules}/alert-rules.yml": RULES}) == 0
    assert sorted(p.name for p in targets.iterdir()) == ["member.json"]
    assert (rules / "alert-rules.yml").read_text() == RULES and oct((rules / "alert-rules.yml").stat().st_mode & 0o777) == "0o644"
    assert prometheus.wait(5) == -signal.SIGHUP


@pytest.mark.parametrize("files", [
    {"/etc/passwd": "root::0:0::/:/bin/sh\n"},
    {"TARGETS/../../escape.json": "[]"},
    {"TARGETS/.hidden": "[]"},
    {"RULES/bad.yml": "groups:\n  - name: g\n    rules:\n      - record: x\n        expr: sum(\n"},
], ids=["elsewhere", "dot-dot", "hidden", "rules promtool rejects"])
def test_refuses_and_changes_nothing(update, files):
    run, targets, rules, prometheus = update
    targets.mkdir()
    (targets / "kept.json").write_text("[]")
    files = {k.replace("TARGETS", str(targets)).replace("RULES", str(rules)): v for k, v in files.items()}
    assert run(files) == 1
    assert [p.name for p in targets.iterdir()] == ["kept.json"] and not rules.exists()
    assert prometheus.poll() is None  # not signalled
