"""Stand-in for pulumi-command 1.2.1: command:local:Command and command:remote:Command.

command:local:Command. Semantics follow pulumi-command's documentation (pulumi_command/local/command.py):
  * create runs `create` once; an input change runs `update` (or `create` again when there is no
    `update`) in place; a change of `triggers` replaces the resource (the SDK also asks the engine
    for replaceOnChanges=["triggers[*]"]);
  * delete runs `delete`; update and delete see the previous stdout/stderr as PULUMI_COMMAND_STDOUT
    and PULUMI_COMMAND_STDERR when addPreviousOutputInEnv (default true);
  * interpreter defaults to ["/bin/sh", "-c"]; `dir`, `environment` and `stdin` as documented;
  * outputs stdout and stderr, with one trailing newline removed; a non-zero exit fails the step
    with the command's output in the error;
  * the id is a random string, as the real provider's.
  * output lines are logged to the engine as they come (info diagnostics on the resource), as
    `logging` says (stdout, stderr, stdoutAndStderr (default), none).

command:remote:Command. Semantics read from pulumi-command v1.2.1's source,
provider/pkg/provider/remote/{command,commandController,commandOutputs,connection,
proxyConnection}.go, with pulumi-go-provider v1.3.0 (infer) and pulumi sdk v3.224.0 (retry.Until):
  * create/update/delete, triggers (replace), addPreviousOutputInEnv, logging, stdout/stderr (one
    trailing newline removed) as local:Command; the id is the resource name plus 8 hex digits
    (resource.NewUniqueHex); no `create` means no connection at all; a preview never connects;
    a failed create leaves no resource (a plain error, no partial state).
  * `connection` is secret (provider:"secret"; so are password, privateKey, privateKeyPassword):
    Check returns it secret and so do the outputs. Defaults: user "root", port 22,
    dialErrorLimit 10, perDialTimeout 15 (also for connection.proxy, which has no proxy itself).
  * dialling (dialWithRetry): every failed dial is retried after 100 ms, x1.5 each time, at most
    5 s apart, and the step fails once more than dialErrorLimit dials failed (so limit+1 dials;
    -1: forever). Only the dial is retried; a command that started is never run again.
  * hostKey: an authorized_keys-style line, "type base64 [comment]", the key found as
    ssh.ParseAuthorizedKey finds it (a leading host or options field is skipped; "failed to parse
    host key: ..." otherwise). Only that key is accepted and host key algorithms are limited to
    its type (ssh.FixedHostKey, HostKeyAlgorithms); without hostKey any host key is accepted
    (ssh.InsecureIgnoreHostKey).
  * authentication: privateKey (decrypted with privateKeyPassword; a key that does not parse, an
    encrypted key without a password, or a password for a plain key fail before any dial),
    password (for password and keyboard-interactive; every prompt gets it), and the agent at
    agentSocketPath or $SSH_AUTH_SOCK.
  * the command runs as session.Run(cmd): the server hands it to the user's login shell
    (`$SHELL -c cmd`), in the user's home; `stdin`, when not empty, is its standard input, which
    otherwise is at EOF.
  * `environment` goes as SSH "env" requests, which sshd grants only for names its AcceptEnv
    lists: a refused `environment` name fails the step ('could not set environment variable "X":
    ssh: setenv failed') after logging the provider's "Unable to set 'X'..." error; a refused
    PULUMI_COMMAND_STDOUT/STDERR (sent only when not empty) is that message as a warning only.
  * a non-zero exit fails with 'Process exited with status N: running "cmd"' and the combined
    output, as the provider's run().
  * proxy: the target is reached from the bastion (ssh -W, as proxyClient.Dial).

How, and where it differs. The real provider is Go's x/crypto/ssh inside the plugin; this one
drives the system OpenSSH client (`ssh`, `ssh-keygen`; Debian openssh-client) from a private
0700 temp dir per operation:
  * per operation: the private key is written 0600 there, checked with `ssh-keygen -y`, and a
    master connection (ControlMaster, ControlPersist 60 s as a safety net) is dialled with the
    retries above (an Ed25519 key in PKCS#8 PEM, which Go reads and OpenSSH 9.2 does not, is
    rewritten in OpenSSH's format first); the env check and the command are sessions over that
    master (the session
    client has ProxyCommand=false, so it can never dial on its own). Key and password files are
    deleted when the dial is over, the dir and the master (`ssh -O exit`) when the operation is.
    Passwords reach ssh through an SSH_ASKPASS script that cats a 0600 file. No secret of
    `connection` is ever on a command line, in an error, a log line or a non-secret output.
  * the command itself is on the local `ssh` process's command line while it runs, and the
    `environment` values in its environment (to be sent, OpenSSH's SendEnv reads them there), as
    with local:Command's `sh -c script`.
  * OpenSSH's client sends "env" requests without asking for a reply, so what the server accepted
    is found out with one extra session running `env` with a random marker value in each name
    (never the real values). If `env` cannot run there, the names are sent unchecked.
  * environment names must be plain (no whitespace, = * ? , " ! or backslash): OpenSSH's
    SendEnv takes patterns (Check fails otherwise).
  * perDialTimeout is OpenSSH's ConnectTimeout (TCP connect and the SSH banner), Go's covers the
    TCP connect only; a whole dial taking over max(60 s, 4 x perDialTimeout) counts as failed.
  * errors name user@host:port and what failed (unreachable, host key mismatch, authentication
    refused) with ssh's own last message, e.g. "cannot connect to root@10.0.0.5:22: host key
    mismatch: ... [ssh: Host key verification failed.] (after 11 failed dials,
    connection.dialErrorLimit=10)", instead of Go's "after 10 failed attempts: ssh: handshake
    failed: ssh: host key mismatch"; failures of the command add "on user@host:port".
  * with a proxy the chain is dialled as a whole (ProxyCommand `ssh -W`), a failure counted
    against the hop it came from (connection.proxy.dialErrorLimit for the bastion, else
    connection.dialErrorLimit); errors of the bastion start with "proxy:" as in the provider.
  * a stale $SSH_AUTH_SOCK is ignored (the provider fails on it); an explicit agentSocketPath that
    does not answer fails as in the provider. OpenSSH offers the agent's keys before privateKey.
  * a hostKey that is a certificate is refused (OpenSSH pins certificates only through CAs).
  * output lines are logged as local:Command's (info diagnostics), the provider logs them as
    ephemeral status lines.
Not implemented: local assetPaths/archivePaths, command:local:run, remote CopyToRemote/CopyFile.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

from .base import UNKNOWN, InputError, Provider, ProviderError, Resource, has_unknown

VERSION = "1.2.1"


# ---------------------------------------------------------------- running a process (local and remote)
def _pump(stream, sink: list, log, both: list | None = None) -> None:
    for line in iter(stream.readline, ""):
        sink.append(line)
        if both is not None:
            both.append(line)
        if log is not None:
            log(line.rstrip("\n"))
    stream.close()


def _loggers(inputs: dict, log):
    mode = inputs.get("logging") or "stdoutAndStderr"
    log_out = log if log is not None and mode in ("stdout", "stdoutAndStderr") else None
    log_err = log if log is not None and mode in ("stderr", "stdoutAndStderr") else None
    return log_out, log_err


def _exec(argv: list[str], env: dict, stdin: str | None, log_out, log_err,
          cwd: str | None = None) -> tuple[int, str, str, str]:
    """Run argv, feed it `stdin` (then EOF), log its lines as they come.
    -> (exit status, stdout, stderr, both interleaved); one trailing newline removed from stdout/stderr.
    Raises OSError when argv[0] cannot be run."""
    p = subprocess.Popen(
        argv, cwd=cwd, env=env, text=True, errors="replace",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    outs: list[str] = []
    errs: list[str] = []
    both: list[str] = []
    pumps = [threading.Thread(target=_pump, args=(p.stdout, outs, log_out, both), daemon=True),
             threading.Thread(target=_pump, args=(p.stderr, errs, log_err, both), daemon=True)]
    for t in pumps:
        t.start()
    try:
        if stdin:
            p.stdin.write(stdin)
        p.stdin.close()
    except BrokenPipeError:
        pass
    p.wait()
    for t in pumps:
        t.join()
    out, err = "".join(outs), "".join(errs)
    if out.endswith("\n"):
        out = out[:-1]
    if err.endswith("\n"):
        err = err[:-1]
    return p.returncode, out, err, "".join(both)


def _run(script: str, inputs: dict, prev: dict | None, log=None) -> tuple[str, str]:
    interpreter = inputs.get("interpreter") or ["/bin/sh", "-c"]
    env = dict(os.environ)
    for k, v in (inputs.get("environment") or {}).items():
        env[k] = "" if v is None else str(v)
    if prev is not None and inputs.get("addPreviousOutputInEnv", True) is not False:
        env["PULUMI_COMMAND_STDOUT"] = prev.get("stdout") or ""
        env["PULUMI_COMMAND_STDERR"] = prev.get("stderr") or ""
    cwd = inputs.get("dir") or None
    if cwd and not os.path.isdir(cwd):
        raise ProviderError(f"dir {cwd!r} does not exist")
    log_out, log_err = _loggers(inputs, log)
    try:
        rc, out, err, _ = _exec([*interpreter, script], env, inputs.get("stdin"), log_out, log_err, cwd=cwd)
    except OSError as e:
        raise ProviderError(f"could not run {interpreter[0]!r}: {e}") from e
    if rc != 0:
        raise ProviderError(
            f"exit status {rc}: running {script!r}:\nStdout:\n{out}\nStderr:\n{err}")
    return out, err


class Command(Resource):
    token = "command:local:Command"
    inputs = {
        "create": None, "update": None, "delete": None, "dir": None, "environment": None,
        "interpreter": None, "stdin": None, "triggers": None, "addPreviousOutputInEnv": None,
        "logging": None, "assetPaths": None, "archivePaths": None,
    }
    replace_on = frozenset({"triggers"})

    def check(self, urn, news, olds, seed):
        out = super().check(urn, news, olds, seed)
        for key in ("assetPaths", "archivePaths"):
            if out.get(key):
                raise InputError(key, "not supported by the bgp4mesh stand-in command provider")
        interp = out.get("interpreter")
        if interp is not None and interp is not UNKNOWN and not has_unknown(interp) and not interp:
            raise InputError("interpreter", "must not be empty")
        return out

    def _outputs(self, inputs: dict, stdout, stderr) -> dict:
        outs = {k: v for k, v in inputs.items() if v is not None}
        outs["stdout"] = stdout
        outs["stderr"] = stderr
        return outs

    def _log(self, urn):
        return lambda line: self.provider.log(urn, line)

    def _run(self, urn: str, script: str, inputs: dict, prev: dict | None) -> tuple[str, str]:
        return _run(script, inputs, prev, self._log(urn))

    def _new_id(self, urn: str) -> str:
        return secrets.token_hex(8)

    def create(self, urn, inputs, preview):
        if preview:
            return "", self._outputs(inputs, UNKNOWN, UNKNOWN)
        out, err = ("", "")
        if inputs.get("create"):
            out, err = self._run(urn, inputs["create"], inputs, None)
        return self._new_id(urn), self._outputs(inputs, out, err)

    def update(self, urn, rid, olds, news, preview):
        script = news.get("update") or news.get("create")
        if preview:
            if script:
                return self._outputs(news, UNKNOWN, UNKNOWN)
            return self._outputs(news, olds.get("stdout", ""), olds.get("stderr", ""))
        out, err = olds.get("stdout", ""), olds.get("stderr", "")
        if script:
            out, err = self._run(urn, script, news, olds)
        return self._outputs(news, out, err)

    def delete(self, urn, rid, state):
        if state.get("delete"):
            self._run(urn, state["delete"], state, state)


# ---------------------------------------------------------------- command:remote:Command
PULUMI_COMMAND_STDOUT = "PULUMI_COMMAND_STDOUT"
PULUMI_COMMAND_STDERR = "PULUMI_COMMAND_STDERR"

# connection (ConnectionArgs) and connection.proxy (ProxyConnectionArgs): name -> accepted types
_CONN_FIELDS = {
    "host": (str,), "port": (int, float), "user": (str,), "password": (str,), "privateKey": (str,),
    "privateKeyPassword": (str,), "agentSocketPath": (str,), "dialErrorLimit": (int,),
    "perDialTimeout": (int,), "hostKey": (str,), "proxy": (dict,),
}
_CONN_DEFAULTS = {"user": "root", "port": 22, "dialErrorLimit": 10, "perDialTimeout": 15}
_ENV_NAME_BAD = re.compile(r'[\s=*?,"\\!]')
_LOGGING = ("stdout", "stderr", "stdoutAndStderr", "none")
# the embedded type of a public key blob; certificates are not plain host keys
_KEY_TYPE = re.compile(r"(ssh|ecdsa|sk|rsa)-[a-z0-9@.\-]+")

# the dial is a foreground `ssh -N` that returns once the master is authenticated and listening
# on its control socket; ControlPersist puts the master in the background, and ends it by itself
# after this long without a session should the provider die before `ssh -O exit`
_CONTROL_PERSIST = 60


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_connection(conn, prop: str, allow_proxy: bool = True):
    """Validate a connection and apply the provider's defaults (as its Check does)."""
    if conn is UNKNOWN:
        return conn
    if not isinstance(conn, dict):
        raise InputError(prop, "must be an object")
    out = {}
    for k, v in conn.items():
        if k not in _CONN_FIELDS or (k == "proxy" and not allow_proxy):
            raise InputError(f"{prop}.{k}", "unknown property")
        if v is None or v is UNKNOWN or has_unknown(v):
            out[k] = v
            continue
        types = _CONN_FIELDS[k]
        if isinstance(v, bool) or not isinstance(v, types):
            raise InputError(f"{prop}.{k}", f"must be a {'number' if int in types else types[0].__name__}")
        out[k] = v
    for k, d in _CONN_DEFAULTS.items():
        if out.get(k) is None:
            out[k] = d
    host = out.get("host")
    if host is None:
        raise InputError(f"{prop}.host", "missing required property")
    if isinstance(host, str) and (not host or re.search(r'[\s"\\]', host)):
        raise InputError(f"{prop}.host", f"{host!r} is not a host name or address")
    user = out.get("user")
    if isinstance(user, str) and (not user or re.search(r'[\s"\\%]', user)):
        raise InputError(f"{prop}.user", f"{user!r} is not a user name")
    port = out.get("port")
    if isinstance(port, (int, float)) and not (0 < port < 65536 and float(port).is_integer()):
        raise InputError(f"{prop}.port", f"{port} is not a TCP port")
    lim = out.get("dialErrorLimit")
    if isinstance(lim, int) and lim < -1:
        raise InputError(f"{prop}.dialErrorLimit", "must be -1 (unlimited) or more")
    tmo = out.get("perDialTimeout")
    if isinstance(tmo, int) and tmo < 0:
        raise InputError(f"{prop}.perDialTimeout", "must be 0 (no maximum) or more")
    agent = out.get("agentSocketPath")
    if isinstance(agent, str) and '"' in agent:
        raise InputError(f"{prop}.agentSocketPath", "must not contain '\"'")
    if out.get("proxy") is not None:
        out["proxy"] = _check_connection(out["proxy"], f"{prop}.proxy", allow_proxy=False)
    return out


def _parse_host_key(text: str, prop: str) -> tuple[str, str]:
    """The first public key in an authorized_keys/known_hosts-style text, as ssh.ParseAuthorizedKey
    finds it ("type base64 [comment]", possibly after an options or host field) -> (type, base64)."""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for tok in line.split():
            try:
                blob = base64.b64decode(tok, validate=True)
            except ValueError:
                continue
            if len(blob) < 8:
                continue
            (n,) = struct.unpack(">I", blob[:4])
            if not 0 < n <= 64 or 4 + n > len(blob):
                continue
            typ = blob[4:4 + n].decode("ascii", "replace")
            if not _KEY_TYPE.fullmatch(typ):
                continue
            if "-cert-" in typ:
                raise ProviderError(f"{prop}.hostKey: a {typ} certificate is not supported by the bgp4mesh "
                                    "stand-in (give the server's plain host key)")
            return typ, base64.b64encode(blob).decode()
    raise ProviderError(f"failed to parse host key: ssh: no key found ({prop}.hostKey)")


def _host_key_algorithms(typ: str) -> str:
    # ssh.FixedHostKey + HostKeyAlgorithms=[key type]; an RSA key signs with rsa-sha2-* nowadays
    return "rsa-sha2-512,rsa-sha2-256,ssh-rsa" if typ == "ssh-rsa" else typ


def _openssh_readable(text: str) -> str:
    """OpenSSH (9.2) cannot read an Ed25519 key in PKCS#8 PEM ("BEGIN PRIVATE KEY", what
    tls.PrivateKey's privateKeyPem is for ED25519); Go's ssh.ParsePrivateKey can: rewrite that one
    case in OpenSSH's own format. Everything else goes to ssh as given."""
    if "-----BEGIN PRIVATE KEY-----" not in text:
        return text
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519

        k = serialization.load_pem_private_key(text.encode(), password=None)
    except Exception:  # noqa: BLE001 -- ssh-keygen reports what it cannot read
        return text
    if not isinstance(k, ed25519.Ed25519PrivateKey):
        return text
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                           serialization.NoEncryption()).decode()


def _q(path: str) -> str:
    """A path for an ssh_config line or a ProxyCommand (ours: no quotes or spaces; % is a token)."""
    return path.replace("%", "%%")


class _Hop:
    """One SSH endpoint: the target (`connection`) or the bastion (`connection.proxy`)."""

    def __init__(self, conn: dict, name: str, prop: str):
        self.name = name
        self.prop = prop
        self.alias = f"b4m-{name}"
        self.host = str(conn["host"])
        self.port = int(conn.get("port") or 22)
        self.user = conn.get("user") or "root"
        self.password = conn.get("password")
        self.key = conn.get("privateKey")
        self.key_password = conn.get("privateKeyPassword")
        self.agent = conn.get("agentSocketPath")
        lim = conn.get("dialErrorLimit")
        self.limit = 10 if lim is None else int(lim)
        tmo = conn.get("perDialTimeout")
        self.timeout = 15 if tmo is None else int(tmo)
        self.host_key = conn.get("hostKey") or None
        self.failures = 0

    @property
    def label(self) -> str:
        return f"{self.user}@{_join_host_port(self.host, self.port)}"

    def methods(self, agent: bool) -> str:
        m = []
        if self.key:
            m.append("privateKey")
        if agent:
            m.append("agent")
        if self.password:
            m.append("password")
        return ", ".join(m) or "none (no privateKey, password or agent)"


class _Ssh:
    """One operation's SSH connection through the system OpenSSH client.

    Everything lives in a private 0700 temp dir: ssh_config files (one per hop), known_hosts files
    made from hostKey, the private key (0600), askpass helpers and the password files they read.
    The master connection is dialled with retries; sessions (the env probe, the command) go over it
    and are never retried. Key and password files are removed once the dial is over."""

    def __init__(self, conn: dict, env_names: list[str], status=None):
        self.target = _Hop(conn, "target", "connection")
        proxy = conn.get("proxy")
        self.proxy = _Hop(proxy, "proxy", "connection.proxy") if proxy else None
        self.env_names = env_names
        self.status = status or (lambda msg: None)
        self.ssh = shutil.which("ssh")
        self.keygen = shutil.which("ssh-keygen")
        if not self.ssh or not self.keygen:
            raise ProviderError("command:remote:Command needs the OpenSSH client (ssh, ssh-keygen) on PATH "
                                "(Debian: openssh-client; scripts/bootstrap installs it)")
        self.dir = ""
        self.connected = False
        self._secret_files: list[str] = []

    # -- files
    def _path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def _write(self, name: str, text: str, mode: int = 0o600) -> str:
        path = self._path(name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    def __enter__(self) -> "_Ssh":
        base = tempfile.gettempdir()
        if len(base) > 40:  # the control socket's path must stay under ~100 bytes
            base = "/tmp"
        self.dir = tempfile.mkdtemp(prefix="b4m-ssh-", dir=base)  # 0700
        self.env = {k: os.environ[k] for k in ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TMPDIR",
                                               "SSH_AUTH_SOCK") if k in os.environ}
        self.env["SSH_ASKPASS_REQUIRE"] = "force"
        self.ctl = self._path("ctl")
        try:
            for hop in (self.proxy, self.target):
                if hop is not None:
                    self._prepare(hop)
        except BaseException:
            self.close()
            raise
        self.env["SSH_ASKPASS"] = self._path("askpass.target")
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _agent(self, hop: _Hop) -> str | None:
        """The agent socket to offer keys from: agentSocketPath, else $SSH_AUTH_SOCK (as the provider)."""
        if hop.agent:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            try:
                s.connect(hop.agent)
            except OSError as e:
                raise ProviderError(f"{hop.prop}.agentSocketPath: dial unix {hop.agent}: {e.strerror or e}") from e
            finally:
                s.close()
            return hop.agent
        sock = os.environ.get("SSH_AUTH_SOCK")
        return sock if sock and os.path.exists(sock) else None

    def _prepare(self, hop: _Hop) -> None:
        n = hop.name
        askpass = self._path(f"askpass.{n}")
        keypass = self._path(f"keypass.{n}")
        passfile = self._path(f"pass.{n}")
        asked = self._path(f"asked.{n}")
        # ssh and ssh-keygen run this (SSH_ASKPASS_REQUIRE=force) for a key passphrase or a password
        # prompt; it answers every password/keyboard-interactive prompt with the password (as the
        # provider's KeyboardInteractive callback) and fails when it has nothing to say.
        self._write(f"askpass.{n}", "#!/bin/sh\n"
                    'case "$1" in\n'
                    f"  *assphrase*) : > '{asked}'; f='{keypass}' ;;\n"
                    f"  *) f='{passfile}' ;;\n"
                    "esac\n"
                    '[ -r "$f" ] && exec cat "$f"\n'
                    "exit 1\n", 0o700)
        if hop.password is not None:
            self._secret_files.append(self._write(f"pass.{n}", hop.password))
        if hop.key_password is not None:
            self._secret_files.append(self._write(f"keypass.{n}", hop.key_password))
        lines = [f"Host {hop.alias}",
                 f"  HostName {_q(hop.host)}",
                 f"  Port {hop.port}",
                 f'  User "{hop.user}"',
                 f"  HostKeyAlias {hop.alias}",
                 "  CheckHostIP no",
                 "  UpdateHostKeys no",
                 "  VerifyHostKeyDNS no",
                 "  GlobalKnownHostsFile /dev/null",
                 "  ConnectionAttempts 1",
                 "  ForwardAgent no",
                 "  ForwardX11 no",
                 "  ClearAllForwardings yes",
                 "  RequestTTY no",
                 "  EscapeChar none",
                 "  PermitLocalCommand no",
                 "  GSSAPIAuthentication no",
                 "  HostbasedAuthentication no",
                 "  PreferredAuthentications publickey,password,keyboard-interactive",
                 "  NumberOfPasswordPrompts 1",
                 "  LogLevel INFO"]
        if hop.timeout > 0:
            lines.append(f"  ConnectTimeout {hop.timeout}")
        if hop.host_key:
            typ, b64 = _parse_host_key(hop.host_key, hop.prop)
            kh = self._write(f"known_hosts.{n}", f"{hop.alias} {typ} {b64}\n")
            lines += ["  StrictHostKeyChecking yes", f"  UserKnownHostsFile {_q(kh)}",
                      f"  HostKeyAlgorithms {_host_key_algorithms(typ)}"]
        else:  # the provider: ssh.InsecureIgnoreHostKey()
            lines += ["  StrictHostKeyChecking no", "  UserKnownHostsFile /dev/null"]
        if hop.key:
            text = _openssh_readable(hop.key.replace("\r\n", "\n").strip() + "\n")
            key = self._write(f"key.{n}", text)
            self._secret_files.append(key)
            self._check_key(hop, key, asked)
            lines += [f"  IdentityFile {_q(key)}", "  PubkeyAuthentication yes"]
        else:
            lines.append("  IdentityFile none")  # no ~/.ssh/id_*: the provider only uses what it is given
        agent = self._agent(hop)
        lines.append(f'  IdentityAgent "{_q(agent)}"' if agent else "  IdentityAgent none")
        if not hop.key and not agent:
            lines.append("  PubkeyAuthentication no")
        hop.agent_used = bool(agent)
        interactive = hop.password is not None or hop.key_password is not None
        lines.append(f"  BatchMode {'no' if interactive else 'yes'}")
        auth_pw = "yes" if hop.password is not None else "no"
        lines += [f"  PasswordAuthentication {auth_pw}", f"  KbdInteractiveAuthentication {auth_pw}"]
        if n == "target":
            lines += [f"  ControlPath {_q(self.ctl)}", f"  ControlPersist {_CONTROL_PERSIST}"]
            if self.env_names:
                # the master sends, for each session, the client's variables these names match
                lines.append("  SendEnv " + " ".join(self.env_names))
            if self.proxy is not None:
                p = self.proxy
                lines.append(
                    f"  ProxyCommand env SSH_ASKPASS={_q(self._path('askpass.proxy'))} "
                    f"{_q(self.ssh)} -F {_q(self._path('proxy.cfg'))} -E {_q(self._path('proxy.log'))} "
                    f"-W [%h]:%p {p.alias}")
            else:
                lines.append("  ProxyCommand none")
        else:
            lines.append("  ProxyCommand none")
        self._write(f"{n}.cfg", "\n".join(lines) + "\n")

    def _check_key(self, hop: _Hop, key: str, asked: str) -> None:
        """Parse the private key before dialling, as the provider's SSHConfig (errors are not retried)."""
        env = {"PATH": self.env.get("PATH", "/usr/bin:/bin"), "SSH_ASKPASS_REQUIRE": "force",
               "SSH_ASKPASS": self._path(f"askpass.{hop.name}")}
        p = subprocess.run([self.keygen, "-y", "-f", key], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=30)
        was_asked = os.path.exists(asked)
        if p.returncode != 0:
            if "passphrase" in p.stderr:
                if hop.key_password is None:
                    raise ProviderError(f"{hop.prop}.privateKey: ssh: this private key is passphrase protected "
                                        f"(set {hop.prop}.privateKeyPassword)")
                raise ProviderError(f"{hop.prop}.privateKeyPassword does not decrypt {hop.prop}.privateKey "
                                    "(incorrect passphrase)")
            raise ProviderError(f"{hop.prop}.privateKey: ssh: no key found (not a private key ssh can read)")
        if hop.key_password is not None and not was_asked:
            raise ProviderError(f"{hop.prop}.privateKeyPassword is set but {hop.prop}.privateKey is not "
                                "encrypted (ssh: key is not password protected)")

    # -- dialling
    def _read(self, name: str) -> str:
        try:
            with open(self._path(name), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _ssh_lines(self, text: str) -> list[str]:
        out = []
        for line in text.splitlines():
            line = line.strip()
            if (not line or line.startswith("@") or line.startswith("Warning: Permanently added")
                    or line.startswith("Exit request sent")):
                continue
            out.append(line.replace(self.dir, "<tmp>"))
        return out

    def _classify(self, hop: _Hop, text: str) -> tuple[str, str]:
        lines = self._ssh_lines(text)
        detail = lines[-1] if lines else "no message from ssh"
        if len(detail) > 300:
            detail = detail[:300] + "…"
        if "no matching host key type" in text:
            typ = _parse_host_key(hop.host_key, hop.prop)[0] if hop.host_key else "?"
            return (f"host key mismatch: the server offers no {typ} host key "
                    f"(the type of {hop.prop}.hostKey)"), detail
        if "Host key verification failed" in text or "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
            return f"host key mismatch: the server's host key is not {hop.prop}.hostKey", detail
        if ("Permission denied" in text or "Too many authentication failures" in text
                or "No more authentication methods" in text):
            return (f"authentication refused for user {hop.user} "
                    f"(tried: {hop.methods(getattr(hop, 'agent_used', False))})"), detail
        return "unreachable", detail

    def _dial_once(self) -> tuple[bool, _Hop, str, str]:
        for f in ("ctl", "dial.log", "dial.err", "proxy.log"):
            try:
                os.unlink(self._path(f))
            except FileNotFoundError:
                pass
        guard = None
        hops = [h for h in (self.proxy, self.target) if h is not None]
        if all(h.timeout > 0 for h in hops):
            guard = sum(max(60, 4 * h.timeout) for h in hops)
        argv = [self.ssh, "-F", self._path("target.cfg"), "-E", self._path("dial.log"), "-N",
                "-o", "ControlMaster=yes", self.target.alias]
        with open(self._path("dial.err"), "w") as err:
            try:
                # stderr to a file: a ProxyCommand child inherits it and lives as long as the master
                rc = subprocess.run(argv, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err, timeout=guard).returncode
            except subprocess.TimeoutExpired:
                return False, self.target, "unreachable", f"no connection within {guard} s"
        if rc == 0 and os.path.exists(self.ctl):
            return True, self.target, "", ""
        text = self._read("dial.log") + self._read("dial.err")
        if self.proxy is not None:
            ptext = self._read("proxy.log")
            plines = self._ssh_lines(ptext)
            if plines:
                if any("open failed" in ln or "forwarding failed" in ln for ln in plines):
                    # the bastion answered, the target did not (proxyClient.Dial failed)
                    return False, self.target, "unreachable from the proxy", plines[-1]
                kind, detail = self._classify(self.proxy, ptext)
                return False, self.proxy, kind, detail
        kind, detail = self._classify(self.target, text)
        return False, self.target, kind, detail

    def dial(self) -> None:
        delay = 0.1  # the provider's retry.Until: 100 ms, x1.5, at most 5 s
        try:
            while True:
                ok, hop, kind, detail = self._dial_once()
                if ok:
                    self.connected = True
                    return
                hop.failures += 1
                dials = hop.failures
                if hop.limit > -1 and dials > hop.limit:
                    where = f"cannot connect to {hop.label}"
                    if hop is self.proxy:
                        where = f"proxy: cannot connect to the bastion {hop.label}"
                    elif self.proxy is not None:
                        where += f" via the proxy {self.proxy.label}"
                    raise ProviderError(f"{where}: {kind} [ssh: {detail}] "
                                        f"(after {dials} failed dial{'s' if dials != 1 else ''}, "
                                        f"{hop.prop}.dialErrorLimit={hop.limit})")
                limit = "inf" if hop.limit == -1 else str(hop.limit)
                self.status(f"Dial {hop.label} {dials}/{limit} failed ({kind}): retrying")
                time.sleep(delay)
                delay = min(delay * 1.5, 5.0)
        finally:
            self._drop_secrets()

    def _drop_secrets(self) -> None:
        for path in self._secret_files:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self._secret_files = []

    # -- sessions over the master
    def _session_argv(self, log: str, command: str) -> list[str]:
        # ProxyCommand=false: should the master be gone, never fall back to a connection of our own
        return [self.ssh, "-F", self._path("target.cfg"), "-E", self._path(log), "-T",
                "-o", "ControlMaster=no", "-o", "ProxyCommand=false", self.target.alias, command]

    def accepted_env(self, names: list[str]) -> set[str] | None:
        """The names the server takes in "env" requests (OpenSSH's client sends them without asking
        for a reply): one session runs `env` with a marker value in each (never the real values).
        None when that cannot be told (no `env` on the host)."""
        marker = "b4m-envprobe-" + secrets.token_hex(8)
        env = dict(self.env, **{n: marker for n in names})
        try:
            p = subprocess.run(self._session_argv("probe.log", "env"), env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, errors="replace", timeout=120)
        except subprocess.TimeoutExpired:
            return None
        if p.returncode != 0:
            return None
        return {n for n in names if f"{n}={marker}" in p.stdout.splitlines()}

    def run(self, command: str, env: dict, stdin: str | None, log_out, log_err) -> tuple[int, str, str, str, str]:
        """session.Run(command): the server runs it with the user's login shell.
        -> (status, stdout, stderr, both, ssh's own last message)."""
        rc, out, err, both = _exec(self._session_argv("run.log", command), dict(self.env, **env), stdin,
                                   log_out, log_err)
        lines = self._ssh_lines(self._read("run.log"))
        return rc, out, err, both, (lines[-1] if lines else "")

    def close(self) -> None:
        if not self.dir:
            return
        try:
            if self.connected or os.path.exists(self.ctl):
                try:
                    subprocess.run([self.ssh, "-F", self._path("target.cfg"), "-E", self._path("exit.log"),
                                    "-O", "exit", self.target.alias], env=self.env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=15)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = ""
            self.connected = False


_SETENV_MSG = ("Unable to set '{}'. This only works if your SSH server is configured to accept\n"
               "\tthese variables via AcceptEnv. Alternatively, if a Bash-like shell runs the command on the "
               "remote host, you could\n\tprefix the command itself with the variables in the form "
               "'VAR=value command'")


class RemoteCommand(Command):
    token = "command:remote:Command"
    inputs = {
        "connection": None, "create": None, "update": None, "delete": None, "environment": None,
        "stdin": None, "triggers": None, "addPreviousOutputInEnv": None, "logging": None,
    }
    replace_on = frozenset({"triggers"})
    # the provider's Connection is provider:"secret" (password, privateKey and privateKeyPassword too)
    secret_inputs = frozenset({"connection"})
    secret_outputs = frozenset({"connection"})

    def check(self, urn, news, olds, seed):
        out = super().check(urn, news, olds, seed)
        if out.get("connection") is None:
            raise InputError("connection", "missing required property")
        out["connection"] = _check_connection(out["connection"], "connection")
        env = out.get("environment")
        if isinstance(env, dict):
            for k in env:
                if not k or _ENV_NAME_BAD.search(k):
                    raise InputError("environment", f"{k!r}: the bgp4mesh stand-in sends environment names "
                                     "through OpenSSH's SendEnv, which takes no whitespace, = * ? , \" \\ !")
        lg = out.get("logging")
        if isinstance(lg, str) and lg not in _LOGGING:
            raise InputError("logging", f"must be one of {', '.join(_LOGGING)}")
        return out

    def _run(self, urn: str, script: str, inputs: dict, prev: dict | None) -> tuple[str, str]:
        conn = inputs.get("connection")
        if not isinstance(conn, dict) or has_unknown(conn):
            raise ProviderError("connection is not known")
        env = {k: "" if v is None else str(v) for k, v in (inputs.get("environment") or {}).items()}
        prev_env = {}
        if prev is not None and inputs.get("addPreviousOutputInEnv", True) is not False:
            # the provider sets these only when non-empty
            for name, key in ((PULUMI_COMMAND_STDOUT, "stdout"), (PULUMI_COMMAND_STDERR, "stderr")):
                if prev.get(key):
                    prev_env[name] = str(prev[key])
        log_out, log_err = _loggers(inputs, lambda line: self.provider.log(urn, line))
        names = [*env, *prev_env]
        with _Ssh(conn, names, status=lambda m: self.provider.log(urn, m, ephemeral=True)) as ssh:
            ssh.dial()
            if names:
                accepted = ssh.accepted_env(names)
                if accepted is not None:
                    refused = [n for n in env if n not in accepted]
                    for n in refused:
                        self.provider.log(urn, _SETENV_MSG.format(n), "error")
                    if refused:
                        raise ProviderError(
                            f'could not set environment variable "{refused[0]}": ssh: setenv failed '
                            f"(the server at {ssh.target.label} does not accept "
                            f"{', '.join(refused)}: its sshd_config AcceptEnv does not list "
                            f"{'it' if len(refused) == 1 else 'them'})")
                    for n in prev_env:
                        if n not in accepted:
                            self.provider.log(urn, _SETENV_MSG.format(n), "warning")
            rc, out, err, both, sshmsg = ssh.run(script, {**env, **prev_env}, inputs.get("stdin"), log_out, log_err)
            if rc != 0:
                msg = f"Process exited with status {rc}: running {json.dumps(script)} on {ssh.target.label}:\n{both}"
                if sshmsg:
                    msg += f"\n[ssh: {sshmsg}]"
                raise ProviderError(msg)
        return out, err

    def _new_id(self, urn: str) -> str:
        return f"{urn.split('::')[-1]}{secrets.token_hex(4)}"  # resource.NewUniqueHex(name, 8, 0)


class CommandProvider(Provider):
    name = "command"
    version = VERSION
    resources = (Command, RemoteCommand)
