"""birdc run within bounds: a timeout, a cap on the output read (a full table must not fill
the memory), no shell, no inherited environment. Thin on purpose: core.py decides what runs."""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass

ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


@dataclass(frozen=True)
class Outcome:
    status: int
    """birdc's exit status: negative when it was ended (a signal), -1 when it could not start."""
    output: bytes
    truncated: bool = False
    timed_out: bool = False


def run(argv: list[str], timeout_s: float, max_output: int) -> Outcome:
    """`argv`'s output (stdout and stderr), at most `max_output` bytes; ended after `timeout_s`."""
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=ENV, close_fds=True, start_new_session=True)
    except OSError as e:
        return Outcome(-1, f"birdc could not start: {e}\n".encode())
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        proc.kill()

    timer = threading.Timer(timeout_s, expire)
    timer.start()
    try:
        output = proc.stdout.read(max_output + 1)
        truncated = len(output) > max_output
        if truncated:
            proc.kill()
        status = proc.wait()
    finally:
        timer.cancel()
        proc.stdout.close()
    return Outcome(status, output[:max_output], truncated, expired.is_set())
