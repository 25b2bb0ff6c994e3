"""Reaching a remote host over SSH with its key pinned: the one set of OpenSSH options
that the Docker provider (ssh://), `verify` and the pre-flight check all use, and the
pre-flight check itself, which names the host and what is wrong before anything runs."""

from __future__ import annotations

import os
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

from .config import Host, Ssh

CONNECT_TIMEOUT = 5
"""Seconds per connection attempt: an unreachable host fails a command in about this long."""


def key_file(ssh: Ssh) -> Path:
    return Path(os.path.expanduser(ssh.private_key_file))


def options(ssh: Ssh) -> list[str]:
    """OpenSSH options: this key only, no prompt, and only the pinned host key accepted
    (no known_hosts file is read or written; `%H` is the name ssh looks the key up by)."""
    return [
        "-i", str(key_file(ssh)),
        "-p", str(ssh.port),
        "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes",
        "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", f"KnownHostsCommand=/bin/echo %H {ssh.host_key}",
        "-o", "ServerAliveInterval=10",
    ]


def docker_ssh_options(ssh: Ssh) -> list[str]:
    """`options` for the Docker provider's ssh_opts, which adds the port and user itself."""
    opts = options(ssh)
    i = opts.index("-p")
    return opts[:i] + opts[i + 2 :]


def command(ssh: Ssh, argv: Sequence[str]) -> list[str]:
    """`argv` run on the host (ssh hands the remote shell one string: quote it)."""
    return ["ssh", *options(ssh), "-l", ssh.user, ssh.address, "--", shlex.join(argv)]


def where(host: Host) -> str:
    return f"host {host.name} ({host.ssh.user}@{host.ssh.address}:{host.ssh.port})"


def diagnose(stderr: str) -> str:
    """OpenSSH's failure, said plainly."""
    text = stderr.strip()
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "Host key verification failed" in text or "host key" in text.lower() and "mismatch" in text.lower():
        return "host key mismatch: the host does not present the pinned ssh.host_key (a different machine, or a reinstalled one: check, then update the key)"
    if "Permission denied" in text:
        return "the host refused the operator's key (ssh.private_key_file) for this user"
    if "Connection refused" in text:
        return "unreachable: connection refused"
    if "timed out" in text or "No route to host" in text or "Network is unreachable" in text:
        return f"unreachable: no answer within {CONNECT_TIMEOUT}s"
    if "Could not resolve" in text:
        return "unreachable: the name does not resolve"
    last = text.splitlines()[-1] if text else "no output"
    return f"ssh failed: {last}"


def check(host: Host) -> Optional[str]:
    """None when the host answers over SSH with its pinned key and runs Docker;
    otherwise what is wrong, naming the host."""
    if not key_file(host.ssh).is_file():
        return f"{where(host)}: ssh.private_key_file {host.ssh.private_key_file} does not exist on this machine"
    try:
        proc = subprocess.run(
            command(host.ssh, ["docker", "version", "--format", "{{.Server.Version}}"]),
            capture_output=True, text=True, timeout=CONNECT_TIMEOUT * 3, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return f"{where(host)}: no answer within {CONNECT_TIMEOUT * 3}s"
    if proc.returncode == 255:
        return f"{where(host)}: {diagnose(proc.stderr)}"
    if proc.returncode != 0:
        return f"{where(host)}: Docker does not answer there ({(proc.stderr or proc.stdout).strip()[:300]})"
    return None


def preflight(hosts: Sequence[Host]) -> list[str]:
    """Every remote host checked at once: the problems found, one line each."""
    remote = [h for h in hosts if h.ssh is not None]
    if not remote:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(remote))) as pool:
        return [p for p in pool.map(check, remote) if p]
