"""The one Docker CLI wrapper (bgp4mesh/docker_cli.py) that birdc, verify, the tests, the
benches and the simulation use: where it runs docker, what it hands docker's stdin, and
how a failure reads. A fake `docker` on PATH records what it was given."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bgp4mesh.birdc import Target
from bgp4mesh.config import Ssh
from bgp4mesh.docker_cli import DockerError, Engine, docker

FAKE_DOCKER = """#!/bin/sh
# args on stdout, one a line, then what came on stdin; fails when asked to
printf '%s\\n' "$@"
[ "$1" = fail ] && { echo "no such thing: $2" >&2; exit 1; }
cat
"""
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


@pytest.fixture()
def fake_docker(tmp_path: Path, monkeypatch) -> None:
    exe = tmp_path / "docker"
    exe.write_text(FAKE_DOCKER)
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")


def test_where_docker_runs():
    assert Engine().argv("ps") == ["docker", "ps"]
    assert Engine("unix:///var/run/docker.sock").argv("ps") == ["docker", "ps"]
    assert Engine("tcp://10.0.0.1:2376").argv("ps", "-a") == ["docker", "-H", "tcp://10.0.0.1:2376", "ps", "-a"]
    remote = Engine(remote=Ssh(address="203.0.113.20", host_key=KEY, private_key_file="/k")).argv("exec", "c", "birdc", "show status")
    assert remote[0] == "ssh" and remote[-3:] == ["203.0.113.20", "--", "docker exec c birdc 'show status'"]
    assert f"KnownHostsCommand=/bin/echo %H {KEY}" in remote, "the host key is pinned"


def test_output_stdin_and_failure(fake_docker):
    assert docker("inspect", "x") == "inspect\nx"
    assert docker("cp", "-", "c:/", input=b"\x00tar") == "cp\n-\nc:/\n\x00tar"
    assert docker("exec", "c", input="text") == "exec\nc\ntext"
    with pytest.raises(DockerError, match=r"docker fail thing: no such thing: thing"):
        docker("fail", "thing")
    assert docker("fail", "thing", check=False) == "fail\nthing"


def test_birdc_target_runs_through_it(fake_docker):
    """`docker exec` without -i when there is no input (stdin closed), with -i when there is."""
    target = Target("bgp4mesh-dev-isp")
    assert target.run("birdc", "show", "status").stdout.split() == ["exec", "bgp4mesh-dev-isp", "birdc", "show", "status"]
    assert target.run("cat", input="conf").stdout.split() == ["exec", "-i", "bgp4mesh-dev-isp", "cat", "conf"]
    assert Target("c", "tcp://h:2376").engine.argv("exec") == ["docker", "-H", "tcp://h:2376", "exec"]
