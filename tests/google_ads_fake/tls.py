"""A self-signed certificate that the fake servers present and the real client trusts.

grpc reads ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` once per process, when the first TLS
channel is made; so the certificate is made once per process too, before any channel,
and a child process inherits the variable (and trusts the same fake). Roots the variable
already named stay trusted: the new bundle is those plus the test certificate.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOTS_VARIABLE = "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"


@dataclass(frozen=True)
class TlsMaterial:
    cert_pem: bytes
    key_pem: bytes
    roots_file: Path  # what grpc trusts: the roots it trusted before, and cert_pem


_lock = threading.Lock()
_material: TlsMaterial | None = None


def trusted_test_certificate() -> TlsMaterial:
    """The process's test certificate (SAN localhost, 127.0.0.1), trusted by grpc."""
    global _material  # one per process: grpc reads its roots once
    with _lock:
        if _material is None:
            _material = _make()
        return _material


def _make() -> TlsMaterial:
    inherited = Path(os.environ[ROOTS_VARIABLE]) if os.environ.get(ROOTS_VARIABLE) else None
    if inherited is not None and (inherited.parent / "key.pem").exists():
        # A child of a process that made one: serve the certificate it already trusts.
        return TlsMaterial(
            (inherited.parent / "cert.pem").read_bytes(),
            (inherited.parent / "key.pem").read_bytes(),
            inherited,
        )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "convsync test localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    directory = Path(tempfile.mkdtemp(prefix="convsync-google-ads-tls-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    (directory / "cert.pem").write_bytes(cert_pem)
    (directory / "key.pem").write_bytes(key_pem)
    bundle = directory / "roots.pem"
    previous = inherited.read_bytes() if inherited is not None and inherited.is_file() else b""
    bundle.write_bytes(previous + (b"\n" if previous else b"") + cert_pem)
    os.environ[ROOTS_VARIABLE] = str(bundle)
    return TlsMaterial(cert_pem, key_pem, bundle)
