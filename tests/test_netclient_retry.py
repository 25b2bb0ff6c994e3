"""images/netclient/lib.sh's retry_backoff, which netclient-join registers with: it tries
again only what is worth another attempt, stops on a refusal, and keeps to its budget."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parent.parent / "images" / "netclient" / "lib.sh"

# A command that fails (status $FAIL) until its attempt number reaches $OK_AT.
PROGRAM = """
source "$LIB" 2>/dev/null
flaky() { echo "try $ATTEMPT" >&2; (( ATTEMPT >= OK_AT )) && return 0; return "$FAIL"; }
retry_backoff "$BUDGET" flaky
"""


def run(ok_at: int, fail: int, budget: int) -> tuple[int, str, float]:
    env = {"LIB": str(LIB), "OK_AT": str(ok_at), "FAIL": str(fail), "BUDGET": str(budget), "RETRY_FIRST_WAIT": "1", "PATH": "/usr/bin:/bin"}
    started = time.monotonic()
    proc = subprocess.run(["bash", "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stderr, time.monotonic() - started


def test_a_failure_worth_retrying_is_tried_again_until_it_succeeds():
    rc, err, _ = run(ok_at=3, fail=1, budget=30)
    assert rc == 0, err
    assert [line for line in err.splitlines() if line.startswith("try")] == ["try 1", "try 2", "try 3"]
    assert "attempt 1 failed: again in" in err and "attempt 2 failed" in err


def test_a_refusal_is_not_tried_again():
    rc, err, _ = run(ok_at=5, fail=2, budget=30)
    assert rc == 2
    assert [line for line in err.splitlines() if line.startswith("try")] == ["try 1"]


@pytest.mark.parametrize("budget", [2, 5])
def test_it_gives_up_within_its_budget(budget):
    rc, err, took = run(ok_at=99, fail=1, budget=budget)
    assert rc == 1 and "giving up after" in err, err
    assert took < budget + 1
