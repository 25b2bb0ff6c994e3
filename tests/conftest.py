import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402


@dataclass
class Deployment:
    stack: object
    outputs: dict


@pytest.fixture(scope="session")
def dev_lab():
    """The dev stack deployed for real through the Pulumi engine (`pulumi up`) once per
    session; destroyed at the end even when tests fail, and the destroy itself is
    checked to leave nothing."""
    from harness.engine import Stack
    from tests.live import leftovers

    stack = Stack("dev")
    stack.destroy()  # whatever an earlier, interrupted session left
    assert not leftovers("dev"), f"objects of stack dev exist outside Pulumi's state: {leftovers('dev')}"
    stack.up()
    try:
        yield Deployment(stack, stack.outputs())
    finally:
        stack.destroy()
        left = leftovers("dev")
        assert not left, f"pulumi destroy left {left}"


def pytest_sessionfinish(session, exitstatus):
    """In CI every tier must run: a skipped test fails the run instead of passing quietly."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CI") == "true" and skipped and session.exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; every tier must run in CI (see the skip reasons above)", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
