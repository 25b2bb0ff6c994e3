"""What the pulumi-tls resources do, done with `cryptography`, for the live harness.

Input and output names are pulumi-tls's wire names, so the program declares real
`pulumi_tls` resources and the harness returns what the provider would.
"""

from __future__ import annotations

import datetime
import ipaddress
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_NAME_FIELDS = {
    "commonName": NameOID.COMMON_NAME,
    "organization": NameOID.ORGANIZATION_NAME,
    "organizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "country": NameOID.COUNTRY_NAME,
}


def create(kind: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "privateKey": _private_key,
        "selfSignedCert": _self_signed,
        "certRequest": _cert_request,
        "locallySignedCert": _locally_signed,
    }[kind](inputs)


def _private_key(inputs: dict) -> dict:
    algorithm = inputs.get("algorithm", "RSA")
    if algorithm == "ECDSA":
        curve = {"P224": ec.SECP224R1, "P256": ec.SECP256R1, "P384": ec.SECP384R1, "P521": ec.SECP521R1}
        key = ec.generate_private_key(curve[inputs.get("ecdsaCurve") or "P224"]())
    elif algorithm == "RSA":
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(inputs.get("rsaBits") or 2048))
    else:
        raise ValueError(f"tls PrivateKey: algorithm {algorithm} not supported by the live harness")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"privateKeyPem": pem.decode(), "publicKeyPem": pub.decode()}


def _load_key(pem: str):
    return serialization.load_pem_private_key(pem.encode(), password=None)


def _name(subject: dict | None) -> x509.Name:
    attrs = [x509.NameAttribute(oid, str(subject[k])) for k, oid in _NAME_FIELDS.items() if subject and subject.get(k)]
    return x509.Name(attrs)


def _sans(inputs: dict) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in inputs.get("dnsNames") or []]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in inputs.get("ipAddresses") or []]
    return names


def _build(inputs: dict, subject: x509.Name, issuer: x509.Name, public_key, sans, signing_key) -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    hours = int(inputs.get("validityPeriodHours") or 24)
    is_ca = bool(inputs.get("isCaCertificate"))
    uses = set(inputs.get("allowedUses") or [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=hours))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature="digital_signature" in uses,
            content_commitment=False,
            key_encipherment="key_encipherment" in uses,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign="cert_signing" in uses,
            crl_sign="crl_signing" in uses,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    eku = [oid for use, oid in (("server_auth", ExtendedKeyUsageOID.SERVER_AUTH), ("client_auth", ExtendedKeyUsageOID.CLIENT_AUTH)) if use in uses]
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    cert = builder.sign(signing_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _self_signed(inputs: dict) -> dict:
    key = _load_key(inputs["privateKeyPem"])
    name = _name(inputs.get("subject"))
    return {"certPem": _build(inputs, name, name, key.public_key(), _sans(inputs), key)}


def _cert_request(inputs: dict) -> dict:
    key = _load_key(inputs["privateKeyPem"])
    builder = x509.CertificateSigningRequestBuilder().subject_name(_name(inputs.get("subject")))
    sans = _sans(inputs)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    csr = builder.sign(key, hashes.SHA256())
    return {"certRequestPem": csr.public_bytes(serialization.Encoding.PEM).decode()}


def _locally_signed(inputs: dict) -> dict:
    csr = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
    ca_cert = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
    ca_key = _load_key(inputs["caPrivateKeyPem"])
    try:
        sans = list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        sans = []
    return {"certPem": _build(inputs, csr.subject, ca_cert.subject, csr.public_key(), sans, ca_key)}
