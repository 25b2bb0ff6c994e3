"""command:remote:Command stand-in against a real OpenSSH server on loopback (no mocks).

The fixture runs Debian's sshd (openssh-server, installed by scripts/bootstrap) on a free
127.0.0.1 port with its own sshd_config, host key and authorized_keys in a temp dir, as the
current user (root here: keys only, PermitRootLogin prohibit-password). A second sshd accepts no
environment variables at all. The last test runs a program with a remote.Command through the
built CLI (`scripts/build-pulumi`), like test_smoke.py.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import grpc
import pytest
from pulumi.runtime.proto import provider_pb2

from conftest import urn
from standin.base import SECRET_SIG_KEY, UNKNOWN, marshal, unmarshal
from standin.command import CommandProvider, RemoteCommand
from test_smoke import Project, _have

PLUGIN = "command"
T = "command:remote:Command"
SSHD = "/usr/sbin/sshd"

pytestmark = pytest.mark.skipif(
    not (os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("ssh-keygen")),
    reason="no OpenSSH server/client (scripts/bootstrap installs openssh-server openssh-client)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path, kind: str = "ed25519", passphrase: str = "") -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", "b4m-test", "-f", str(path)],
                   check=True)


class Sshd:
    def __init__(self, d: Path, keys: Path, accept_env: str):
        self.dir = d
        self.port = _free_port()
        self.user = getpass.getuser()
        _keygen(d / "host_ed25519")
        self.host_key = (d / "host_ed25519.pub").read_text()
        (d / "authorized_keys").write_text("".join((keys / f"{k}.pub").read_text() for k in ("id", "id_enc", "pkcs8")))
        (d / "sshd_config").write_text(textwrap.dedent(f"""\
            Port {self.port}
            ListenAddress 127.0.0.1
            HostKey {d}/host_ed25519
            PidFile {d}/sshd.pid
            AuthorizedKeysFile {d}/authorized_keys
            StrictModes no
            PermitRootLogin prohibit-password
            PasswordAuthentication yes
            KbdInteractiveAuthentication no
            UsePAM no
            AllowTcpForwarding yes
            MaxStartups 100:30:200
            MaxSessions 100
            LogLevel VERBOSE
            """) + (f"AcceptEnv {accept_env}\n" if accept_env else ""))
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        self.log = open(d / "sshd.log", "w")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(d / 'sshd.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    _keygen(d / "id")
    _keygen(d / "id_enc", passphrase="correct horse battery")
    _keygen(d / "other")
    _keygen(d / "other_host")
    _keygen(d / "ecdsa_host", kind="ecdsa")
    # an Ed25519 key in PKCS#8 PEM, as tls.PrivateKey(algorithm="ED25519").private_key_pem
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ed25519

    k = ed25519.Ed25519PrivateKey.generate()
    (d / "pkcs8").write_bytes(k.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()))
    (d / "pkcs8.pub").write_bytes(k.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH) + b"\n")
    return d


@pytest.fixture(scope="module")
def sshd(tmp_path_factory, keys):
    s = Sshd(tmp_path_factory.mktemp("sshd"), keys, accept_env="FOO B4M_* PULUMI_COMMAND_*")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def strict_sshd(tmp_path_factory, keys):
    s = Sshd(tmp_path_factory.mktemp("sshd-strict"), keys, accept_env="")
    yield s
    s.stop()


def conn(sshd: Sshd, keys: Path, **kw) -> dict:
    c = {"host": "127.0.0.1", "port": sshd.port, "user": sshd.user, "privateKey": (keys / "id").read_text(),
         "hostKey": sshd.host_key, "dialErrorLimit": 0}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


def key_fragments(keys: Path, name: str = "id") -> list[str]:
    """Lines of the private key's body: none of them may show up anywhere."""
    body = [ln for ln in (keys / name).read_text().splitlines() if ln and not ln.startswith("-----")]
    assert body
    return body


@pytest.fixture(scope="module", autouse=True)
def ssh_tmp():
    """A TMPDIR of this module's own for the plugin (started after this fixture): the per-operation
    ssh dirs land there, so leftovers are this module's, whatever else runs on the machine."""
    d = tempfile.mkdtemp(prefix="b4mt-", dir="/tmp")  # short: the control socket lives below it
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", d)
        yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def _ssh_leftovers(tmp: Path, wait: float = 3.0) -> list[str]:
    """ssh processes (masters) and temp dirs of ours still there (masters end just after `-O exit`)."""
    deadline = time.time() + wait
    while True:
        ps = subprocess.run(["ps", "-eww", "-o", "pid=,args="], capture_output=True, text=True).stdout
        left = [ln for ln in ps.splitlines() if str(tmp) in ln] + [str(p) for p in tmp.iterdir()]
        if not left or time.time() > deadline:
            return left
        time.sleep(0.1)


# ---------------------------------------------------------------- over gRPC
def test_create_update_delete(plugin, sshd, keys, tmp_path, ssh_tmp):
    u = urn(T, "c")
    marker = tmp_path / "deleted"
    inputs, failures = plugin.check(u, {
        "connection": conn(sshd, keys),
        "create": "echo created $FOO; cat; echo oops >&2",
        "update": 'echo "updated after [$PULUMI_COMMAND_STDOUT] [$PULUMI_COMMAND_STDERR]"',
        "delete": f'echo "$PULUMI_COMMAND_STDOUT" > {marker}',
        "environment": {"FOO": "bar baz"},
        "stdin": "line one\nline two\n",
    }, secrets={"connection"})
    assert not failures
    t0 = time.time()
    rid, out, sec = plugin.create(u, inputs, secrets={"connection"})
    print(f"create: {time.time() - t0:.2f}s")
    assert rid.startswith("c") and len(rid) == 9  # name + 8 hex digits (NewUniqueHex)
    assert out["stdout"] == "created bar baz\nline one\nline two"  # one trailing newline removed
    assert out["stderr"] == "oops"
    assert "connection" in sec and "stdout" not in sec

    news = dict(inputs, environment={"FOO": "qux"})
    d = plugin.diff(u, rid, out, news)
    assert list(d.diffs) == ["environment"] and not d.replaces
    out2, _ = plugin.update(u, rid, out, news)
    assert out2["stdout"] == "updated after [created bar baz\nline one\nline two] [oops]"

    plugin.delete(u, rid, out2)
    assert marker.read_text() == out2["stdout"] + "\n"
    assert not _ssh_leftovers(ssh_tmp)


def test_update_without_update_reruns_create_and_triggers_replace(plugin, sshd, keys):
    u = urn(T, "u")
    inputs, _ = plugin.check(u, {"connection": conn(sshd, keys), "create": "echo n=$FOO",
                                 "environment": {"FOO": "1"}, "triggers": ["a"]})
    rid, out, _ = plugin.create(u, inputs)
    assert plugin.diff(u, rid, out, inputs).changes == provider_pb2.DiffResponse.DIFF_NONE
    d = plugin.diff(u, rid, out, dict(inputs, triggers=["b"]))
    assert list(d.replaces) == ["triggers"]
    out2, _ = plugin.update(u, rid, out, dict(inputs, environment={"FOO": "2"}))
    assert out2["stdout"] == "n=2"


def test_stdin_and_login_shell(plugin, sshd, keys):
    u = urn(T, "s")
    inputs, _ = plugin.check(u, {"connection": conn(sshd, keys),
                                 "create": 'read a; read b; echo "$b|$a"; echo "$0"', "stdin": "first\nsecond\n"})
    _, out, _ = plugin.create(u, inputs)
    first, shell = out["stdout"].split("\n")
    assert first == "second|first"
    assert shell.lstrip("-").endswith("sh")  # the user's shell ran it (session.Run)
    # no stdin: the command reads EOF at once
    inputs, _ = plugin.check(u, {"connection": conn(sshd, keys), "create": "cat; echo end"})
    _, out, _ = plugin.create(u, inputs)
    assert out["stdout"] == "end"


def test_no_create_does_not_connect_and_preview_does_not_connect(plugin, keys):
    u = urn(T, "p")
    dead = {"host": "127.0.0.1", "port": _free_port(), "privateKey": (keys / "id").read_text(),
            "dialErrorLimit": -1}  # would retry forever
    inputs, failures = plugin.check(u, {"connection": dead, "create": "touch /should-not-run"})
    assert not failures
    t0 = time.time()
    rid, out, _ = plugin.create(u, inputs, preview=True)
    assert out["stdout"] is UNKNOWN and out["stderr"] is UNKNOWN
    inputs, _ = plugin.check(u, {"connection": dead})
    rid, out, _ = plugin.create(u, inputs)
    assert out["stdout"] == "" and rid
    plugin.delete(u, rid, out)  # no delete command: nothing to connect for
    assert time.time() - t0 < 2


def test_check_defaults_secrets_and_failures(plugin, sshd, keys):
    u = urn(T, "k")
    r = plugin.stub.Check(provider_pb2.CheckRequest(
        urn=u, news=marshal({"connection": {"host": "h.example"}, "create": "true"})))
    assert SECRET_SIG_KEY in r.inputs.fields["connection"].struct_value.fields  # always secret
    inputs, sec = unmarshal(r.inputs)
    assert "connection" in sec
    assert inputs["connection"] == {"host": "h.example", "user": "root", "port": 22, "dialErrorLimit": 10,
                                    "perDialTimeout": 15}
    _, failures = plugin.check(u, {"create": "true"})
    assert failures and failures[0].property == "connection"
    _, failures = plugin.check(u, {"connection": {"host": "h", "bogus": 1}})
    assert failures and failures[0].property == "connection.bogus"
    _, failures = plugin.check(u, {"connection": {"host": "h", "proxy": {"host": "b", "proxy": {"host": "c"}}}})
    assert failures and failures[0].property == "connection.proxy.proxy"
    _, failures = plugin.check(u, {"connection": {"host": "h"}, "environment": {"A B": "x"}})
    assert failures and failures[0].property == "environment"


def test_failure_reports_status_output_and_host(plugin, sshd, keys, tmp_path):
    u = urn(T, "f")
    inputs, _ = plugin.check(u, {"connection": conn(sshd, keys), "create": "echo visible; echo bad >&2; exit 3"})
    with pytest.raises(grpc.RpcError) as e:
        plugin.create(u, inputs)
    msg = e.value.details()
    assert "Process exited with status 3" in msg and "visible" in msg and "bad" in msg
    assert f"127.0.0.1:{sshd.port}" in msg
    # a command's own exit 255 is a command failure, never a re-dial (it ran once)
    counter = tmp_path / "counter"
    inputs, _ = plugin.check(u, {"connection": conn(sshd, keys, dialErrorLimit=5),
                                 "create": f"echo ran >> {counter}; exit 255"})
    with pytest.raises(grpc.RpcError) as e:
        plugin.create(u, inputs)
    assert "Process exited with status 255" in e.value.details()
    assert counter.read_text() == "ran\n"


def test_wrong_host_key_fails_naming_host_and_host_key(plugin, sshd, keys):
    u = urn(T, "hk")
    for other in ("other_host", "ecdsa_host"):
        inputs, _ = plugin.check(u, {"connection": conn(sshd, keys, hostKey=(keys / f"{other}.pub").read_text()),
                                     "create": "touch /tmp/b4m-should-not-run"})
        with pytest.raises(grpc.RpcError) as e:
            plugin.create(u, inputs)
        msg = e.value.details()
        assert f"127.0.0.1:{sshd.port}" in msg and "host key mismatch" in msg, msg
    assert not os.path.exists("/tmp/b4m-should-not-run")
    # a known_hosts-style line ("host type key") works too, as ssh.ParseAuthorizedKey finds the key
    inputs, _ = plugin.check(u, {"connection": conn(sshd, keys, hostKey=f"[127.0.0.1]:{sshd.port} {sshd.host_key}"),
                                 "create": "echo ok"})
    assert plugin.create(u, inputs)[1]["stdout"] == "ok"
    # without hostKey any host key is accepted (ssh.InsecureIgnoreHostKey)
    inputs, _ = plugin.check(u, {"connection": conn(sshd, keys, hostKey=None), "create": "echo ok"})
    assert plugin.create(u, inputs)[1]["stdout"] == "ok"
    inputs, _ = plugin.check(u, {"connection": conn(sshd, keys, hostKey="not a key"), "create": "echo ok"})
    with pytest.raises(grpc.RpcError) as e:
        plugin.create(u, inputs)
    assert "failed to parse host key" in e.value.details()


def test_unreachable_fails_fast_naming_host(plugin, keys):
    u = urn(T, "un")
    port = _free_port()
    dead = {"host": "127.0.0.1", "port": port, "privateKey": (keys / "id").read_text(),
            "dialErrorLimit": 1, "perDialTimeout": 2}
    inputs, _ = plugin.check(u, {"connection": dead, "create": "true"})
    t0 = time.time()
    with pytest.raises(grpc.RpcError) as e:
        plugin.create(u, inputs)
    took = time.time() - t0
    msg = e.value.details()
    print(f"unreachable: {took:.2f}s: {msg}")
    assert took < 3
    assert f"127.0.0.1:{port}" in msg and "unreachable" in msg and "Connection refused" in msg
    assert "after 2 failed dials" in msg  # the provider dials dialErrorLimit+1 times


def test_dial_retries_until_the_server_answers(plugin, sshd, keys):
    """A host still booting: the first dials fail, a later one gets through (dialWithRetry)."""
    u = urn(T, "retry")
    port = _free_port()
    inputs, _ = plugin.check(u, {"connection": conn(sshd, keys, port=port, dialErrorLimit=20, perDialTimeout=2),
                                 "create": "echo through"})
    # a TCP relay from `port` to the sshd, opened after 1 s
    def relay():
        time.sleep(1.0)
        srv = socket.create_server(("127.0.0.1", port))
        c, _ = srv.accept()
        s = socket.create_connection(("127.0.0.1", sshd.port))

        def pipe(a, b):
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for x in (a, b):
                    try:
                        x.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
        threads = [threading.Thread(target=pipe, args=(c, s)), threading.Thread(target=pipe, args=(s, c))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        srv.close()
    t = threading.Thread(target=relay, daemon=True)
    t.start()
    _, out, _ = plugin.create(u, inputs)
    assert out["stdout"] == "through"


def test_wrong_private_key_fails_naming_host_and_authentication(plugin, sshd, keys):
    u = urn(T, "au")
    inputs, _ = plugin.check(u, {"connection": conn(sshd, keys, privateKey=(keys / "other").read_text()),
                                 "create": "true"}, secrets={"connection"})
    with pytest.raises(grpc.RpcError) as e:
        plugin.create(u, inputs, secrets={"connection"})
    msg = e.value.details()
    assert f"127.0.0.1:{sshd.port}" in msg and "authentication refused" in msg, msg
    assert not any(f in msg for f in key_fragments(keys, "other"))
    # a wrong password (sshd refuses passwords for root; asked for, sent, refused)
    inputs, _ = plugin.check(u, {"connection": conn(sshd, keys, privateKey=None, password="hunter2-b4m"),
                                 "create": "true"})
    with pytest.raises(grpc.RpcError) as e:
        plugin.create(u, inputs)
    msg = e.value.details()
    assert "authentication refused" in msg and "password" in msg and "hunter2-b4m" not in msg


def test_encrypted_private_key(plugin, sshd, keys):
    u = urn(T, "enc")
    enc = (keys / "id_enc").read_text()
    inputs, _ = plugin.check(u, {"connection": conn(sshd, keys, privateKey=enc,
                                                    privateKeyPassword="correct horse battery"),
                                 "create": "echo unlocked"})
    assert plugin.create(u, inputs)[1]["stdout"] == "unlocked"
    for pw, text in ((None, "passphrase protected"), ("wrong", "does not decrypt")):
        inputs, _ = plugin.check(u, {"connection": conn(sshd, keys, privateKey=enc, privateKeyPassword=pw),
                                     "create": "true"})
        t0 = time.time()
        with pytest.raises(grpc.RpcError) as e:
            plugin.create(u, inputs)
        assert text in e.value.details() and time.time() - t0 < 2  # before dialling, never retried
    # Ed25519 in PKCS#8 PEM (tls.PrivateKey's privateKeyPem): Go reads it, OpenSSH 9.2 alone does not
    inputs, _ = plugin.check(u, {"connection": conn(sshd, keys, privateKey=(keys / "pkcs8").read_text()),
                                 "create": "echo pkcs8"})
    assert plugin.create(u, inputs)[1]["stdout"] == "pkcs8"
    inputs, _ = plugin.check(u, {"connection": conn(sshd, keys, privateKey="-----BEGIN nonsense"), "create": "true"})
    with pytest.raises(grpc.RpcError) as e:
        plugin.create(u, inputs)
    assert "no key found" in e.value.details()


def test_agent(plugin, sshd, keys, tmp_path):
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.time() + 5
        while not sock.exists() and time.time() < deadline:
            time.sleep(0.05)
        subprocess.run(["ssh-add", "-q", str(keys / "id")], env={**os.environ, "SSH_AUTH_SOCK": str(sock)},
                       check=True, stdin=subprocess.DEVNULL)
        u = urn(T, "agent")
        inputs, _ = plugin.check(u, {"connection": conn(sshd, keys, privateKey=None, agentSocketPath=str(sock)),
                                     "create": "echo agent"})
        assert plugin.create(u, inputs)[1]["stdout"] == "agent"
        inputs, _ = plugin.check(u, {"connection": conn(sshd, keys, privateKey=None,
                                                        agentSocketPath=str(tmp_path / "nope.sock")),
                                     "create": "true"})
        with pytest.raises(grpc.RpcError) as e:
            plugin.create(u, inputs)
        assert "agentSocketPath" in e.value.details()
    finally:
        agent.terminate()
        agent.wait(5)


def test_secrets_never_in_process_list_outputs_or_temp_files(plugin, sshd, keys, ssh_tmp):
    u = urn(T, "ps")
    frags = key_fragments(keys, "id_enc") + ["correct horse battery"]
    inputs, _ = plugin.check(u, {
        "connection": conn(sshd, keys, privateKey=(keys / "id_enc").read_text(),
                           privateKeyPassword="correct horse battery"),
        "create": "sleep 2; echo slept", "environment": {"FOO": "x"}}, secrets={"connection"})
    seen: list[str] = []
    result = {}

    def go():
        result["r"] = plugin.create(u, inputs, secrets={"connection"})
    t = threading.Thread(target=go)
    t.start()
    while t.is_alive():
        seen.append(subprocess.run(["ps", "-eww", "-o", "args="], capture_output=True, text=True).stdout)
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                for f in ("cmdline", "environ"):
                    try:
                        seen.append(Path(f"/proc/{pid}/{f}").read_bytes().decode(errors="replace"))
                    except OSError:
                        pass
        time.sleep(0.1)
    t.join()
    rid, out, sec = result["r"]
    everything = "\n".join(seen)
    assert "b4m-target" in everything and str(ssh_tmp) in everything  # the check saw our ssh processes
    for f in frags:
        assert f not in everything, "secret in the process list or a process environment"
    assert out["stdout"] == "slept"
    assert sec >= {"connection"}
    plain = {k: v for k, v in out.items() if k not in sec}
    assert not any(f in repr(plain) for f in frags)
    # the private temp dir is gone, and so are the master connections
    assert not _ssh_leftovers(ssh_tmp)


def test_proxy(plugin, sshd, keys):
    u = urn(T, "px")
    bastion = conn(sshd, keys)
    inputs, _ = plugin.check(u, {"connection": conn(sshd, keys, proxy=bastion), "create": "echo via $SSH_CLIENT"})
    _, out, _ = plugin.create(u, inputs)
    assert out["stdout"].startswith("via 127.0.0.1 ")
    bad = dict(bastion, hostKey=(keys / "other_host.pub").read_text())
    inputs, _ = plugin.check(u, {"connection": conn(sshd, keys, proxy=bad), "create": "true"})
    with pytest.raises(grpc.RpcError) as e:
        plugin.create(u, inputs)
    msg = e.value.details()
    assert msg.startswith("proxy:") and f"127.0.0.1:{sshd.port}" in msg and "host key mismatch" in msg, msg
    dead = _free_port()
    inputs, _ = plugin.check(u, {"connection": conn(sshd, keys, port=dead, proxy=bastion), "create": "true"})
    with pytest.raises(grpc.RpcError) as e:
        plugin.create(u, inputs)
    msg = e.value.details()
    assert f"127.0.0.1:{dead}" in msg and "unreachable from the proxy" in msg, msg


# ---------------------------------------------------------------- environment the server refuses
class _LogProvider(CommandProvider):
    def __init__(self):
        super().__init__("")
        self.logs: list[tuple[str, str]] = []

    def log(self, urn, message, severity="info", ephemeral=False):
        self.logs.append((severity, message))


def test_refused_environment_fails_refused_previous_output_warns(strict_sshd, keys):
    prov = _LogProvider()
    res = RemoteCommand(prov)
    u = urn(T, "env")
    inputs = res.check(u, {"connection": conn(strict_sshd, keys), "create": "echo [$FOO]",
                           "environment": {"FOO": "x"}}, {}, b"")
    with pytest.raises(Exception) as e:
        res.create(u, inputs, False)
    assert 'could not set environment variable "FOO": ssh: setenv failed' in str(e.value)
    assert any(s == "error" and "'FOO'" in m and "AcceptEnv" in m for s, m in prov.logs)
    # PULUMI_COMMAND_STDOUT/STDERR: a warning, and the command runs
    inputs = res.check(u, {"connection": conn(strict_sshd, keys), "create": "echo one",
                           "update": "echo two [$PULUMI_COMMAND_STDOUT]"}, {}, b"")
    rid, out = res.create(u, inputs, False)
    prov.logs.clear()
    out2 = res.update(u, rid, out, inputs, False)
    assert out2["stdout"] == "two []"
    assert [s for s, m in prov.logs if "PULUMI_COMMAND_STDOUT" in m] == ["warning"]


# ---------------------------------------------------------------- through the engine
PROGRAM = '''
import pulumi
import pulumi_command as command

cfg = pulumi.Config()
conn = command.remote.ConnectionArgs(
    host="127.0.0.1",
    port=float(cfg.require("port")),
    user=cfg.require("user"),
    private_key=open(cfg.require("key_file")).read(),
    host_key=open(cfg.require("host_key_file")).read(),
    dial_error_limit=2,
    per_dial_timeout=5,
)
c = command.remote.Command(
    "remote",
    connection=conn,
    create="echo created $B4M_GEN; cat",
    update='echo "updated $B4M_GEN after [$PULUMI_COMMAND_STDOUT]"',
    delete="echo deleted >> " + cfg.require("marker"),
    environment={"B4M_GEN": cfg.require("gen")},
    stdin="from stdin",
)
pulumi.export("stdout", c.stdout)
'''


def test_engine_up_update_destroy(sshd, keys, tmp_path):
    if not _have("pulumi"):
        pytest.skip("no pulumi CLI (run scripts/build-pulumi)")
    pr = Project(tmp_path)
    (pr.dir / "__main__.py").write_text(PROGRAM)
    (tmp_path / "host_key").write_text(sshd.host_key)
    marker = tmp_path / "deleted.log"
    pr.run("stack", "init", "remote")
    for k, v in (("port", str(sshd.port)), ("user", sshd.user), ("key_file", str(keys / "id")),
                 ("host_key_file", str(tmp_path / "host_key")), ("marker", str(marker)), ("gen", "1")):
        pr.run("config", "set", k, v)
    frags = key_fragments(keys)
    try:
        t0 = time.time()
        up = pr.run("up", "--yes", "--skip-preview")
        print(f"up: {time.time() - t0:.1f}s")
        assert pr.outputs()["stdout"] == "created 1\nfrom stdin"
        state = pr.state_text()
        assert "ciphertext" in state
        for f in frags:
            assert f not in state, "private key in the state in clear"
            assert f not in up.stdout + up.stderr
        pr.run("preview", "--expect-no-changes")
        pr.run("config", "set", "gen", "2")
        pr.run("up", "--yes", "--skip-preview")
        assert pr.outputs()["stdout"] == "updated 2 after [created 1\nfrom stdin]"
        assert not any(f in pr.state_text() for f in frags)
    finally:
        t0 = time.time()
        pr.run("destroy", "--yes", "--skip-preview", check=False)
        print(f"destroy: {time.time() - t0:.1f}s")
    assert marker.read_text() == "deleted\n"
    pr.run("stack", "rm", "--yes")


def test_nothing_left_behind(ssh_tmp):
    """After every success and failure above: no master connection, no temp dir (keys!) left."""
    assert not _ssh_leftovers(ssh_tmp)
