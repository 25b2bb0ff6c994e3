"""The GitHub workflows pass actionlint (with shellcheck on their scripts), which
scripts/build-binaries builds from its Go module; and actionlint does catch a broken one.

They also keep prod secrets away from pull-request code (issue 15): the job with prod root runs
only in a reviewed environment and never for a fork, every action is pinned to a commit, and pip
installs only files whose hashes requirements.lock holds. Each rule is a check that returns its
problems; the real workflows must have none, and a copy with the rule broken must have some."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
ACTIONLINT = Path(os.environ.get("BGP4MESH_CACHE", Path.home() / ".cache" / "bgp4mesh")) / "bin" / "actionlint"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PREVIEW = ROOT / ".github" / "workflows" / "preview.yml"
LOCK = "requirements.lock"
FORK_GUARD = "github.event.pull_request.head.repo.full_name == github.repository"
PINNED = re.compile(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}")
VERSION_COMMENT = re.compile(r"\s+#\s*v\d+(\.\d+)*\s*$")


def lint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(ACTIONLINT), *map(str, paths)], capture_output=True, text=True, timeout=120)


def test_there_is_a_preview_workflow():
    assert [p.name for p in WORKFLOWS] == ["preview.yml"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_actionlint(workflow):
    proc = lint(workflow)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(PREVIEW.read_text().replace("needs.stacks.outputs.lab", "needs.stackz.outputs.lab"))
    proc = lint(broken)
    assert proc.returncode == 1 and "stackz" in proc.stdout, proc.stdout


# --- reading workflows ----------------------------------------------------------------------


def triggers(workflow: dict) -> set[str]:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on:` key as true
    return {on} if isinstance(on, str) else set(on or ())


def jobs(workflow: dict) -> dict[str, dict]:
    return workflow.get("jobs") or {}


def strings(node) -> list[str]:
    """Every string inside a parsed YAML value, keys included."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in strings(k) + strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return []


def run_scripts(workflow: dict) -> list[str]:
    return [step["run"] for job in jobs(workflow).values() for step in job.get("steps", []) if "run" in step]


def is_checkout(step: dict) -> bool:
    return str(step.get("uses", "")).startswith("actions/checkout@")


def refuses_forks(job: dict) -> bool:
    """The job's `if:` is a conjunction holding the same-repository test. GitHub's expression
    language is not parsed here, only reduced far enough to see that no `||` can get around it."""
    cond = str(job.get("if", "")).strip()
    if cond.startswith("${{") and cond.endswith("}}"):
        cond = cond[3:-2]
    if "||" in cond:
        return False
    conjuncts = {" ".join(c.split()).strip("() ") for c in cond.split("&&")}
    lhs, rhs = FORK_GUARD.split(" == ")
    return bool(conjuncts & {FORK_GUARD, f"{rhs} == {lhs}"})


def environment_name(job: dict) -> str:
    env = job.get("environment")
    return str((env.get("name") if isinstance(env, dict) else env) or "")


# --- the rules, each returning its problems -------------------------------------------------


def pin_problems(text: str) -> list[str]:
    """Every `uses:` names a full commit SHA and says which release it is. The comment is not in
    the parsed data, so this reads the YAML node tree for where each value ends."""
    lines = text.splitlines()
    problems = []

    def walk(node):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == "uses" and isinstance(value, yaml.ScalarNode) and not value.value.startswith("./"):
                    rest = lines[value.end_mark.line][value.end_mark.column:]
                    if not PINNED.fullmatch(value.value):
                        problems.append(f"{value.value}: not pinned to a full commit SHA")
                    elif not VERSION_COMMENT.match(rest):
                        problems.append(f"{value.value}: no `# vX.Y.Z` comment naming the release")
                walk(value)
        elif isinstance(node, yaml.SequenceNode):
            for value in node.value:
                walk(value)

    walk(yaml.compose(text))
    return problems


def secret_problems(text: str) -> list[str]:
    """On a pull request, a job that sees a secret runs in an environment (whose required
    reviewers approve the run) and refuses forks; and no workflow runs PR-triggered code in the
    base repository's context, where every secret is handed out."""
    workflow = yaml.safe_load(text)
    on = triggers(workflow)
    base_context = sorted(on & {"pull_request_target", "workflow_run"})
    problems = [f"triggered by {t}: runs with the base repository's secrets" for t in base_context]
    if "pull_request" not in on:
        return problems
    for name, job in jobs(workflow).items():
        if job.get("secrets") != "inherit" and not any("secrets." in s for s in strings(job)):
            continue
        if not environment_name(job):
            problems.append(f"job {name} sees secrets outside an environment")
        if not refuses_forks(job):
            problems.append(f"job {name} sees secrets and its `if:` does not refuse forks ({FORK_GUARD})")
    return problems


def permission_problems(text: str) -> list[str]:
    """No write access by default, every job says what it needs, and a job that runs the pull
    request's code without refusing forks gets nothing it could write with."""
    workflow = yaml.safe_load(text)
    problems = []
    top = workflow.get("permissions")
    if top != {}:
        problems.append(f"workflow permissions are {top!r}, not {{}}")
    for name, job in jobs(workflow).items():
        perms = job.get("permissions")
        if not isinstance(perms, dict):
            problems.append(f"job {name} does not list its permissions ({perms!r})")
            continue
        runs_pr_code = any(
            is_checkout(step) and "base.sha" not in str((step.get("with") or {}).get("ref", "")) for step in job.get("steps", [])
        )
        writes = sorted(k for k, v in perms.items() if v == "write")
        if runs_pr_code and not refuses_forks(job) and writes:
            problems.append(f"job {name} runs the pull request's code, forks' too, with write access to {writes}")
    return problems


def checkout_problems(text: str) -> list[str]:
    """actions/checkout otherwise leaves the token in .git/config, where the PR's code reads it."""
    workflow = yaml.safe_load(text)
    return [
        f"job {name}: checkout keeps the token in .git/config"
        for name, job in jobs(workflow).items()
        for step in job.get("steps", [])
        if is_checkout(step) and (step.get("with") or {}).get("persist-credentials") is not False
    ]


def pip_installs(script: str) -> list[list[str]]:
    """The argument lists of the `pip install` commands in a shell script (`pip` or `python -m
    pip`, as one command of a line's `&&`, `||`, `;` or `|` list)."""
    installs = []
    for line in script.replace("\\\n", " ").splitlines():
        if "pip" not in line:
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command: list[str] = []
        for word in [*lexer, ";"]:
            if word not in {"&&", "||", ";", "|", "&"}:
                command.append(word)
                continue
            if command and command[0] == "sudo":
                command = command[1:]
            if command[1:3] == ["-m", "pip"]:
                command = ["pip", *command[3:]]
            if command and command[0].endswith(("pip", "pip3")) and command[1:2] == ["install"]:
                installs.append(command)
            command = []
    return installs


def pip_problems(scripts: list[str]) -> list[str]:
    """pip installs only the lock, and only files whose hash the lock holds."""
    problems = []
    for script in scripts:
        for cmd in pip_installs(script):
            from_lock = any(a == "-r" and b == LOCK for a, b in zip(cmd, cmd[1:]))
            if "--require-hashes" not in cmd or not from_lock:
                problems.append(" ".join(cmd))
    return problems


def pip_scripts() -> list[str]:
    """Everything that installs Python packages in CI: the workflows' steps and bootstrap (which
    the lab job and .ci/run use)."""
    return [s for p in WORKFLOWS for s in run_scripts(yaml.safe_load(p.read_text()))] + [(ROOT / "scripts" / "bootstrap").read_text()]


# --- the real workflows keep the rules ------------------------------------------------------


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version(workflow):
    assert not pin_problems(workflow.read_text())


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_secrets_only_in_a_reviewed_environment_and_never_for_forks(workflow):
    assert not secret_problems(workflow.read_text())


def test_the_prod_job_is_the_guarded_one():
    """Not vacuous: the job holding prod root is found by the secret check, and its environment
    is the one the README tells operators to create."""
    prod = jobs(yaml.safe_load(PREVIEW.read_text()))["prod"]
    seen = {m for s in strings(prod) for m in re.findall(r"secrets\.\w+", s)}
    assert {"secrets.PROD_SSH_KEY", "secrets.PULUMI_CONFIG_PASSPHRASE"} <= seen
    assert environment_name(prod) and refuses_forks(prod)
    assert f"`{environment_name(prod)}`" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_per_job_and_pr_code_gets_no_write_token(workflow):
    assert not permission_problems(workflow.read_text())


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_checkouts_leave_no_token_behind(workflow):
    assert not checkout_problems(workflow.read_text())


def test_pip_installs_check_hashes():
    scripts = pip_scripts()
    assert sum(len(pip_installs(s)) for s in scripts) >= 2  # the prod job's and bootstrap's
    assert not pip_problems(scripts)


# --- and each rule catches a workflow that breaks it ----------------------------------------

def swap(good: str, bad: str):
    def mutate(text: str) -> str:
        assert good in text, f"{good!r} is no longer in preview.yml; update the case"
        return text.replace(good, bad)

    return mutate


PROD_IF_END = f"      && {FORK_GUARD}\n    runs-on: ubuntu-24.04\n    environment"
BROKEN = {
    "tag instead of commit": (pin_problems, lambda text: re.sub(r"@[0-9a-f]{40}", "@v4", text, count=1)),
    "commit without version": (pin_problems, lambda text: re.sub(r"(@[0-9a-f]{40}) # v[\d.]+", r"\1", text, count=1)),
    "no environment": (secret_problems, swap("    environment: prod-preview\n", "")),
    "forks allowed": (secret_problems, swap(PROD_IF_END, PROD_IF_END.split("\n", 1)[1])),
    "forks bypass": (secret_problems, swap(PROD_IF_END, PROD_IF_END.replace("&&", "||"))),
    "pull_request_target": (secret_problems, swap("  pull_request:\n", "  pull_request_target:\n")),
    "write by default": (permission_problems, swap("permissions: {}\n", "permissions:\n  pull-requests: write\n")),
    "lab job may write": (permission_problems, swap("contents: read\n    strategy:", "contents: write\n    strategy:")),
    "token left in .git": (checkout_problems, swap("clean: false\n          persist-credentials: false\n", "clean: false\n")),
    "pip without hashes": (
        lambda text: pip_problems(run_scripts(yaml.safe_load(text))),
        swap("--require-hashes -r requirements.lock", "-r requirements.txt"),
    ),
}


@pytest.mark.parametrize("case", BROKEN, ids=str)
def test_each_rule_catches_a_broken_workflow(case):
    check, mutate = BROKEN[case]
    text = PREVIEW.read_text()
    assert not check(text) and check(mutate(text))


def test_pip_check_catches_an_unhashed_install():
    old_bootstrap = ".venv/bin/pip install -q --disable-pip-version-check -r requirements.txt\n"
    assert pip_installs(old_bootstrap) == [[".venv/bin/pip", "install", "-q", "--disable-pip-version-check", "-r", "requirements.txt"]]
    assert pip_problems([old_bootstrap])
    assert pip_problems(["python -m venv .venv && python -m pip install --require-hashes -r requirements.txt"])


# --- the lock -------------------------------------------------------------------------------


def requirements(path: Path) -> dict[str, tuple[Requirement | None, list[str]]]:
    """name -> (requirement, its options) for each line of a requirements file; a line that
    starts with an option (a stray `--hash`, `--index-url`) is kept under its text, unparsed."""
    out: dict[str, tuple[Requirement | None, list[str]]] = {}
    for line in path.read_text().replace("\\\n", " ").splitlines():
        words = line.split("#", 1)[0].split()
        if words and words[0].startswith("-"):
            out[line.strip()] = (None, words)
        elif words:
            req = Requirement(words[0])
            out[canonicalize_name(req.name)] = (req, words[1:])
    return out


def test_lock_holds_every_top_level_pin_at_its_version():
    """requirements.txt is what people edit; the lock must be regenerated from it (README)."""
    locked = requirements(ROOT / LOCK)
    for name, (req, _) in requirements(ROOT / "requirements.txt").items():
        assert req is not None, f"requirements.txt holds only top-level pins, not {name!r}"
        assert name in locked, f"{req} is not in {LOCK}"
        assert str(locked[name][0].specifier) == str(req.specifier), f"{req} but {LOCK} has {locked[name][0]}"


def test_every_locked_requirement_is_pinned_and_hashed():
    locked = requirements(ROOT / LOCK)
    assert len(locked) > len(requirements(ROOT / "requirements.txt"))  # the transitive ones too
    for name, (req, options) in locked.items():
        assert req is not None, f"not a requirement: {name!r}"
        assert str(req.specifier).startswith("==") and len(req.specifier) == 1, f"{req} is not pinned"
        assert options and all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", o) for o in options), f"{name}: {options}"
