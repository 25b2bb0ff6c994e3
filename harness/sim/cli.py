"""`./scripts/sim up|down|status|stop-isp|start-isp|restart-host HOST|memory`: the
simulation from the command line (`python -m harness.sim`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Optional

from bgp4mesh.docker_cli import DockerError

from .base import SimError
from .inventory import memory, status
from .isp import start_isp, stop_isp
from .lifecycle import down, restart_host, up
from .topology import HOSTS


def _show(value: dict) -> None:
    print(json.dumps(value, indent=2))


def _without_secret(info: dict) -> dict:
    """staging.json as printed: all of it but the ISP's MD5 password."""
    return info | {"isp": {k: v for k, v in info["isp"].items() if k != "md5_password"}}


ACTIONS: dict[str, Callable[[argparse.Namespace], None]] = {
    "up": lambda a: _show(_without_secret(up(a.tag))),
    "down": lambda a: down(),
    "status": lambda a: _show(status()),
    "stop-isp": lambda a: stop_isp(),
    "start-isp": lambda a: start_isp(),
    "restart-host": lambda a: restart_host(a.host),
    "memory": lambda a: _show(memory()),
}


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="./scripts/sim", description="the simulated Internet for the staging stack (harness/sim)")
    p.add_argument("action", choices=list(ACTIONS))
    p.add_argument("host", nargs="?", help="for restart-host")
    p.add_argument("--tag", help="tag for our images in the registry (default: a hash of their image ids)")
    a = p.parse_args(argv)
    if a.action == "restart-host" and a.host not in HOSTS:
        p.error(f"restart-host needs one of {', '.join(HOSTS)}")
    try:
        ACTIONS[a.action](a)
    except (SimError, DockerError) as exc:
        print(f"sim {a.action}: {exc}", file=sys.stderr)
        return 1
    return 0
