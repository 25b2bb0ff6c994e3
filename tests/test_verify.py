"""`verify` cannot lie: a broken deployment fails every check, also under `python -O`
(which strips `assert` statements), and the exit code says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A docker CLI whose `exec` answers like a running but broken lab: BIRD up with every
# session down and a hostile route (inside our own prefix, AS_TRANS in the path), no
# mesh address, no WireGuard peers, pings unanswered.
FAKE_DOCKER = r"""#!/bin/sh
while [ "$1" != exec ] && [ $# -gt 0 ]; do shift; done
shift 2
case "$*" in
  "birdc show protocols") printf 'BIRD 2.0.12 ready.\nName       Proto      Table      State  Since         Info\n' ;
      for p in peer_isp peer_border; do printf '%s BGP --- start 04:00:00.000 Active\n' "$p"; done ;;
  "birdc show route all"*) printf 'BIRD 2.0.12 ready.\nTable master4:\n44.30.127.0/25 unicast [peer_isp 04:00:00.000] * (100) [AS23456i]\n\tvia 172.30.0.1 on eth0\n\tBGP.as_path: 65001 23456\n' ;;
  "ip -4 -o addr show dev netmaker") exit 1 ;;
  "wg show netmaker latest-handshakes") exit 0 ;;
  ping*) exit 1 ;;
  *) exit 0 ;;
esac
"""


@pytest.fixture()
def fake_docker(tmp_path: Path) -> dict[str, str]:
    exe = tmp_path / "docker"
    exe.write_text(FAKE_DOCKER)
    exe.chmod(0o755)
    return {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}


@pytest.mark.parametrize("flags", [[], ["-O"], ["-OO"]], ids=["plain", "-O", "-OO"])
def test_broken_deployment_fails_every_check(fake_docker, flags):
    proc = subprocess.run(
        [sys.executable, *flags, "-m", "bgp4mesh", "verify", "--stack", "dev", "--wait", "0"],
        cwd=ROOT, env=fake_docker, capture_output=True, text=True, timeout=120,
    )
    lines = proc.stdout.splitlines()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert lines and all(line.startswith("FAIL ") for line in lines[:-1]), proc.stdout
    assert not any(line.startswith("PASS") for line in lines), proc.stdout
    assert lines[-1] == f"0 passed, {len(lines) - 1} failed"


def test_optimize_env_var_cannot_make_it_pass(fake_docker):
    env = {**fake_docker, "PYTHONOPTIMIZE": "2"}
    proc = subprocess.run(
        [sys.executable, "-m", "bgp4mesh", "verify", "--stack", "dev", "--wait", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1 and "PASS" not in proc.stdout, proc.stdout
