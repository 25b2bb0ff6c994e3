"""What of the simulation exists on this machine's engine: its containers, networks and
volumes (labelled, or named with the prefix), their state and their memory."""

from __future__ import annotations

from pathlib import Path

from bgp4mesh.docker_cli import docker

from .base import LABEL, PREFIX, info_path, inspect


def ours(kind: str) -> list[str]:
    """Names of sim objects of `kind` (ps, network, volume): labelled, or named with the prefix."""
    fmt = "{{.Names}}" if kind == "ps" else "{{.Name}}"
    base = ["ps", "-a"] if kind == "ps" else [kind, "ls"]
    names = set(docker(*base, "--filter", f"label={LABEL}", "--format", fmt).split())
    names.update(n for n in docker(*base, "--filter", f"name={PREFIX}", "--format", fmt).split() if n.startswith(PREFIX))
    return sorted(names)


def leftovers() -> list[str]:
    """Every sim object still there, as "KIND NAME"."""
    return [f"{k} {n}" for k in ("ps", "network", "volume") for n in ours(k)]


def status() -> dict:
    """Each sim container's state and addresses, the networks, the volumes, the info file."""
    rows = {}
    for name in ours("ps"):
        c = inspect("container", name) or {}
        nets = c.get("NetworkSettings", {}).get("Networks", {})
        rows[name] = {"state": c.get("State", {}).get("Status"), "addresses": {k.removeprefix(PREFIX): v.get("IPAddress") for k, v in nets.items()}}
    return {"containers": rows, "networks": ours("network"), "volumes": ours("volume"), "info": str(info_path()) if info_path().exists() else None}


def memory() -> dict[str, str]:
    """Memory in use per running sim container, as `docker stats --no-stream` counts it
    (a host's figure includes its inner engine's containers, which live in its cgroup).
    Where docker stats answers 0B the figure is read from the container's memory cgroup
    the same way (usage minus inactive file cache)."""
    names = [n for n in ours("ps") if (inspect("container", n) or {}).get("State", {}).get("Running")]
    out = docker("stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *names) if names else ""
    rows = dict(line.split("\t", 1) for line in out.splitlines() if line)
    for name, usage in rows.items():
        if usage.startswith("0B"):
            rows[name] = f"{_cgroup_memory(name) / 2**20:.1f}MiB (cgroup)"
    return rows


def _cgroup_memory(name: str) -> int:
    pid = docker("inspect", "-f", "{{.State.Pid}}", name)
    rel = next(line.split(":", 2)[2] for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines() if line.split(":")[1] == "memory")
    d = Path("/sys/fs/cgroup/memory") / rel.lstrip("/")
    stat = dict(line.split() for line in (d / "memory.stat").read_text().splitlines())
    return int((d / "memory.usage_in_bytes").read_text()) - int(stat.get("total_inactive_file", 0))
