"""A private certificate authority made for one test: server and client certificates on disk.

Enterprise Artifactory sits behind a certificate from a private CA and often asks for a client
certificate; the tests make such a CA here (``cryptography``), so the hook, syft and the
docker-scout stand-in are shown to trust exactly what the connection names. A second CA
("stranger") signs a client certificate the servers must refuse.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TestPki", "make_pki"]

_VALIDITY = datetime.timedelta(days=2)


@dataclass(frozen=True)
class TestPki:
    """Paths of one test's certificates (PEM). ``server_*`` name 127.0.0.1 and localhost."""

    __test__ = False  # not a pytest test class

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_combined: Path  # certificate and key in one file (the extra 'cert' as a single path)
    stranger_cert: Path  # a client certificate from another CA
    stranger_key: Path

    def server_context(self, *, require_client_cert: bool = False) -> ssl.SSLContext:
        """A server-side context with this CA's server certificate, optionally asking for a client's."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert, self.server_key)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.ca)
        return context


def make_pki(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TestPki:
    """Write a CA, a server certificate for ``hosts`` and client certificates below ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _authority("scout test CA")
    stranger_ca_key, stranger_ca = _authority("stranger CA")
    server_key, server_cert = _leaf(
        "scout test server", ca_key, ca_cert, hosts, ExtendedKeyUsageOID.SERVER_AUTH
    )
    client_key, client_cert = _leaf("scout test client", ca_key, ca_cert, (), ExtendedKeyUsageOID.CLIENT_AUTH)
    stranger_key, stranger_cert = _leaf(
        "stranger client", stranger_ca_key, stranger_ca, (), ExtendedKeyUsageOID.CLIENT_AUTH
    )
    paths = {
        "ca": _write(directory / "ca.pem", _pem(ca_cert)),
        "server_cert": _write(directory / "server.pem", _pem(server_cert) + _pem(ca_cert)),
        "server_key": _write(directory / "server.key", _key(server_key)),
        "client_cert": _write(directory / "client.pem", _pem(client_cert)),
        "client_key": _write(directory / "client.key", _key(client_key)),
        "client_combined": _write(directory / "client-combined.pem", _pem(client_cert) + _key(client_key)),
        "stranger_cert": _write(directory / "stranger.pem", _pem(stranger_cert)),
        "stranger_key": _write(directory / "stranger.key", _key(stranger_key)),
    }
    return TestPki(**paths)


def _authority(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _leaf(
    name: str,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    hosts: tuple[str, ...],
    usage: x509.ObjectIdentifier,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path
