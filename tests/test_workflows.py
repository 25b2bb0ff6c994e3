"""The GitHub workflows pass actionlint (with shellcheck on their scripts), which
scripts/build-binaries builds from its Go module; and actionlint does catch a broken one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ACTIONLINT = Path(os.environ.get("BGP4MESH_CACHE", Path.home() / ".cache" / "bgp4mesh")) / "bin" / "actionlint"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def lint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(ACTIONLINT), *map(str, paths)], capture_output=True, text=True, timeout=120)


def test_there_is_a_preview_workflow():
    assert [p.name for p in WORKFLOWS] == ["preview.yml"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_actionlint(workflow):
    proc = lint(workflow)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text((ROOT / ".github/workflows/preview.yml").read_text().replace("needs.stacks.outputs.lab", "needs.stackz.outputs.lab"))
    proc = lint(broken)
    assert proc.returncode == 1 and "stackz" in proc.stdout, proc.stdout
