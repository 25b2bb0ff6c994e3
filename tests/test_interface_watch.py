"""images/netclient/lib.sh's interface_fault, which the member's interface watch pulls on: a
gone interface, and one wireguard-go left without a listening port (its bind refused), are
faults; one listening is not. `ip` and `wg` are stood in for on PATH."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parent.parent / "images" / "netclient" / "lib.sh"


@pytest.mark.parametrize("link, port, fault", [
    (0, "51821", ""),
    (1, "", "is gone"),
    (0, "0", "listens on no port"),
])
def test_interface_fault(tmp_path, link, port, fault):
    for tool, body in (("ip", f"exit {link}"), ("wg", f'[ "$*" = "show netmaker listen-port" ] && echo {port}')):
        (tmp_path / tool).write_text(f"#!/bin/sh\n{body}\n")
        (tmp_path / tool).chmod(0o755)
    env = {"LIB": str(LIB), "PATH": f"{tmp_path}:/usr/bin:/bin"}
    proc = subprocess.run(["bash", "-c", 'source "$LIB" 2>/dev/null; interface_fault'], env=env, capture_output=True, text=True, timeout=30)
    assert proc.stdout.strip() == fault, proc.stderr
