"""The one way bgp4mesh waits for something to become true (BGP sessions, routes,
pings, a host joining Netmaker): retry a check until it passes or a budget runs out."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


class WaitTimeout(Exception):
    """The check never passed; str() is its last reason."""


def until(
    check: Callable[[], T],
    wait: float,
    every: float = 0.5,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
) -> T:
    """Call `check` until it returns a truthy value without raising one of `retry_on`;
    raise WaitTimeout with the last reason once `wait` seconds have passed (it runs at
    least once, so wait=0 means a single try)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            result = check()
            if result:
                return result
            reason = f"returned {result!r}"
        except retry_on as exc:
            reason = str(exc) or type(exc).__name__
        if time.monotonic() >= deadline:
            raise WaitTimeout(reason)
        time.sleep(every)
