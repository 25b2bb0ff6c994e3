"""tls stand-in: keys, a CA, a CSR and a locally signed certificate that verifies, over gRPC."""

import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pulumi.runtime.proto import provider_pb2

from conftest import urn
from standin.base import UNKNOWN

PLUGIN = "tls"
KEY = "tls:index/privateKey:PrivateKey"
SELF = "tls:index/selfSignedCert:SelfSignedCert"
CSR = "tls:index/certRequest:CertRequest"
LOCAL = "tls:index/locallySignedCert:LocallySignedCert"


def make_key(plugin, name, **kw):
    u = urn(KEY, name)
    inputs, failures = plugin.check(u, kw)
    assert not failures
    return plugin.create(u, inputs)


@pytest.mark.parametrize("kw,marker", [
    ({"algorithm": "ECDSA", "ecdsaCurve": "P256"}, "BEGIN EC PRIVATE KEY"),
    ({"algorithm": "RSA", "rsaBits": 2048}, "BEGIN RSA PRIVATE KEY"),
    ({"algorithm": "ED25519"}, "BEGIN PRIVATE KEY"),
])
def test_private_key(plugin, kw, marker):
    rid, out, sec = make_key(plugin, "k", **kw)
    assert marker in out["privateKeyPem"]
    assert "BEGIN PRIVATE KEY" in out["privateKeyPemPkcs8"]
    assert out["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY")
    assert out["publicKeyOpenssh"].endswith("\n") and out["publicKeyFingerprintSha256"].startswith("SHA256:")
    assert {"privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"} <= sec
    assert "publicKeyPem" not in sec
    assert len(rid) == 40


def test_private_key_defaults_and_replacement(plugin):
    u = urn(KEY, "d")
    inputs, _ = plugin.check(u, {"algorithm": "ECDSA"})
    assert inputs["ecdsaCurve"] == "P224" and inputs["rsaBits"] == 2048
    rid, out, _ = plugin.create(u, inputs)
    assert out["privateKeyOpenssh"] == ""  # OpenSSH has no P-224
    assert plugin.diff(u, rid, out, inputs).changes == provider_pb2.DiffResponse.DIFF_NONE
    news, _ = plugin.check(u, {"algorithm": "ECDSA", "ecdsaCurve": "P384"})
    assert list(plugin.diff(u, rid, out, news).replaces) == ["ecdsaCurve"]
    _, failures = plugin.check(u, {"algorithm": "DSA"})
    assert failures[0].property == "algorithm"


def test_ca_csr_and_locally_signed_cert(plugin):
    _, ca_key, _ = make_key(plugin, "ca-key", algorithm="ECDSA", ecdsaCurve="P256")
    u = urn(SELF, "ca")
    inputs, failures = plugin.check(u, {
        "privateKeyPem": ca_key["privateKeyPem"], "isCaCertificate": True, "validityPeriodHours": 48,
        "subject": {"commonName": "test CA", "organization": "bgp4mesh"},
        "allowedUses": ["cert_signing", "crl_signing", "digital_signature"],
    }, secrets={"privateKeyPem"})
    assert not failures
    ca_id, ca, ca_sec = plugin.create(u, inputs, secrets={"privateKeyPem"})
    assert "privateKeyPem" in ca_sec and "certPem" not in ca_sec
    assert ca["keyAlgorithm"] == "ECDSA" and ca["readyForRenewal"] is False
    ca_cert = x509.load_pem_x509_certificate(ca["certPem"].encode())
    assert str(ca_cert.serial_number) == ca_id
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca_cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "test CA"
    assert ca_cert.not_valid_after_utc - ca_cert.not_valid_before_utc == dt.timedelta(hours=48)

    _, srv_key, _ = make_key(plugin, "srv-key", algorithm="ECDSA", ecdsaCurve="P256")
    cu = urn(CSR, "csr")
    cinputs, failures = plugin.check(cu, {
        "privateKeyPem": srv_key["privateKeyPem"], "subject": {"commonName": "nm.example"},
        "dnsNames": ["nm.example", "broker.nm.example"], "ipAddresses": ["172.30.5.4"],
    })
    assert not failures
    _, csr, _ = plugin.create(cu, cinputs)
    assert "CERTIFICATE REQUEST" in csr["certRequestPem"] and csr["keyAlgorithm"] == "ECDSA"

    lu = urn(LOCAL, "cert")
    linputs, failures = plugin.check(lu, {
        "certRequestPem": csr["certRequestPem"], "caPrivateKeyPem": ca_key["privateKeyPem"],
        "caCertPem": ca["certPem"], "validityPeriodHours": 24,
        "allowedUses": ["digital_signature", "key_encipherment", "server_auth"],
    })
    assert not failures
    rid, leaf, sec = plugin.create(lu, linputs, secrets={"caPrivateKeyPem"})
    assert "caPrivateKeyPem" in sec and leaf["caKeyAlgorithm"] == "ECDSA"
    cert = x509.load_pem_x509_certificate(leaf["certPem"].encode())
    cert.verify_directly_issued_by(ca_cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["nm.example", "broker.nm.example"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("172.30.5.4")]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    pub = serialization.load_pem_public_key(srv_key["publicKeyPem"].encode())
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    assert cert.public_key().public_numbers() == pub.public_numbers()

    # earlyRenewalHours updates in place, anything else replaces
    d = plugin.diff(lu, rid, leaf, dict(linputs, earlyRenewalHours=1))
    assert d.changes == provider_pb2.DiffResponse.DIFF_SOME and not d.replaces
    d = plugin.diff(lu, rid, leaf, dict(linputs, validityPeriodHours=25))
    assert list(d.replaces) == ["validityPeriodHours"]
    # a certificate inside its early-renewal window is replaced
    d = plugin.diff(lu, rid, dict(leaf, earlyRenewalHours=48), dict(linputs, earlyRenewalHours=48))
    assert "readyForRenewal" in d.replaces


def test_preview_with_unknown_key(plugin):
    u = urn(SELF, "pv")
    inputs, failures = plugin.check(u, {"privateKeyPem": UNKNOWN, "validityPeriodHours": 1,
                                        "allowedUses": ["server_auth"], "subject": {"commonName": "x"}})
    assert not failures
    _, out, _ = plugin.create(u, inputs, preview=True)
    assert out["certPem"] is UNKNOWN


def test_bad_usage_fails_check(plugin):
    _, failures = plugin.check(urn(SELF, "bad"), {"privateKeyPem": "x", "validityPeriodHours": 1,
                                                  "allowedUses": ["world_domination"]})
    assert failures and failures[0].property == "allowedUses"
