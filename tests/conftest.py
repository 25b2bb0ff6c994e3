import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402

from harness import live  # noqa: E402


@pytest.fixture(scope="session")
def dev_lab():
    """The dev stack deployed for real once per session; torn down at the end even
    when tests fail, and the teardown itself is checked to leave nothing."""
    from tests.live import leftovers

    stale = live.state_dir("dev") / "ledger.json"
    if stale.exists():
        live.destroy("dev")
    deployment = live.deploy("dev", log=lambda m: print(m))
    try:
        yield deployment
    finally:
        problems = live.destroy("dev", deployment.ledger)
        left = leftovers("dev")
        assert not left, f"teardown left {left} ({problems})"
