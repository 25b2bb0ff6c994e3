"""Live-tier helpers: deploy a stack for real through the harness, retry checks
like netlab's validate, and prove teardown leaves nothing behind."""

from __future__ import annotations

from typing import Callable, TypeVar

from bgp4mesh.verify import RETRIED
from bgp4mesh.waiting import WaitTimeout, until
from harness import live

T = TypeVar("T")


def eventually(check: Callable[[], T], wait: float, every: float = 0.5, what: str = "") -> T:
    """Retry `check` until it returns a truthy value without raising, or fail with its last error."""
    try:
        return until(check, wait, every, retry_on=(AssertionError, *RETRIED))
    except WaitTimeout as exc:
        raise AssertionError(f"{what or check.__name__} not true within {wait}s: {exc}") from None


def leftovers(stack: str) -> list[str]:
    label = f"label=bgp4mesh.stack={stack}"
    found = []
    for kind in (["ps", "-a"], ["network", "ls"], ["volume", "ls"]):
        out = live.docker(*kind, "-q", "--filter", label, check=False)
        found += [f"{kind[0]} {x}" for x in out.split()]
    return found


def container_started_at(name: str) -> float:
    """Container start time as a monotonic-comparable epoch float."""
    from datetime import datetime

    text = live.docker("inspect", "-f", "{{.State.StartedAt}}", name)
    return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00").timestamp()


def bird_time(hms: str, ref: float) -> float:
    """BIRD prints HH:MM:SS.mmm of today (UTC in the container); epoch seconds."""
    from datetime import datetime, timezone

    day = datetime.fromtimestamp(ref, timezone.utc).strftime("%Y-%m-%d")
    return datetime.fromisoformat(f"{day}T{hms}+00:00").timestamp()
