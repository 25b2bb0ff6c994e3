"""The Docker CLI, run the one way bgp4mesh runs it: on this machine's engine, on an
engine named by URL (`-H`, as DOCKER_HOST takes it), or on a remote host over SSH with
its key pinned. `birdc` (and so `verify`) and the test harness both go through it, so
a failure reads the same wherever it happens."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Optional, Union

from . import ssh
from .config import Ssh


class DockerError(RuntimeError):
    """A docker command failed; the message names it and carries docker's own words."""


@dataclass(frozen=True)
class Engine:
    """Where `docker` runs: the default engine (nothing given), the one at `docker_host`,
    or a remote host's, reached over SSH."""

    docker_host: Optional[str] = None
    remote: Optional[Ssh] = None

    def argv(self, *args: str) -> list[str]:
        argv = ["docker", *args]
        if self.remote is not None:
            return ssh.command(self.remote, argv)
        if self.docker_host and not self.docker_host.startswith("unix://"):
            argv[1:1] = ["-H", self.docker_host]
        return argv

    def run(self, *args: str, input: Union[bytes, str, None] = None, timeout: float = 600) -> subprocess.CompletedProcess:
        """`docker ARGS` with `input` (or nothing) on its stdin; its output as text."""
        data = input.encode() if isinstance(input, str) else input
        stdin = {"input": data} if data is not None else {"stdin": subprocess.DEVNULL}
        proc = subprocess.run(self.argv(*args), capture_output=True, timeout=timeout, **stdin)
        return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))

    def out(self, *args: str, check: bool = True, input: Union[bytes, str, None] = None, timeout: float = 600) -> str:
        """What `docker ARGS` printed, stripped; with `check`, DockerError when it failed."""
        proc = self.run(*args, input=input, timeout=timeout)
        if check and proc.returncode != 0:
            raise DockerError(f"docker {' '.join(args[:4])}: {proc.stderr.strip()}")
        return proc.stdout.strip()


LOCAL = Engine()


def docker(*args: str, check: bool = True, input: Union[bytes, str, None] = None, timeout: float = 600) -> str:
    """`Engine.out` on this machine's engine: what the tests, benches and simulation call."""
    return LOCAL.out(*args, check=check, input=input, timeout=timeout)
