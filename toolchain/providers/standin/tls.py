"""Stand-in for pulumi-tls 5.6.2 (Terraform tls provider based), using python `cryptography`:

  tls:index/privateKey:PrivateKey               algorithm RSA|ECDSA|ED25519, rsaBits (2048),
                                                ecdsaCurve (P224); every input forces replacement;
                                                privateKeyPem/-Pkcs8/-Openssh are secret
  tls:index/selfSignedCert:SelfSignedCert       every input but earlyRenewalHours forces replacement;
  tls:index/certRequest:CertRequest             a certificate due for renewal (readyForRenewal)
  tls:index/locallySignedCert:LocallySignedCert is replaced by the next update

PEM formats as the real provider: RSA keys PKCS#1, ECDSA keys SEC1, ED25519 PKCS#8; ids are the
SHA-1 of the public key PEM (keys), of the CSR PEM (requests), the decimal serial (certificates).
Not implemented: the write-only inputs (privateKeyPemWo*), tls:index/getCertificate,
tls:index/getPublicKey, proxy configuration.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .base import UNKNOWN, InputError, Provider, ProviderError, Resource, has_unknown

VERSION = "5.6.2"

CURVES = {"P224": ec.SECP224R1, "P256": ec.SECP256R1, "P384": ec.SECP384R1, "P521": ec.SECP521R1}

KEY_USAGES = {
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
    "key_agreement", "cert_signing", "crl_signing", "encipher_only", "decipher_only",
}
EXT_USAGES = {
    "any_extended": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec_end_system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec_tunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec_user": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft_server_gated_crypto": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape_server_gated_crypto": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
    "microsoft_commercial_code_signing": x509.ObjectIdentifier("1.3.6.1.4.1.311.2.1.22"),
    "microsoft_kernel_code_signing": x509.ObjectIdentifier("1.3.6.1.4.1.311.61.1.1"),
}

SUBJECT_FIELDS = {
    "commonName": NameOID.COMMON_NAME,
    "organization": NameOID.ORGANIZATION_NAME,
    "organizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "streetAddresses": NameOID.STREET_ADDRESS,
    "locality": NameOID.LOCALITY_NAME,
    "province": NameOID.STATE_OR_PROVINCE_NAME,
    "country": NameOID.COUNTRY_NAME,
    "postalCode": NameOID.POSTAL_CODE,
    "serialNumber": NameOID.SERIAL_NUMBER,
    "emailAddress": NameOID.EMAIL_ADDRESS,
}


def sha1_hex(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(s: str) -> dt.datetime:
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def load_key(pem: str, prop: str):
    try:
        return serialization.load_pem_private_key(pem.encode(), password=None)
    except Exception as e:  # noqa: BLE001
        raise InputError(prop, f"failed to decode the private key PEM: {e}") from e


def key_algorithm(key) -> str:
    if isinstance(key, rsa.RSAPrivateKey) or isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePrivateKey) or isinstance(key, ec.EllipticCurvePublicKey):
        return "ECDSA"
    if isinstance(key, ed25519.Ed25519PrivateKey) or isinstance(key, ed25519.Ed25519PublicKey):
        return "ED25519"
    raise ProviderError(f"unsupported key type {type(key).__name__}")


def sign_hash(key):
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = key.curve.key_size
        return hashes.SHA512() if size > 384 else hashes.SHA384() if size > 256 else hashes.SHA256()
    return hashes.SHA256()


def subject_name(subject) -> x509.Name:
    if isinstance(subject, list):  # tolerate the Terraform list-of-one shape
        subject = subject[0] if subject else {}
    attrs = []
    for key, oid in SUBJECT_FIELDS.items():
        v = (subject or {}).get(key)
        if v is None or v == "" or v == []:
            continue
        for item in (v if isinstance(v, list) else [v]):
            attrs.append(x509.NameAttribute(oid, str(item)))
    return x509.Name(attrs)


def sans(inputs: dict, prefix: str = "") -> list:
    out = []
    for name in inputs.get("dnsNames") or []:
        out.append(x509.DNSName(name))
    for ip in inputs.get("ipAddresses") or []:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError as e:
            raise InputError("ipAddresses", f"invalid IP address {ip!r}") from e
    for uri in inputs.get("uris") or []:
        out.append(x509.UniformResourceIdentifier(uri))
    return out


def check_uses(uses) -> None:
    if uses is UNKNOWN or uses is None:
        return
    for u in uses:
        if u is UNKNOWN:
            continue
        if u not in KEY_USAGES and u not in EXT_USAGES:
            raise InputError("allowedUses", f"unknown usage {u!r}")


class PrivateKey(Resource):
    token = "tls:index/privateKey:PrivateKey"
    inputs = {"algorithm": None, "ecdsaCurve": "P224", "rsaBits": 2048}
    replace_on = "*"
    secret_outputs = frozenset({"privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"})
    computed = ("privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh", "publicKeyPem",
                "publicKeyOpenssh", "publicKeyFingerprintMd5", "publicKeyFingerprintSha256")

    def check(self, urn, news, olds, seed):
        out = super().check(urn, news, olds, seed)
        alg = out.get("algorithm")
        if alg is None:
            raise InputError("algorithm", "missing required property 'algorithm'")
        if alg is not UNKNOWN and alg not in ("RSA", "ECDSA", "ED25519"):
            raise InputError("algorithm", f"expected one of RSA, ECDSA, ED25519, got {alg!r}")
        curve = out.get("ecdsaCurve")
        if curve is not UNKNOWN and curve not in CURVES:
            raise InputError("ecdsaCurve", f"expected one of {', '.join(CURVES)}, got {curve!r}")
        return out

    def create(self, urn, inputs, preview):
        outs = dict(inputs)
        if preview or has_unknown(inputs):
            outs.update({k: UNKNOWN for k in self.computed})
            return "", outs
        alg = inputs["algorithm"]
        if alg == "RSA":
            key = rsa.generate_private_key(public_exponent=65537, key_size=int(inputs["rsaBits"]))
            pem_format = serialization.PrivateFormat.TraditionalOpenSSL
        elif alg == "ECDSA":
            key = ec.generate_private_key(CURVES[inputs["ecdsaCurve"]]())
            pem_format = serialization.PrivateFormat.TraditionalOpenSSL
        else:
            key = ed25519.Ed25519PrivateKey.generate()
            pem_format = serialization.PrivateFormat.PKCS8
        enc = serialization.NoEncryption()
        pem = key.private_bytes(serialization.Encoding.PEM, pem_format, enc).decode()
        pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc).decode()
        pub = key.public_key()
        pub_pem = pub.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        ssh_priv = ssh_pub = md5 = sha256 = ""
        if not (alg == "ECDSA" and inputs["ecdsaCurve"] == "P224"):  # OpenSSH has no P-224
            ssh_priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                         enc).decode()
            ssh_pub_raw = pub.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            ssh_pub = ssh_pub_raw.decode() + "\n"
            blob = base64.b64decode(ssh_pub_raw.split()[1])
            md5 = ":".join(f"{b:02x}" for b in hashlib.md5(blob).digest())
            sha256 = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        outs.update(privateKeyPem=pem, privateKeyPemPkcs8=pkcs8, privateKeyOpenssh=ssh_priv,
                    publicKeyPem=pub_pem, publicKeyOpenssh=ssh_pub,
                    publicKeyFingerprintMd5=md5, publicKeyFingerprintSha256=sha256)
        return sha1_hex(pub_pem), outs


class CertRequest(Resource):
    token = "tls:index/certRequest:CertRequest"
    inputs = {"privateKeyPem": None, "subject": None, "dnsNames": None, "ipAddresses": None, "uris": None,
              "privateKeyPemWo": None, "privateKeyPemWoVersion": None}
    replace_on = "*"
    secret_outputs = frozenset({"privateKeyPem"})
    computed = ("certRequestPem", "keyAlgorithm")

    def check(self, urn, news, olds, seed):
        out = super().check(urn, news, olds, seed)
        if out.get("privateKeyPemWo") is not None:
            raise InputError("privateKeyPemWo", "write-only inputs are not supported by the stand-in")
        if out.get("privateKeyPem") is None:
            raise InputError("privateKeyPem", "missing required property 'privateKeyPem'")
        return out

    def create(self, urn, inputs, preview):
        outs = {k: v for k, v in inputs.items() if v is not None}
        if preview or has_unknown(inputs):
            outs.update({k: UNKNOWN for k in self.computed})
            return "", outs
        key = load_key(inputs["privateKeyPem"], "privateKeyPem")
        builder = x509.CertificateSigningRequestBuilder().subject_name(subject_name(inputs.get("subject")))
        names = sans(inputs)
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        csr = builder.sign(key, sign_hash(key))
        pem = csr.public_bytes(serialization.Encoding.PEM).decode()
        outs.update(certRequestPem=pem, keyAlgorithm=key_algorithm(key))
        return sha1_hex(pem), outs


class _Cert(Resource):
    """Shared by SelfSignedCert and LocallySignedCert."""

    replace_on = "*"
    computed = ("certPem", "validityStartTime", "validityEndTime", "readyForRenewal")

    def replaces(self, key, old_inputs, news):
        return key != "earlyRenewalHours"

    def planned(self, inputs):
        """A preview (or unknown inputs): the known inputs, every computed output unknown."""
        outs = {k: v for k, v in inputs.items() if v is not None}
        outs.update({k: UNKNOWN for k in self.computed})
        return "", outs

    def check(self, urn, news, olds, seed):
        out = super().check(urn, news, olds, seed)
        for k in ("validityPeriodHours", "allowedUses"):
            if out.get(k) is None:
                raise InputError(k, f"missing required property '{k}'")
        for k, v in list(out.items()):
            if k.endswith("Wo") and v is not None:
                raise InputError(k, "write-only inputs are not supported by the stand-in")
        check_uses(out.get("allowedUses"))
        return out

    def due(self, state: dict) -> bool:
        end = state.get("validityEndTime")
        if not end or end is UNKNOWN:
            return False
        early = dt.timedelta(hours=int(state.get("earlyRenewalHours") or 0))
        return now() >= parse_rfc3339(end) - early

    def force_replace(self, olds: dict) -> list:
        return ["readyForRenewal"] if self.due(olds) else []

    def build(self, inputs: dict, subject: x509.Name, public_key, issuer: x509.Name, signing_key,
              issuer_ski: bytes | None, extra_sans: list) -> tuple[str, dict]:
        start = now()
        end = start + dt.timedelta(hours=int(inputs["validityPeriodHours"]))
        serial = secrets.randbits(128)
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
             .public_key(public_key).serial_number(serial).not_valid_before(start).not_valid_after(end))
        uses = set(inputs.get("allowedUses") or [])
        is_ca = bool(inputs.get("isCaCertificate"))
        ku = {u: (u in uses) for u in KEY_USAGES}
        if any(ku.values()):
            b = b.add_extension(x509.KeyUsage(
                digital_signature=ku["digital_signature"], content_commitment=ku["content_commitment"],
                key_encipherment=ku["key_encipherment"], data_encipherment=ku["data_encipherment"],
                key_agreement=ku["key_agreement"], key_cert_sign=ku["cert_signing"], crl_sign=ku["crl_signing"],
                encipher_only=ku["encipher_only"] and ku["key_agreement"],
                decipher_only=ku["decipher_only"] and ku["key_agreement"]), critical=True)
        eku = [EXT_USAGES[u] for u in sorted(uses) if u in EXT_USAGES]
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        path_len = None
        if is_ca and inputs.get("maxPathLength") not in (None, 0, -1):
            path_len = int(inputs["maxPathLength"])
        b = b.add_extension(x509.BasicConstraints(ca=is_ca, path_length=path_len), critical=True)
        ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
        if inputs.get("setSubjectKeyId") or is_ca:
            b = b.add_extension(ski, critical=False)
        if issuer_ski is not None:
            b = b.add_extension(x509.AuthorityKeyIdentifier(issuer_ski, None, None), critical=False)
        if extra_sans:
            b = b.add_extension(x509.SubjectAlternativeName(extra_sans), critical=False)
        cert = b.sign(signing_key, sign_hash(signing_key))
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        outs = {k: v for k, v in inputs.items() if v is not None}
        outs.update(certPem=pem, validityStartTime=rfc3339(start), validityEndTime=rfc3339(end))
        outs["readyForRenewal"] = self.due(outs)
        return str(serial), outs

    def update(self, urn, rid, olds, news, preview):
        outs = dict(olds)
        outs.update({k: v for k, v in news.items() if v is not None})
        outs["readyForRenewal"] = self.due(outs)
        return outs

    def read(self, urn, rid, state, inputs):
        state = dict(state)
        if state.get("validityEndTime"):
            state["readyForRenewal"] = self.due(state)
        return rid, state, inputs


class SelfSignedCert(_Cert):
    token = "tls:index/selfSignedCert:SelfSignedCert"
    inputs = {"privateKeyPem": None, "subject": None, "validityPeriodHours": None, "allowedUses": None,
              "dnsNames": None, "ipAddresses": None, "uris": None, "earlyRenewalHours": 0,
              "isCaCertificate": False, "setSubjectKeyId": False, "setAuthorityKeyId": False,
              "maxPathLength": 0, "privateKeyPemWo": None, "privateKeyPemWoVersion": None}
    secret_outputs = frozenset({"privateKeyPem"})
    computed = _Cert.computed + ("keyAlgorithm",)

    def check(self, urn, news, olds, seed):
        out = super().check(urn, news, olds, seed)
        if out.get("privateKeyPem") is None:
            raise InputError("privateKeyPem", "missing required property 'privateKeyPem'")
        return out

    def create(self, urn, inputs, preview):
        if preview or has_unknown(inputs):
            return self.planned(inputs)
        key = load_key(inputs["privateKeyPem"], "privateKeyPem")
        subject = subject_name(inputs.get("subject"))
        ski = None
        if inputs.get("setAuthorityKeyId"):
            ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest
        rid, outs = self.build(inputs, subject, key.public_key(), subject, key, ski, sans(inputs))
        outs["keyAlgorithm"] = key_algorithm(key)
        return rid, outs


class LocallySignedCert(_Cert):
    token = "tls:index/locallySignedCert:LocallySignedCert"
    inputs = {"certRequestPem": None, "caPrivateKeyPem": None, "caCertPem": None, "validityPeriodHours": None,
              "allowedUses": None, "earlyRenewalHours": 0, "isCaCertificate": False, "setSubjectKeyId": False,
              "maxPathLength": 0, "caPrivateKeyPemWo": None, "caPrivateKeyPemWoVersion": None}
    secret_outputs = frozenset({"caPrivateKeyPem"})
    computed = _Cert.computed + ("caKeyAlgorithm",)

    def check(self, urn, news, olds, seed):
        out = super().check(urn, news, olds, seed)
        for k in ("certRequestPem", "caPrivateKeyPem", "caCertPem"):
            if out.get(k) is None:
                raise InputError(k, f"missing required property '{k}'")
        return out

    def create(self, urn, inputs, preview):
        if preview or has_unknown(inputs):
            return self.planned(inputs)
        try:
            csr = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
        except ValueError as e:
            raise InputError("certRequestPem", f"failed to decode the certificate request: {e}") from e
        if not csr.is_signature_valid:
            raise InputError("certRequestPem", "the certificate request's signature is invalid")
        try:
            ca = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
        except ValueError as e:
            raise InputError("caCertPem", f"failed to decode the CA certificate: {e}") from e
        ca_key = load_key(inputs["caPrivateKeyPem"], "caPrivateKeyPem")
        try:
            ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        except x509.ExtensionNotFound:
            ca_ski = None
        try:
            names = list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
        except x509.ExtensionNotFound:
            names = []
        rid, outs = self.build(inputs, csr.subject, csr.public_key(), ca.subject, ca_key, ca_ski, names)
        outs["caKeyAlgorithm"] = key_algorithm(ca_key)
        return rid, outs


class TlsProvider(Provider):
    name = "tls"
    version = VERSION
    resources = (PrivateKey, CertRequest, SelfSignedCert, LocallySignedCert)
