"""Read BIRD's state through `birdc` in a container, on the local engine or on a
remote host over SSH, parsed into small records. Used by the live tests and by
`verify`, which check a router from its peer's side."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from typing import Optional

from . import ssh
from .config import Ssh


@dataclass(frozen=True)
class Target:
    """A container on a Docker engine: this machine's (docker_host None: the default
    one), or a remote host's, where `docker` runs over SSH."""

    container: str
    docker_host: Optional[str] = None
    remote: Optional[Ssh] = None

    def run(self, *cmd: str, timeout: float = 20) -> subprocess.CompletedProcess:
        argv = ["docker", "exec", self.container, *cmd]
        if self.remote is not None:
            argv = ssh.command(self.remote, argv)
        elif self.docker_host and not self.docker_host.startswith("unix://"):
            argv[1:1] = ["-H", self.docker_host]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def birdc(self, *args: str) -> str:
        proc = self.run("birdc", *args)
        if proc.returncode != 0:
            raise RuntimeError(f"birdc {' '.join(args)} in {self.container}: {(proc.stderr or proc.stdout).strip()}")
        return proc.stdout


@dataclass
class Route:
    prefix: str
    protocol: str
    as_path: list[int] = field(default_factory=list)
    communities: list[tuple[int, int]] = field(default_factory=list)
    best: bool = False
    local_pref: Optional[int] = None


@dataclass
class Protocol:
    name: str
    proto: str
    state: str
    info: str


_ROUTE_HEAD = re.compile(r"^(\S+/\d+)\s+\S+\s+\[(\S+)[^\]]*\]( \*)?")
_ALT_HEAD = re.compile(r"^\s+\S+\s+\[(\S+)\s[^\]]*\]( \*)?")


def protocols(target: Target) -> dict[str, Protocol]:
    out = {}
    for line in target.birdc("show", "protocols").splitlines()[2:]:
        parts = line.split(None, 5)
        if len(parts) >= 5:
            out[parts[0]] = Protocol(parts[0], parts[1], parts[3], parts[5].strip() if len(parts) > 5 else "")
    return out


def routes(target: Target, *selectors: str) -> list[Route]:
    """`show route all [selectors]` as records: one per route (alternatives included)."""
    found: list[Route] = []
    prefix = None
    proc = target.run("birdc", "show", "route", "all", *selectors)
    if "Network not found" in proc.stdout:
        return []
    if proc.returncode != 0:
        raise RuntimeError(f"birdc show route all {' '.join(selectors)} in {target.container}: {(proc.stderr or proc.stdout).strip()}")
    for line in proc.stdout.splitlines():
        head = _ROUTE_HEAD.match(line)
        alt = _ALT_HEAD.match(line) if not head else None
        if head:
            prefix = head.group(1)
            found.append(Route(prefix, head.group(2), best=bool(head.group(3))))
        elif alt and prefix and not line.strip().startswith(("via", "dev", "Type:", "BGP.")):
            found.append(Route(prefix, alt.group(1), best=bool(alt.group(2))))
        elif "BGP.as_path:" in line and found:
            found[-1].as_path = [int(a) for a in line.split(":", 1)[1].split() if a.isdigit()]
        elif "BGP.local_pref:" in line and found:
            found[-1].local_pref = int(line.split(":", 1)[1])
        elif "BGP.community:" in line and found:
            found[-1].communities = [(int(a), int(b)) for a, b in re.findall(r"\((\d+),(\d+)\)", line)]
    return found


def bfd_sessions(target: Target) -> dict[str, str]:
    """`show bfd sessions`: neighbor address -> state (Up, Down, Init, ...)."""
    out = {}
    for line in target.birdc("show", "bfd", "sessions").splitlines():
        parts = line.split()
        if len(parts) >= 3 and re.fullmatch(r"[0-9a-fA-F.:]+", parts[0]) and ("." in parts[0] or ":" in parts[0]):
            out[parts[0]] = parts[2]
    return out


def import_limit(target: Target, protocol: str) -> tuple[Optional[int], Optional[str], int]:
    """(limit, action, imported routes) of a BGP session's channel."""
    text = target.birdc("show", "protocols", "all", protocol)
    limit = re.search(r"Import limit:\s+(\d+)", text)
    action = re.search(r"Action:\s+(\w+)", text)
    imported = re.search(r"Routes:\s+(\d+) imported", text)
    return (
        int(limit.group(1)) if limit else None,
        action.group(1) if action else None,
        int(imported.group(1)) if imported else 0,
    )
