"""The simulation's secrets, made once and kept in the cache (0700 folder, 0600 files) so
that the hosts keep their keys from one `up` to the next: the operator's SSH key, each
host's host key, the CA behind pebble's HTTPS listener and the ISP's MD5 password."""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .base import cache_dir, write_private
from .topology import ACME_IP, ACME_NAME, HOSTS


@dataclass
class Material:
    """Everything generated once and kept in the cache (0700 dir, 0600 files)."""

    dir: Path
    operator_key: Path
    operator_pub: str
    host_keys: dict[str, tuple[bytes, str]]  # host -> (private OpenSSH PEM, "ssh-ed25519 AAAA...")
    ca_pem_path: Path
    ca_pem: str
    pebble_cert: bytes
    pebble_key: bytes
    md5_path: Path
    md5: str
    known_hosts: Path


def _ed25519(path: Path) -> tuple[bytes, str]:
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ed25519

    if path.exists():
        pem = path.read_bytes()
        key = ser.load_ssh_private_key(pem, None)
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption())
        write_private(path, pem)
    pub = key.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH).decode()
    return pem, pub


def _ca_and_listener(d: Path) -> tuple[Path, bytes, bytes]:
    """The sim CA (signs pebble's HTTPS listener: acme.staging.test and its address)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_path, ca_key_path = d / "ca.pem", d / "ca-key.pem"
    cert_path, key_path = d / "pebble-listener.pem", d / "pebble-listener-key.pem"
    now = datetime.datetime.now(datetime.timezone.utc)
    if not (ca_path.exists() and ca_key_path.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bgp4mesh sim CA"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bgp4mesh")])
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        write_private(ca_key_path, key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()))
        write_private(ca_path, cert.public_bytes(ser.Encoding.PEM))
        cert_path.unlink(missing_ok=True)
    if not (cert_path.exists() and key_path.exists()):
        ca_key = ser.load_pem_private_key(ca_key_path.read_bytes(), None)
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ACME_NAME)])).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=820))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(ACME_NAME), x509.IPAddress(ipaddress.ip_address(ACME_IP))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        write_private(key_path, key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()))
        write_private(cert_path, cert.public_bytes(ser.Encoding.PEM))
    return ca_path, cert_path.read_bytes(), key_path.read_bytes()


def material() -> Material:
    """The cached secrets, made where missing."""
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    _, operator_pub = _ed25519(d / "id_ed25519")
    write_private(d / "id_ed25519.pub", (operator_pub + " bgp4mesh-sim-operator\n").encode())
    host_keys = {name: _ed25519(d / "hostkeys" / f"{name}_ed25519") for name in HOSTS}
    ca_path, cert, key = _ca_and_listener(d)
    md5_path = d / "isp-md5-password"
    if not md5_path.exists():
        write_private(md5_path, secrets.token_urlsafe(24).encode())
    known = _ssh_client_files(d, host_keys)
    return Material(d, d / "id_ed25519", operator_pub, host_keys, ca_path, ca_path.read_text(), cert, key, md5_path, md5_path.read_text().strip(), known)



def _ssh_client_files(d: Path, host_keys: dict[str, tuple[bytes, str]]) -> Path:
    """known_hosts pinning every host's key, and for tools that run plain `ssh` (the docker
    CLI with DOCKER_HOST=ssh://...) a config trusting exactly those keys and an `ssh` that
    uses it, to put first on PATH. Returns the known_hosts file."""
    known = d / "known_hosts"
    lines = [f"{h.known_name} {host_keys[h.name][1]}" for h in HOSTS.values()]
    write_private(known, ("\n".join(lines) + "\n").encode())
    write_private(d / "ssh_config", (
        f"Host {' '.join(sorted({h.ssh_address for h in HOSTS.values()}))}\n  User root\n  IdentityFile {d / 'id_ed25519'}\n"
        f"  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n"
        "  BatchMode yes\n").encode())
    wrapper = d / "bin" / "ssh"
    write_private(wrapper, f'#!/bin/sh\nexec /usr/bin/ssh -F {d / "ssh_config"} "$@"\n'.encode())
    os.chmod(wrapper, 0o700)
    os.chmod(wrapper.parent, 0o700)
    return known
