"""The enrollment token never appears in a process's argument list (issue 15), also while
the join runs: the real netclient image, the real netclient binary, on the real Docker engine.

A container of the netclient release image (built the way the simulation builds it,
harness.sim) runs on an `--internal` network of its own. `netclient-join` gets a
syntactically valid token on stdin whose server, nm.invalid, the container resolves to
127.0.0.1 where nothing listens: netclient retries its registration 3 times, 5, 10 and 20 s
apart, then gives up (~35 s). Meanwhile this process reads every process's
/proc/<pid>/cmdline and environ on this host (a container's processes are the host's
processes) every ~20 ms, and must never see the token, nor the random marker inside it.

The sampler is shown to work: it sees netclient's own argv (`netclient join -t - ...`) during
the join, and it does catch the token where the token is in argv (netclient started with
`-t <token>`, what netclient-join did before images/netclient/patches/token-stdin.patch).
Nothing in the container's files or in netclient-join's output holds the token afterwards.

JOIN_TOKEN_SCRIPT=<file> puts another netclient-join into the container, e.g. the one before
the fix (`git show <commit>:images/netclient/netclient-join`): the first test must fail then.

Needs Docker, like the live tiers (a missing engine fails the test, it does not skip), and
images/netclient/bin/netclient built by scripts/build-binaries (with the patch)."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import threading
import time

import pytest

from harness import sim

SAMPLE_EVERY = 0.02
JOIN_BOUND = 90.0  # netclient gives up after 4 attempts, 5+10+20 s apart (retryablehttp): ~35 s
CONTROL_BOUND = 15.0


def docker(*args: str, check: bool = True, input: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], input=input, capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])}: {proc.stderr.decode(errors='replace').strip()}")
    return proc


class Sampler(threading.Thread):
    """Reads every process's cmdline and environ every SAMPLE_EVERY s; records the processes
    that held any of NEEDLES, and the argv of every netclient process it saw."""

    def __init__(self, needles: list[bytes]):
        super().__init__(daemon=True)
        self.needles = needles
        self.stop = threading.Event()
        self.leaks: list[tuple[int, str, bytes]] = []
        self.netclient_argv: set[tuple[str, ...]] = set()
        self.rounds = 0

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or int(pid) == me:
                    continue
                for what in ("cmdline", "environ"):
                    try:
                        with open(f"/proc/{pid}/{what}", "rb") as f:
                            data = f.read()
                    except OSError:  # gone meanwhile, or a kernel thread
                        continue
                    if any(n in data for n in self.needles):
                        self.leaks.append((int(pid), what, data[:300]))
                    if what == "cmdline" and data:
                        argv = tuple(a.decode(errors="replace") for a in data.rstrip(b"\0").split(b"\0"))
                        if os.path.basename(argv[0]) == "netclient":
                            self.netclient_argv.add(argv)
            self.rounds += 1
            self.stop.wait(SAMPLE_EVERY)

    def __enter__(self) -> "Sampler":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.join(5)


@pytest.fixture()
def member():
    """A fresh netclient container on an --internal network; both removed, also on failure."""
    image = sim.own_image("netclient")  # rebuilt only when its build context changed
    name = f"bgp4mesh-jointoken-{secrets.token_hex(4)}"
    docker("network", "create", "--internal", name)
    try:
        docker("run", "-d", "--name", name, "--hostname", "jointoken", "--network", name,
               "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW", "--device", "/dev/net/tun",
               "--add-host", "nm.invalid:127.0.0.1",  # refused at once (a DNS lookup there times out)
               "-e", f"NETCLIENT_NAME={name}", image)  # in netclient's argv (-o): tells our join from others
        deadline = time.monotonic() + 30
        while docker("exec", name, "test", "-e", "/run/bgp4mesh-netclient-ready", check=False).returncode != 0:
            assert time.monotonic() < deadline, f"the entrypoint never got ready: {docker('logs', name, check=False).stderr.decode()}"
            time.sleep(0.2)
        other = os.environ.get("JOIN_TOKEN_SCRIPT")  # e.g. an older netclient-join, to see this test fail
        if other:
            docker("cp", other, f"{name}:/usr/local/bin/netclient-join")
        yield name
    finally:
        docker("rm", "-f", "-v", name, check=False)
        docker("network", "rm", name, check=False)


def token_and_marker() -> tuple[str, str]:
    marker = "jointoken" + secrets.token_hex(16)
    payload = json.dumps({"server": "nm.invalid:443", "value": marker}, separators=(",", ":"))
    return base64.b64encode(payload.encode()).decode(), marker


def run_sampled(cmd: list[str], stdin: bytes, needles: list[bytes], bound: float, until_leak: bool = False):
    """Run CMD (a `docker exec`) with STDIN under the sampler until it exits, BOUND seconds
    passed or (UNTIL_LEAK) the sampler saw a needle; return (sampler, returncode, output)."""
    with Sampler(needles) as s, subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        proc.stdin.write(stdin)
        proc.stdin.close()
        deadline = time.monotonic() + bound
        while proc.poll() is None and time.monotonic() < deadline and not (until_leak and s.leaks):
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        out = proc.stdout.read()
        proc.wait()
    return s, proc.returncode, out.decode(errors="replace")


def test_join_keeps_the_token_out_of_every_argv(member):
    token, marker = token_and_marker()
    needles = [token.encode(), marker.encode()]
    t0 = time.monotonic()
    s, rc, out = run_sampled(["docker", "exec", "-i", member, "netclient-join", "testnet"], token.encode() + b"\n", needles, JOIN_BOUND)
    took = time.monotonic() - t0
    # The token was in no process's argument list or environment, ...
    assert not s.leaks, f"the token was visible in /proc while the join ran: {s.leaks[:3]}"
    # ... and the sampler worked: it saw netclient's own argument list while the join ran.
    joins = [a for a in s.netclient_argv if "join" in a and member in a]
    assert joins, f"the sampler never saw `netclient join` ({s.rounds} rounds in {took:.0f}s); output:\n{out}"
    assert all(a[a.index("join") + 1 : a.index("join") + 3] == ("-t", "-") for a in joins), joins
    assert s.rounds > took / (SAMPLE_EVERY * 10), f"only {s.rounds} sampling rounds in {took:.0f}s"
    # netclient read the token from stdin and tried to register with its server (a binary
    # without the patch takes "-" for the token: "could not read enrollment token").
    assert "error registering with server" in out, f"netclient did not get to registration; is images/netclient/bin/netclient patched (scripts/build-binaries)?\n{out}"
    assert rc != 0, out
    # The token is not in what the join printed (netclient's error holds the request URL) ...
    assert token not in out and marker not in out, out
    # and no file in the container holds it (patterns on grep's stdin, not in its argv).
    found = docker("exec", "-i", member, "grep", "-rlsF", "-f", "-", "/etc", "/run", "/tmp", "/root", "/var", "/home",
                   input=f"{token}\n{marker}\n".encode(), check=False)
    assert found.returncode == 1 and not found.stdout.strip(), f"files hold the token: {found.stdout.decode()}"


def test_the_sampler_catches_a_token_in_argv(member):
    """The control: netclient given the token on its command line, as netclient-join did
    before (the token reaches it on stdin, so only netclient's argv can show it)."""
    token, marker = token_and_marker()
    cmd = ["docker", "exec", "-i", member, "bash", "-c", 'exec netclient join -t "$(cat)"']
    s, _, out = run_sampled(cmd, token.encode(), [token.encode(), marker.encode()], CONTROL_BOUND, until_leak=True)
    assert any(what == "cmdline" for _, what, _ in s.leaks), f"the sampler missed the token in netclient's argv ({s.rounds} rounds); output:\n{out}"
