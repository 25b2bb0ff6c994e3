"""Phases of an engine run, from its event log (`pulumi up --event-log FILE`): when the
steps of a set of resources started and ended. The bench tells the join phase (every
member's join resources: enrollment key, join, member, address gate) apart from the
rest of an `up` this way, whatever resources the joins are made of.

The engine stamps events in whole seconds, so a phase is known to about a second."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from components.mesh_join import JOIN_PARTS


@dataclass(frozen=True)
class Phase:
    start: int
    end: int
    steps: int

    @property
    def seconds(self) -> int:
        return self.end - self.start


def events(log: Path) -> list[dict]:
    """The events the engine wrote, one JSON object a line."""
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _urn(event: dict) -> Optional[str]:
    for kind in ("resourcePreEvent", "resOutputsEvent", "resOpFailedEvent"):
        if kind in event:
            return event[kind]["metadata"]["urn"]
    return None


def phase(log: Path, member_of: Callable[[str], bool]) -> Optional[Phase]:
    """From the first step start to the last step end of the resources whose URN
    `member_of` accepts (steps that change nothing are left out); None if there were none."""
    stamps, steps = [], 0
    for event in events(log):
        urn = _urn(event)
        if urn is None or not member_of(urn):
            continue
        meta = next(iter(v for k, v in event.items() if k.endswith("Event")))["metadata"]
        if meta.get("op") == "same":
            continue
        stamps.append(int(event["timestamp"]))
        steps += "resourcePreEvent" in event
    return Phase(min(stamps), max(stamps), steps) if stamps else None


def in_joins(urn: str) -> bool:
    """One of a member's join resources (components.mesh_join: `<member>-<part>`, under the
    MeshNode or BorderRouter)."""
    types, name = urn.split("::")[2], urn.rsplit("::", 1)[1]
    owner = types.split("$")[-2] if "$" in types else ""
    return owner in ("bgp4mesh:index:MeshNode", "bgp4mesh:index:BorderRouter") and name.endswith(tuple(f"-{p}" for p in JOIN_PARTS))


def slowest(log: Path, count: int = 3) -> list[tuple[str, int]]:
    """The `count` resources whose step took longest (name, seconds): where a slow run went.
    Components and the stack are left out: they last as long as their slowest child."""
    started: dict[str, int] = {}
    took: dict[str, int] = {}
    for event in events(log):
        urn = _urn(event)
        kind = urn.split("::")[2].split("$")[-1] if urn else ""
        if urn is None or kind.startswith("bgp4mesh:index:") or kind == "pulumi:pulumi:Stack":
            continue
        if "resourcePreEvent" in event:
            started[urn] = int(event["timestamp"])
        elif urn in started:
            took[urn.rsplit("::", 1)[1]] = int(event["timestamp"]) - started[urn]
    return sorted(took.items(), key=lambda kv: -kv[1])[:count]
