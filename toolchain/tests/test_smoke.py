"""End to end: the built CLI, language host and providers run a tiny Pulumi Python program.

Needs `scripts/build-pulumi` to have run (bin dir from BGP4MESH_PULUMI_BIN or
${BGP4MESH_CACHE:-~/.cache/bgp4mesh}/pulumi/bin). Everything runs offline against a file://
backend in a temp dir, with its own PULUMI_HOME. The docker part (an internal network named
b4mtool-smoke-*) runs when pulumi-resource-docker is built and `docker info` answers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
CACHE = Path(os.environ.get("BGP4MESH_CACHE", Path.home() / ".cache" / "bgp4mesh"))
BIN = Path(os.environ.get("BGP4MESH_PULUMI_BIN", CACHE / "pulumi" / "bin"))


def _have(name: str) -> bool:
    return (BIN / name).exists() or shutil.which(name) is not None


def _docker_ok() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _have("pulumi"), reason=f"no pulumi CLI in {BIN} (run scripts/build-pulumi)")

PROGRAM = '''
import os

import pulumi
import pulumi.dynamic
import pulumi_command as command
import pulumi_random as random
import pulumi_tls as tls

cfg = pulumi.Config()
gen = cfg.require("gen")
with_docker = cfg.get_bool("docker") or False

pw = random.RandomPassword("pw", length=24, special=False)

ca_key = tls.PrivateKey("ca-key", algorithm="ECDSA", ecdsa_curve="P256")
ca = tls.SelfSignedCert(
    "ca",
    private_key_pem=ca_key.private_key_pem,
    is_ca_certificate=True,
    subject=tls.SelfSignedCertSubjectArgs(common_name="smoke CA", organization="bgp4mesh"),
    validity_period_hours=48,
    allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
)
srv_key = tls.PrivateKey("srv-key", algorithm="ECDSA", ecdsa_curve="P256")
csr = tls.CertRequest(
    "csr",
    private_key_pem=srv_key.private_key_pem,
    subject=tls.CertRequestSubjectArgs(common_name="smoke.example"),
    dns_names=["smoke.example"],
    ip_addresses=["192.0.2.1"],
)
cert = tls.LocallySignedCert(
    "cert",
    cert_request_pem=csr.cert_request_pem,
    ca_private_key_pem=ca_key.private_key_pem,
    ca_cert_pem=ca.cert_pem,
    validity_period_hours=24,
    allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
)

cmd = command.local.Command(
    "cmd",
    create="echo created $GEN",
    update="echo updated $GEN after [$PULUMI_COMMAND_STDOUT]",
    delete="echo deleted >> deleted.log",
    environment={"GEN": gen, "PW": pw.result},
    dir=os.getcwd(),
)
trig = command.local.Command(
    "trig",
    create="echo $RANDOM",
    triggers=[gen],
)

class EchoProvider(pulumi.dynamic.ResourceProvider):
    def create(self, props):
        return pulumi.dynamic.CreateResult(id_="echo-1", outs={"v": props["v"]})


class Echo(pulumi.dynamic.Resource):
    v: pulumi.Output[str]

    def __init__(self, name, v):
        super().__init__(EchoProvider(), name, {"v": v})


echo = Echo("echo", "dynamic ok")

pulumi.export("echo", echo.v)
pulumi.export("pw", pw.result)
pulumi.export("pw_len", pw.result.apply(len))
pulumi.export("ca_pem", ca.cert_pem)
pulumi.export("cert_pem", cert.cert_pem)
pulumi.export("stdout", cmd.stdout)
pulumi.export("trig_id", trig.id)

if with_docker:
    import pulumi_docker as docker

    net = docker.Network(
        "net",
        name=cfg.require("net_name"),
        driver="bridge",
        internal=True,
        labels=[docker.NetworkLabelArgs(label="b4mtool", value=gen)],
        opts=pulumi.ResourceOptions(delete_before_replace=True),
    )
    pulumi.export("net_id", net.id)
    pulumi.export("net_name", net.name)
'''


class Project:
    def __init__(self, tmp: Path):
        self.dir = tmp / "proj"
        self.dir.mkdir()
        state = tmp / "state"
        state.mkdir()
        home = tmp / "pulumi-home"
        home.mkdir()
        (self.dir / "Pulumi.yaml").write_text(textwrap.dedent(f"""\
            name: b4mtool-smoke
            runtime:
              name: python
              options:
                toolchain: pip
                virtualenv: {VENV}
            """))
        (self.dir / "__main__.py").write_text(PROGRAM)
        self.state = state
        self.env = {
            **os.environ,
            "PATH": f"{BIN}:{VENV / 'bin'}:{os.environ.get('PATH', '')}",
            "PULUMI_HOME": str(home),
            "PULUMI_BACKEND_URL": f"file://{state}",
            "PULUMI_CONFIG_PASSPHRASE": "smoke-test-passphrase",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
        }

    def run(self, *args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
        p = subprocess.run(["pulumi", *args, "--non-interactive"], cwd=self.dir, env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def outputs(self) -> dict:
        return json.loads(self.run("stack", "output", "--json", "--show-secrets").stdout)

    def state_text(self) -> str:
        return "\n".join(p.read_text() for p in self.state.rglob("*.json"))


def test_up_preview_update_destroy(tmp_path):
    docker = _have("pulumi-resource-docker") and _docker_ok()
    if os.environ.get("B4MTOOL_REQUIRE_DOCKER") and not docker:
        pytest.fail("docker provider or engine missing")
    net_name = f"b4mtool-smoke-{uuid.uuid4().hex[:8]}"
    pr = Project(tmp_path)
    pr.run("stack", "init", "smoke")
    pr.run("config", "set", "gen", "1")
    pr.run("config", "set", "docker", "true" if docker else "false")
    pr.run("config", "set", "net_name", net_name)
    try:
        up = pr.run("up", "--yes", "--skip-preview")
        out = pr.outputs()
        assert out["stdout"] == "created 1"
        assert out["echo"] == "dynamic ok"
        assert out["pw_len"] == 24 and out["pw"].isalnum()
        from cryptography import x509

        ca = x509.load_pem_x509_certificate(out["ca_pem"].encode())
        leaf = x509.load_pem_x509_certificate(out["cert_pem"].encode())
        leaf.verify_directly_issued_by(ca)

        # secrets: the password never appears in clear in the state
        state = pr.state_text()
        assert out["pw"] not in state, "RandomPassword result stored in clear"
        assert "ciphertext" in state

        pr.run("preview", "--expect-no-changes")
        if docker:
            insp = subprocess.run(["docker", "network", "inspect", net_name], capture_output=True, text=True)
            assert insp.returncode == 0, insp.stderr
            info = json.loads(insp.stdout)[0]
            assert info["Internal"] is True and info["Labels"].get("b4mtool") == "1"
            assert out["net_name"] == net_name and out["net_id"] == info["Id"]

        # an update: the command updates in place, triggers replace `trig`, the password is stable
        pr.run("config", "set", "gen", "2")
        prev = pr.run("preview", "--diff")
        assert "update" in prev.stdout or "~" in prev.stdout
        pr.run("up", "--yes", "--skip-preview")
        out2 = pr.outputs()
        assert out2["stdout"] == "updated 2 after [created 1]"
        assert out2["pw"] == out["pw"]
        assert out2["trig_id"] != out["trig_id"]
        pr.run("preview", "--expect-no-changes")
        assert out["pw"] not in pr.state_text()
        # refresh reads every resource back without drift
        pr.run("refresh", "--yes", "--skip-preview")
        pr.run("preview", "--expect-no-changes")
        assert pr.outputs() == out2
        if docker:
            info = json.loads(subprocess.run(["docker", "network", "inspect", net_name],
                                             capture_output=True, text=True, check=True).stdout)[0]
            assert info["Labels"].get("b4mtool") == "2"
    finally:
        pr.run("destroy", "--yes", "--skip-preview", check=False)
        if docker:
            subprocess.run(["docker", "network", "rm", net_name], capture_output=True)
    assert (pr.dir / "deleted.log").read_text().strip() == "deleted"
    if docker:
        assert subprocess.run(["docker", "network", "inspect", net_name], capture_output=True).returncode != 0
    pr.run("stack", "rm", "--yes")


DOCKER_PROGRAM = '''
import hashlib
from pathlib import Path

import pulumi
import pulumi_docker as docker

cfg = pulumi.Config()
gen = cfg.require("gen")
prefix = cfg.require("prefix")
ctx = cfg.require("context")

net = docker.Network(
    "net", name=f"{prefix}-net", internal=True, driver="bridge",
    ipam_configs=[docker.NetworkIpamConfigArgs(subnet="172.31.251.0/24", gateway="172.31.251.254")],
    opts=pulumi.ResourceOptions(delete_before_replace=True),
)
vol = docker.Volume("vol", name=f"{prefix}-vol", labels=[docker.VolumeLabelArgs(label="b4mtool", value="1")])
base = docker.RemoteImage("base", name="debian:bookworm-slim", keep_locally=True)
digest = hashlib.sha256(b"".join(f.read_bytes() for f in sorted(Path(ctx).iterdir()))).hexdigest()
built = docker.RemoteImage(  # how bgp4mesh builds its images (components/docker_parts.ImageSet)
    "built", name=f"{prefix}-img:local",
    build=docker.RemoteImageBuildArgs(context=ctx, build_args={"GREETING": gen}),
    triggers={"context": digest},
    keep_locally=True,  # replacing it must not remove an image a running container still uses
)
pulumi.export("image_id", built.image_id)
ctr = docker.Container(
    "ctr", name=f"{prefix}-ctr", image=built.image_id,
    command=["sleep", "infinity"], init=True,
    labels=[docker.ContainerLabelArgs(label="b4mtool", value=gen)],
    uploads=[docker.ContainerUploadArgs(file="/etc/b4m.conf", content=f"gen={gen}\\n")],
    networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=net.name, ipv4_address="172.31.251.5")],
    volumes=[docker.ContainerVolumeArgs(volume_name=vol.name, container_path="/data")],
    capabilities=docker.ContainerCapabilitiesArgs(adds=["NET_ADMIN"]),
    envs=["A=b"],
    opts=pulumi.ResourceOptions(delete_before_replace=True, depends_on=[base]),
)
pulumi.export("ctr_id", ctr.id)
pulumi.export("ip", ctr.network_datas.apply(lambda d: d[0].ip_address if d else None))
'''


def _docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True)


@pytest.mark.skipif(not (_have("pulumi-resource-docker") and _docker_ok()), reason="no docker provider or engine")
def test_docker_container_volume_image(tmp_path):
    if _docker("image", "inspect", "debian:bookworm-slim").returncode != 0:
        pytest.skip("debian:bookworm-slim is not in the local engine (scripts/bootstrap builds it)")
    prefix = f"b4mtool-smoke-{uuid.uuid4().hex[:8]}"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text('FROM debian:bookworm-slim\nARG GREETING=hi\nRUN echo "$GREETING" > /greeting\n')
    pr = Project(tmp_path)
    (pr.dir / "__main__.py").write_text(DOCKER_PROGRAM)
    pr.run("stack", "init", "smoke")
    for k, v in (("gen", "1"), ("prefix", prefix), ("context", str(ctx))):
        pr.run("config", "set", k, v)
    try:
        pr.run("up", "--yes", "--skip-preview")
        out = pr.outputs()
        assert out["ip"] == "172.31.251.5"
        assert _docker("exec", f"{prefix}-ctr", "cat", "/etc/b4m.conf", "/greeting").stdout == "gen=1\n1\n"
        assert out["image_id"] == _docker("image", "inspect", "-f", "{{.Id}}", f"{prefix}-img:local").stdout.strip()
        pr.run("preview", "--expect-no-changes")
        pr.run("config", "set", "gen", "2")
        pr.run("up", "--yes", "--skip-preview")
        out2 = pr.outputs()
        assert out2["ctr_id"] != out["ctr_id"]  # labels/uploads/a new image replace a container
        assert out2["image_id"] != out["image_id"]  # a changed build arg rebuilds the image
        assert _docker("exec", f"{prefix}-ctr", "cat", "/etc/b4m.conf", "/greeting").stdout == "gen=2\n2\n"
        pr.run("preview", "--expect-no-changes")
        # a change inside the build context changes the trigger: the image is rebuilt
        (ctx / "extra.txt").write_text("x")
        diff = pr.run("preview", "--diff").stdout
        assert re.search(r"\+-\s*docker:index/remoteImage:RemoteImage: \(replace\)", diff) and "triggers" in diff, diff
    finally:
        pr.run("destroy", "--yes", "--skip-preview", check=False)
        built_kept = _docker("image", "inspect", f"{prefix}-img:local").returncode == 0  # keep_locally
        leftovers = [
            n for kind, n in (("container", f"{prefix}-ctr"), ("volume", f"{prefix}-vol"), ("network", f"{prefix}-net"))
            if _docker(kind, "inspect", n).returncode == 0
        ]
        for kind, n in (("rm", f"{prefix}-ctr"), ("volume", f"{prefix}-vol"), ("network", f"{prefix}-net"),
                        ("rmi", f"{prefix}-img:local")):
            if kind in ("rm", "rmi"):
                _docker(kind, "-f", n)
            else:
                _docker(kind, "rm", n)
    assert not leftovers, f"destroy left {leftovers}"
    assert built_kept
    assert _docker("image", "inspect", "debian:bookworm-slim").returncode == 0  # keep_locally
    pr.run("stack", "rm", "--yes")
