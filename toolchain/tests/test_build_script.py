"""scripts/build-pulumi: "prefer the real thing" and the stand-in wrappers (no Go build here)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build-pulumi"


def run(tmp: Path, *args: str, path_prefix: str = "", pulumi_home: Path | None = None):
    env = {**os.environ, "BGP4MESH_CACHE": str(tmp / "cache")}
    if path_prefix:
        env["PATH"] = f"{path_prefix}:{env['PATH']}"
    env["PULUMI_HOME"] = str(pulumi_home or tmp / "no-pulumi-home")
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120)


def fake_exe(path: Path, text: str = "#!/bin/sh\necho fake\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_prefers_real_cli_and_plugins(tmp_path):
    real_bin = tmp_path / "real-bin"
    fake_exe(real_bin / "pulumi")
    fake_exe(real_bin / "pulumi-language-python")
    home = tmp_path / "pulumi-home"
    fake_exe(home / "plugins" / "resource-command-v1.2.1" / "pulumi-resource-command")
    fake_exe(home / "plugins" / "resource-docker-v5.2.0" / "pulumi-resource-docker")
    p = run(tmp_path, "--only", "cli,language-host,command,random,docker", path_prefix=str(real_bin),
            pulumi_home=home)
    assert p.returncode == 0, p.stderr
    bin_dir = Path(p.stdout.strip().splitlines()[-1])
    assert bin_dir == tmp_path / "cache" / "pulumi" / "bin"
    assert "built:     nothing" in p.stderr
    assert f"pulumi: {real_bin}/pulumi" in p.stderr
    assert "resource-command-v1.2.1" in p.stderr and "resource-docker-v5.2.0" in p.stderr
    installed = sorted(x.name for x in bin_dir.iterdir())
    # only the random stand-in: no CLI, no host, no command/docker plugin shadowing the real ones
    assert installed == ["pulumi-resource-random"]


def test_standin_wrappers_run_the_venv_python(tmp_path):
    p = run(tmp_path, "--only", "command,random,tls")
    assert p.returncode == 0, p.stderr
    bin_dir = Path(p.stdout.strip().splitlines()[-1])
    for name in ("command", "random", "tls"):
        w = bin_dir / f"pulumi-resource-{name}"
        assert os.access(w, os.X_OK)
        assert f'root="${{BGP4MESH_ROOT:-{ROOT}}}"' in w.read_text()  # this checkout unless told otherwise
        v = subprocess.run([str(w), "-version"], capture_output=True, text=True, timeout=30)
        assert v.returncode == 0 and v.stdout.strip() == {"command": "1.2.1", "random": "4.21.4", "tls": "5.6.2"}[name]
    # second run: nothing to install
    p2 = run(tmp_path, "--only", "command,random,tls")
    assert "installed: nothing" in p2.stderr
