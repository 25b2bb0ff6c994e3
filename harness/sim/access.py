"""Reaching a simulated host as the operator does: over SSH, with the operator's key and
exactly the host's pinned key trusted, nothing read from ~/.ssh."""

from __future__ import annotations

import subprocess
from typing import Optional

from .base import SimError
from .material import Material
from .topology import Host


def ssh_argv(host: Host, m: Material, *command: str, host_key: Optional[str] = None, timeout: int = 10) -> list[str]:
    """ssh to `host` trusting exactly its pinned key (or `host_key`), nothing from ~/.ssh."""
    key = host_key or m.host_keys[host.name][1]
    return ["ssh", "-i", str(m.operator_key), "-p", str(host.ssh_port), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", f"KnownHostsCommand=/bin/echo %H {key}", "-o", f"ConnectTimeout={timeout}", "-o", "LogLevel=ERROR",
            "-F", "/dev/null", f"root@{host.ssh_address}", *command]


def ssh(host: Host, m: Material, *command: str, timeout: float = 60, check: bool = True, input: Optional[bytes] = None) -> str:
    proc = subprocess.run(ssh_argv(host, m, *command), capture_output=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise SimError(f"ssh {host.name} {' '.join(command)[:60]}: exit {proc.returncode}: {proc.stderr.decode(errors='replace').strip()[-400:]}")
    return proc.stdout.decode(errors="replace").strip()



def host_ready(h: Host, m: Material) -> str:
    """The storage driver of `h`'s engine, once sshd and dockerd answer."""
    return ssh(h, m, "docker", "info", "--format", "{{.Driver}}", timeout=20)
