"""Drive the real Pulumi engine (the CLI from scripts/build-pulumi) for a stack of this
project: `up`, `preview`, `stack output`, `refresh`, `destroy`. Used by `./scripts/lab`,
the engine test tier and the bench, so all three run exactly what an operator runs.

Offline settings come from here: no update check, no plugin download, a local file
backend (`Pulumi.yaml`), and the passphrase secrets provider. Unless the caller sets
PULUMI_CONFIG_PASSPHRASE(_FILE), the passphrase is a random one kept in
$BGP4MESH_CACHE/passphrase (0600).

The shipped stack files stay untouched: every command gets `--config-file` pointing at
`$BGP4MESH_CACHE/stacks/Pulumi.<stack>.yaml`, the stack's config plus the passphrase
provider's salt (read from the stack's state, where the backend keeps it). The config is data
(`Stack.config`), so a test can run an edited copy of a shipped stack under its own name.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bgp4mesh.config import StackConfig
from bgp4mesh.stack import PROJECT_DIR, stack_file, validate

CACHE = Path(os.environ.get("BGP4MESH_CACHE", Path.home() / ".cache" / "bgp4mesh"))


def ran_with(stack: str) -> Path:
    """The config file the engine last ran `stack` with (Stack.config_file)."""
    return CACHE / "stacks" / f"Pulumi.{stack}.yaml"


class EngineError(RuntimeError):
    """A pulumi command failed; the message carries its last lines."""


def toolchain_bin() -> Path:
    out = subprocess.run([str(PROJECT_DIR / "scripts" / "build-pulumi"), "--print-bin"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def available() -> bool:
    """The engine is there: a pulumi CLI on PATH or built by scripts/build-pulumi."""
    return shutil.which("pulumi") is not None or (toolchain_bin() / "pulumi").exists()


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(toolchain_bin()), str(PROJECT_DIR / ".venv" / "bin"), env.get("PATH", "")])
    env.update(
        BGP4MESH_ROOT=str(PROJECT_DIR),  # the stand-in plugins run this checkout's code
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK="true",
    )
    if not env.get("PULUMI_CONFIG_PASSPHRASE") and not env.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(_passphrase_file())
    return env


def _passphrase_file() -> Path:
    path = CACHE / "passphrase"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path


def _errors(stdout: str, stderr: str) -> str:
    """What failed: each resource's diagnostics that carry an error (Pulumi prints them
    under "Diagnostics:"), else the last lines of the output."""
    diagnostics = stdout.split("\nDiagnostics:\n", 1)[1].split("\nOutputs:\n", 1)[0] if "\nDiagnostics:\n" in stdout else ""
    blocks = [b for b in diagnostics.split("\n\n") if "error:" in b and "warning: using pulumi-resource" not in b]
    text = "\n\n".join(blocks) or stderr.strip() or stdout.strip()
    return "\n".join(text.splitlines()[-60:])


@dataclass
class Result:
    stdout: str
    stderr: str
    seconds: float


class Stack:
    """One stack of this project on the engine."""

    def __init__(self, name: str, config: dict[str, Any] | None = None, project_dir: Path = PROJECT_DIR):
        self.name = name
        self.project_dir = project_dir
        self.config = config if config is not None else yaml.safe_load(stack_file(name, project_dir).read_text())["config"]
        """`namespace:key` -> value, as under `config:` in a stack file."""
        self.env = environment()
        self.config_file = ran_with(name)
        """What `--config-file` points at: written before every command (config may change)."""
        self._salt: str | None = None

    # -- plumbing ----------------------------------------------------------------------
    def run(self, *args: str, check: bool = True, timeout: float = 1800, stdin: str | None = None) -> Result:
        started = time.monotonic()
        proc = subprocess.run(
            ["pulumi", *args, "--stack", self.name, "--non-interactive"],
            cwd=self.project_dir, env=self.env, capture_output=True, text=True, timeout=timeout, input=stdin,
        )
        result = Result(proc.stdout, proc.stderr, time.monotonic() - started)
        if check and proc.returncode != 0:
            raise EngineError(f"pulumi {' '.join(args)} (stack {self.name}) exited {proc.returncode}:\n{_errors(proc.stdout, proc.stderr)}")
        return result

    def backend_dir(self) -> Path | None:
        """The local file backend's folder (Pulumi.yaml's backend url), if it is one."""
        url = yaml.safe_load((self.project_dir / "Pulumi.yaml").read_text()).get("backend", {}).get("url", "")
        return Path(os.path.expanduser(url.removeprefix("file://"))) if url.startswith("file://") else None

    def prepare(self) -> None:
        """The stack exists in the backend, and its config file holds `config` plus the
        passphrase provider's salt, which the backend keeps in the stack's state."""
        if self._salt is None:
            if self.backend_dir() is not None:
                self.backend_dir().mkdir(parents=True, exist_ok=True)
            self._salt = self._salt_in_backend() or self._init()
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(yaml.safe_dump({"config": self.config, "encryptionsalt": self._salt}, sort_keys=False))
        self.config_file.chmod(0o600)

    def _salt_in_backend(self) -> str | None:
        """The salt from the stack's state; None when there is no such stack yet."""
        proc = subprocess.run(
            ["pulumi", "stack", "export", "--stack", self.name], cwd=self.project_dir, env=self.env, capture_output=True, text=True
        )
        if proc.returncode != 0:
            return None
        providers = json.loads(proc.stdout).get("deployment", {}).get("secrets_providers") or {}
        return (providers.get("state") or {}).get("salt")

    def _init(self) -> str:
        """`pulumi stack init` writes the salt into Pulumi.<stack>.yaml next to Pulumi.yaml:
        run it in a scratch copy of the project file (the state keeps the salt too)."""
        with tempfile.TemporaryDirectory() as scratch:
            shutil.copy(self.project_dir / "Pulumi.yaml", scratch)
            proc = subprocess.run(
                ["pulumi", "stack", "init", self.name, "--secrets-provider", "passphrase"],
                cwd=scratch, env=self.env, capture_output=True, text=True,
            )
            if proc.returncode != 0:
                raise EngineError(f"pulumi stack init {self.name}: {proc.stderr.strip()}")
            return yaml.safe_load((Path(scratch) / f"Pulumi.{self.name}.yaml").read_text())["encryptionsalt"]

    def set_secret(self, path: str, value: str) -> None:
        """`pulumi config set --secret --path PATH` (value on stdin, never on a command
        line); `config` then holds the encrypted value."""
        self.prepare()
        self.run("config", "set", "--secret", "--path", path, "--config-file", str(self.config_file), stdin=value)
        self.config = yaml.safe_load(self.config_file.read_text())["config"]

    def _with_config(self, *args: str) -> tuple[str, ...]:
        self.prepare()
        return (*args, "--config-file", str(self.config_file))

    def model(self) -> StackConfig:
        """The validated model of the config this stack runs with."""
        return validate({key.split(":", 1)[1]: value for key, value in self.config.items()})

    # -- what an operator runs --------------------------------------------------------------
    def up(self, *extra: str, event_log: Path | None = None) -> Result:
        """`pulumi up`; with `event_log`, the engine's events written there, one JSON
        object a line (harness.events reads them): the flag exists only with
        PULUMI_DEBUG_COMMANDS set."""
        if event_log is None:
            return self.run(*self._with_config("up", "--yes", "--skip-preview", *extra))
        plain, self.env = self.env, {**self.env, "PULUMI_DEBUG_COMMANDS": "true"}
        try:
            return self.run(*self._with_config("up", "--yes", "--skip-preview", "--event-log", str(event_log), *extra))
        finally:
            self.env = plain

    def preview(self, *extra: str, check: bool = True) -> Result:
        return self.run(*self._with_config("preview", *extra), check=check)

    def refresh(self, *extra: str) -> Result:
        return self.run(*self._with_config("refresh", "--yes", *extra))

    def destroy(self) -> Result:
        return self.run(*self._with_config("destroy", "--yes"))

    def outputs(self, show_secrets: bool = False) -> dict[str, Any]:
        args = ["stack", "output", "--json", *(["--show-secrets"] if show_secrets else [])]
        return json.loads(self.run(*args).stdout or "{}")

    def state(self) -> str:
        """The stack's state as the backend stores it (secrets encrypted)."""
        return self.run("stack", "export").stdout
