"""Hosts: where a stack's containers run, and how commands reach them.

A local Docker engine (dev/lab), or a remote host reached over SSH with its key pinned
(prod): Docker over ssh:// with bgp4mesh.ssh's options, and commands (host preparation,
`docker exec` into a container) as pulumi-command remote.Command with the same key.
Components ask their host to run a command and never care which kind it is."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from bgp4mesh import ssh
from bgp4mesh.config import Host, Images
from bgp4mesh.host_plan import SCRIPT_PATH, UNDO, HostPlan, render_host_prep
from bgp4mesh.plan import StackPlan

from .docker_parts import ImageSet

DIAL_ATTEMPTS = 3
"""remote.Command dial attempts (the provider's default is 10, 15 s each: minutes before
an unreachable host is reported)."""


class HostContext:
    """One host: its Docker provider, the images on it, and a way to run commands there."""

    def __init__(self, host: Host, images: Images):
        self.spec = host
        self.name = host.name
        self.endpoint = host.docker_endpoint
        self.provider = docker.Provider(
            f"docker-{host.name}",
            host=self.endpoint,
            ssh_opts=ssh.docker_ssh_options(host.ssh) if host.ssh else None,
        )
        self._after: list[pulumi.Resource] = []
        self.images = ImageSet(prefix=f"{host.name}-", images=images, opts=pulumi.ResourceOptions(provider=self.provider))

    @property
    def remote(self) -> bool:
        return self.spec.ssh is not None

    def opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        """Options for a container on this host: its provider, and after host preparation."""
        depends = list(kwargs.pop("depends_on", [])) + self._after
        return pulumi.ResourceOptions(providers={"docker": self.provider}, depends_on=depends, **kwargs)

    def connection(self) -> command.remote.ConnectionArgs:
        s = self.spec.ssh
        key = ssh.key_file(s)
        return command.remote.ConnectionArgs(
            host=s.address,
            port=s.port,
            user=s.user,
            private_key=pulumi.Output.secret(key.read_text()),
            host_key=s.host_key,
            dial_error_limit=DIAL_ATTEMPTS,
            per_dial_timeout=ssh.CONNECT_TIMEOUT,
        )

    def run(
        self,
        name: str,
        create: pulumi.Input[str],
        opts: pulumi.ResourceOptions,
        *,
        stdin: Optional[pulumi.Input[str]] = None,
        delete: Optional[str] = None,
        triggers: Optional[Sequence[Any]] = None,
    ) -> pulumi.Resource:
        """A shell command on this host: `docker` there talks to this host's engine."""
        if self.remote:
            return command.remote.Command(
                name, connection=self.connection(), create=create, stdin=stdin, delete=delete, triggers=triggers, opts=opts
            )
        return command.local.Command(
            name, create=create, stdin=stdin, delete=delete, triggers=triggers, environment={"DOCKER_HOST": self.endpoint}, opts=opts
        )

    def prepare(self, plan: HostPlan) -> Optional[pulumi.Resource]:
        """A remote host: sysctls, addresses and firewall applied (and kept for boot) before
        any container runs there. A local engine is the lab's: nothing to prepare."""
        if not self.remote:
            return None
        script = render_host_prep(plan)
        prep = self.run(
            f"{self.name}-host-prep",
            f"umask 022 && cat > {SCRIPT_PATH}.new && chmod 755 {SCRIPT_PATH}.new && mv {SCRIPT_PATH}.new {SCRIPT_PATH} && {SCRIPT_PATH}",
            pulumi.ResourceOptions(),
            stdin=script,
            delete=UNDO,
        )
        self._after.append(prep)
        return prep


def hosts(plan: StackPlan) -> dict[str, HostContext]:
    """Every host of the plan, prepared before anything runs there."""
    contexts = {h.name: HostContext(h, plan.model.images) for h in plan.model.hosts}
    for context in contexts.values():
        context.prepare(plan.host(context.name))
    return contexts
