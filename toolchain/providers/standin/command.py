"""Stand-in for pulumi-command 1.2.1: command:local:Command.

Semantics follow pulumi-command's documentation (pulumi_command/local/command.py):
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
Not implemented: assetPaths/archivePaths (assets/archive outputs), command:local:run and
command:remote:*.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import threading

from .base import UNKNOWN, InputError, Provider, ProviderError, Resource, has_unknown

VERSION = "1.2.1"


def _pump(stream, sink: list, log) -> None:
    for line in iter(stream.readline, ""):
        sink.append(line)
        if log is not None:
            log(line.rstrip("\n"))
    stream.close()


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
    stdin = inputs.get("stdin")
    mode = inputs.get("logging") or "stdoutAndStderr"
    log_out = log if log is not None and mode in ("stdout", "stdoutAndStderr") else None
    log_err = log if log is not None and mode in ("stderr", "stdoutAndStderr") else None
    try:
        p = subprocess.Popen(
            [*interpreter, script], cwd=cwd, env=env, text=True, errors="replace",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
    except OSError as e:
        raise ProviderError(f"could not run {interpreter[0]!r}: {e}") from e
    outs: list[str] = []
    errs: list[str] = []
    pumps = [threading.Thread(target=_pump, args=(p.stdout, outs, log_out), daemon=True),
             threading.Thread(target=_pump, args=(p.stderr, errs, log_err), daemon=True)]
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
    if p.returncode != 0:
        raise ProviderError(
            f"exit status {p.returncode}: running {script!r}:\nStdout:\n{out}\nStderr:\n{err}")
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

    def create(self, urn, inputs, preview):
        if preview:
            return "", self._outputs(inputs, UNKNOWN, UNKNOWN)
        out, err = ("", "")
        if inputs.get("create"):
            out, err = _run(inputs["create"], inputs, None, self._log(urn))
        return secrets.token_hex(8), self._outputs(inputs, out, err)

    def update(self, urn, rid, olds, news, preview):
        script = news.get("update") or news.get("create")
        if preview:
            if script:
                return self._outputs(news, UNKNOWN, UNKNOWN)
            return self._outputs(news, olds.get("stdout", ""), olds.get("stderr", ""))
        out, err = olds.get("stdout", ""), olds.get("stderr", "")
        if script:
            out, err = _run(script, news, olds, self._log(urn))
        return self._outputs(news, out, err)

    def delete(self, urn, rid, state):
        if state.get("delete"):
            _run(state["delete"], state, state, self._log(urn))


class CommandProvider(Provider):
    name = "command"
    version = VERSION
    resources = (Command,)
