"""Every shell script in images/ passes Debian's shellcheck (all severities): the
entrypoints and glue stay in shell, so they are linted like code."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

IMAGES = Path(__file__).resolve().parent.parent / "images"


def shell_scripts() -> list[Path]:
    """Files under images/ that start with a shell's #! or are named *.sh (build output skipped)."""
    found = []
    for path in sorted(p for p in IMAGES.rglob("*") if p.is_file() and "bin" not in p.relative_to(IMAGES).parts):
        with path.open("rb") as f:
            first = f.readline(80)
        if path.suffix == ".sh" or (first.startswith(b"#!") and first.rstrip().split(b"/")[-1].split()[-1] in (b"sh", b"bash")):
            found.append(path)
    return found


def shellcheck(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["shellcheck", "-x", "--source-path=SCRIPTDIR", "-f", "gcc", str(path)], capture_output=True, text=True, timeout=120)


def test_the_scripts_are_found():
    names = {str(p.relative_to(IMAGES)) for p in shell_scripts()}
    assert {"bird/entrypoint.sh", "netclient/entrypoint.sh", "netclient/lib.sh", "netclient/edge-firewall"} <= names, names


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: str(p.relative_to(IMAGES)))
def test_script_passes_shellcheck(script):
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (Debian: apt-get install shellcheck)")
    proc = shellcheck(script)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_finding_fails(tmp_path):
    """Not vacuous: an unquoted expansion is a finding, and it fails."""
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (Debian: apt-get install shellcheck)")
    bad = tmp_path / "bad.sh"
    bad.write_text('#!/bin/bash\nrm $1\n')
    assert shellcheck(bad).returncode != 0
