"""Live-tier helpers: retry checks like netlab's validate, read what a deployment left on
its engines, prove teardown leaves nothing behind, and deploy staging on the simulation."""

from __future__ import annotations

import subprocess
from typing import Callable, Iterator, TypeVar

from bgp4mesh.agent_config import schema as agent_schema
from bgp4mesh.docker_cli import LOCAL, Engine, docker
from bgp4mesh.host_plan import NETCLIENT_IGW_RULES, NETCLIENT_IGW_TABLE
from bgp4mesh.verify import RETRIED
from bgp4mesh.waiting import WaitTimeout, until

T = TypeVar("T")


def eventually(check: Callable[[], T], wait: float, every: float = 0.5, what: str = "") -> T:
    """Retry `check` until it returns a truthy value without raising, or fail with its last error."""
    try:
        return until(check, wait, every, retry_on=(AssertionError, *RETRIED))
    except WaitTimeout as exc:
        raise AssertionError(f"{what or check.__name__} not true within {wait}s: {exc}") from None


def leftovers(stack: str) -> list[str]:
    """Containers, networks and volumes labelled with `stack` on any of its hosts: this
    machine's engine, and each remote host's over SSH (hosts as the engine last ran it)."""
    from bgp4mesh.stack import load_file
    from harness.engine import CACHE

    label = f"label=bgp4mesh.stack={stack}"
    ran_with = CACHE / "stacks" / f"Pulumi.{stack}.yaml"
    remote = [h for h in load_file(stack, ran_with.parent).hosts if h.ssh] if ran_with.exists() else []
    engines = {"": LOCAL, **{f"{h.name}: ": Engine(remote=h.ssh) for h in remote}}
    found = []
    for kind in (["ps", "-a"], ["network", "ls"], ["volume", "ls"]):
        for where, engine in engines.items():
            proc = engine.run(*kind, "-q", "--filter", label, timeout=60)
            found += [f"{where}{kind[0]} {x}" for x in proc.stdout.split()] + ([f"{where}{proc.stderr.strip()}"] if proc.returncode else [])
    return found + [f"{h.name}: {line}" for h in remote for line in _host_state_left(h.ssh)]


LEFT_PREFS = sorted({p for _v, p in agent_schema.HOST_ROUTING} | {p for p, _t in NETCLIENT_IGW_RULES})
HOST_STATE = ("{ iptables -w -S; ip6tables -w -S; } 2>/dev/null | grep BGP4MESH; "
              "{ ip -4 rule show; ip -6 rule show; } | grep -E '^(" + "|".join(str(p) for p in LEFT_PREFS) + "):'; "
              f"ip -4 route show table {NETCLIENT_IGW_TABLE}; ip -6 route show table {NETCLIENT_IGW_TABLE} 2>/dev/null; true")
"""What the members' edge firewall, the HA agent and netclient's internet gateway leave in a real host's own tables (host networking): nothing, once the
stack is destroyed."""


def _host_state_left(spec) -> list[str]:
    from bgp4mesh import ssh

    proc = subprocess.run(ssh.command(spec, ["sh", "-c", HOST_STATE]), capture_output=True, text=True, timeout=60)
    return proc.stdout.splitlines() + ([proc.stderr.strip()] if proc.returncode else [])


def server_secrets(stack: str) -> dict[str, str]:
    """The Netmaker server's credentials as it holds them (its 0600 config file; they are
    not in its environment): {"masterkey": ..., "mqpassword": ...}."""
    import json

    from bgp4mesh.naming import docker_name
    from bgp4mesh.netmaker_env import SECRETS_FILE

    return json.loads(docker("exec", docker_name(stack, "netmaker-server"), "cat", SECRETS_FILE))["server"]


def container_started_at(name: str) -> float:
    """Container start time as a monotonic-comparable epoch float."""
    from datetime import datetime

    text = docker("inspect", "-f", "{{.State.StartedAt}}", name)
    return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00").timestamp()


def bird_time(when: str, ref: float) -> float:
    """A time BIRD printed (UTC in the container) in epoch seconds: a date and a time (`show
    protocols` with the templates' `timeformat protocol iso long`), or HH:MM:SS.mmm of the day
    of `ref` (BIRD's default, e.g. `show route`)."""
    from datetime import datetime, timezone

    if " " not in when:
        when = datetime.fromtimestamp(ref, timezone.utc).strftime("%Y-%m-%d ") + when
    return datetime.fromisoformat(when.replace(" ", "T") + "+00:00").timestamp()


class PingTrain:
    """`count` echo requests at `interval` seconds from a container to `address` (from
    `source`, e.g. an Internet test address), started at once; `result()` waits for the
    last one and tells which were answered. Used by the HA test and bench/ha_failover.py."""

    def __init__(self, container: str, address: str, count: int, interval: float = 0.05, source: str | None = None):
        import subprocess

        self.count, self.interval = count, interval
        self.proc = subprocess.Popen(
            ["docker", "exec", container, "ping", "-n", "-c", str(count), "-i", str(interval), "-W", "1",
             *(["-I", source] if source else []), address],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    def result(self) -> "TrainResult":
        import re

        out, _ = self.proc.communicate(timeout=self.count * self.interval + 60)
        answered = {int(s) for s in re.findall(r"icmp_seq=(\d+) ttl=", out)}
        return TrainResult(self.count, self.interval, answered)


class TrainResult:
    def __init__(self, count: int, interval: float, answered: set[int]):
        self.count, self.interval, self.answered = count, interval, answered
        self.lost = count - len(answered)
        gaps, run = [], 0
        for seq in range(1, count + 1):
            run = 0 if seq in answered else run + 1
            gaps.append(run)
        self.longest = max(gaps, default=0)
        """The longest run of unanswered requests."""

    @property
    def window(self) -> float:
        """The longest loss window in seconds (the longest unanswered run times the interval)."""
        return self.longest * self.interval

    def __str__(self) -> str:
        return f"{self.lost}/{self.count} lost, longest gap {self.window:.2f}s"


class RemoteDeployment:
    """A stack deployed on the simulated remote hosts, reached as the operator does."""

    def __init__(self, stack, info: dict):
        from bgp4mesh.stack import load_file
        from harness.engine import CACHE

        self.stack, self.info, self.name = stack, info, stack.name
        self.cfg = load_file(stack.name, CACHE / "stacks")  # what the engine ran with (secrets as placeholders)
        self.outputs = stack.outputs()

    def on(self, host: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """`command` on a simulated host, over SSH with its pinned key (as the program does)."""
        from bgp4mesh import ssh

        spec = self.cfg.host(host)
        return subprocess.run(ssh.command(spec.ssh, ["sh", "-c", command]), capture_output=True, text=True, timeout=timeout)

    def out(self, host: str, command: str) -> str:
        proc = self.on(host, command)
        assert proc.returncode == 0, f"{host}: {command}: {proc.stderr.strip()[-400:]}"
        return proc.stdout.strip()

    def target(self, member: str, host: str):
        from bgp4mesh.birdc import Target
        from bgp4mesh.naming import docker_name

        return Target(docker_name(self.name, member), remote=self.cfg.host(host).ssh)


def staging_deployed(name: str) -> Iterator[RemoteDeployment]:
    """A module fixture's body: the simulation up, stack `name` deployed on it (after
    destroying what an interrupted run left), destroyed at the end and checked to leave
    nothing; the simulation taken down again unless it was running before."""
    from harness import sim, staging

    was_running = sim.info_path().exists()
    info = sim.up()
    stack = staging.stack(name, info)
    stack.destroy()  # whatever an interrupted run left
    stack.up()
    try:
        yield RemoteDeployment(stack, info)
    finally:
        try:
            stack.destroy()
            left = leftovers(name)
        finally:
            if not was_running:
                sim.down()
        assert not left, f"pulumi destroy left {left}"
