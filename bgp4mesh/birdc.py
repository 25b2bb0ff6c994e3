"""Read BIRD's state through `birdc` in a container, on the local engine or on a
remote host over SSH, parsed into small records. Used by the live tests and by
`verify`, which check a router from its peer's side."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from typing import Optional

from .config import Ssh
from .docker_cli import Engine


@dataclass(frozen=True)
class Target:
    """A container on a Docker engine: this machine's (docker_host None: the default
    one), or a remote host's, where `docker` runs over SSH."""

    container: str
    docker_host: Optional[str] = None
    remote: Optional[Ssh] = None

    @property
    def engine(self) -> Engine:
        return Engine(self.docker_host, self.remote)

    def run(self, *cmd: str, timeout: float = 20, input: Optional[str] = None) -> subprocess.CompletedProcess:
        """`cmd` in the container; `input`, when given, is its standard input."""
        interactive = ["-i"] if input is not None else []
        return self.engine.run("exec", *interactive, self.container, *cmd, input=input, timeout=timeout)

    def write(self, path: str, text: str) -> None:
        """Replace the file at `path` in the container at once: a reader (stayrtr polling its
        VRP file) sees the old content or the new, never half of it."""
        proc = self.run("sh", "-c", 'cat > "$1.new" && mv "$1.new" "$1"', "write", path, input=text, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"writing {path} in {self.container}: {(proc.stderr or proc.stdout).strip()}")

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
    since: str = ""
    """BIRD's Since column: a date and a time (`timeformat protocol iso long`), or one word."""


_ROUTE_HEAD = re.compile(r"^(\S+/\d+)\s+\S+\s+\[(\S+)[^\]]*\]( \*)?")
_ALT_HEAD = re.compile(r"^\s+\S+\s+\[(\S+)\s[^\]]*\]( \*)?")


_PROTOCOL_LINE = re.compile(r"^(\S+)\s+(\S+)\s+\S+\s+(\S+)\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?|\S+)(?:\s+(.*))?$")
"""Name, Proto, Table, State, Since, Info: Since is one word (BIRD's default: a time, or
a date when older than 20 hours) or, with `timeformat protocol iso long` (which
prometheus-bird-exporter needs), a date and a time."""


def protocols(target: Target, *names: str) -> dict[str, Protocol]:
    out = {}
    for line in target.birdc("show", "protocols", *names).splitlines()[2:]:
        found = _PROTOCOL_LINE.match(line)
        if found:
            name, proto, state, since, info = found.groups()
            out[name] = Protocol(name, proto, state, (info or "").strip(), since)
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


ROA_STATES = {0: "not found", 1: "valid", 2: "invalid"}
"""BIRD 2.0.12's ROA_UNKNOWN, ROA_VALID and ROA_INVALID (nest/route.h), by RFC 6811's names."""
RTR_ANSWERING = ("Established", "Sync-Start", "Sync-Running")
"""States of a `protocol rpki` whose cache answers (proto/rpki/rpki.c str_cache_states)."""


def roa_state(target: Target, table: str, prefix: str, asn: int) -> str:
    """The RFC 6811 state of `prefix` originated by `asn`, by the router's ROA table now."""
    out = target.birdc("eval", f"roa_check({table}, {prefix}, {asn})")
    found = re.search(r"\(enum \d+\)(\d+)", out)
    if not found or int(found.group(1)) not in ROA_STATES:
        raise RuntimeError(f"roa_check in {target.container}: {out.strip()}")
    return ROA_STATES[int(found.group(1))]


def route_count(target: Target, table: str) -> int:
    """How many routes `table` holds (in a ROA table: the ROAs)."""
    out = target.birdc("show", "route", "table", table, "count")
    found = re.search(r"(\d+) of \d+ routes", out)
    if not found:
        raise RuntimeError(f"show route table {table} count in {target.container}: {out.strip()}")
    return int(found.group(1))
