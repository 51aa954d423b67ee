"""This site's TLS identity: keys, self-signed certificates, fingerprints, rotation.

Sites do not share a certificate authority: each site signs its own certificate and
partners *pin* it (by SHA-256 fingerprint) when they import the site bundle. The
certificate names the party id as its common name and as a DNS name, and clients
check the server's name against the partner's party id, so a certificate of one
partner can never stand in for another's.

Keys are ECDSA P-256 (fast handshakes, supported everywhere gRPC runs). The private
key is written to ``<FEDWEB_DATA_DIR>/pki/<fingerprint>.key`` (mode 0600), never to
the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import SiteCertificate

DEFAULT_DAYS = 825


class CertificateError(ValueError):
    """A certificate that cannot be used, with the reason in plain words."""


@dataclass(frozen=True)
class CertInfo:
    party_id: str
    fingerprint: str
    not_before: dt.datetime
    not_after: dt.datetime
    pem: str


def fingerprint_der(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def fingerprint(pem: str | bytes) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
    return fingerprint_der(cert.public_bytes(serialization.Encoding.DER))


def parse_certificate(pem: str) -> CertInfo:
    """Read a partner's certificate; refuse anything we could not use safely."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise CertificateError("this is not a PEM certificate") from None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise CertificateError("the certificate does not name a party id")
    if not isinstance(cert.public_key(), ec.EllipticCurvePublicKey):
        raise CertificateError("the certificate's key is not an elliptic-curve key")
    return CertInfo(
        party_id=str(names[0].value),
        fingerprint=fingerprint_der(cert.public_bytes(serialization.Encoding.DER)),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
    )


def key_dir() -> Path:
    path = Path(settings.DATA_DIR) / "pki"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def key_path(fp: str) -> Path:
    return key_dir() / f"{fp}.key"


def make_self_signed(party_id: str, *, days: int = DEFAULT_DAYS, hostnames: list[str] | None = None,
                     not_before: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """(key PEM, certificate PEM) for ``party_id``; the cert is its own trust anchor."""
    key = ec.generate_private_key(ec.SECP256R1())
    serial = x509.random_serial_number()
    # The subject must differ between a site's certificates: during a rotation partners
    # trust two of them, and TLS libraries find a trust anchor by subject name.
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, party_id),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "FedWeb site"),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, f"{serial:x}"),
    ])
    start = not_before or (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    alt_names = [x509.DNSName(party_id)] + [x509.DNSName(h) for h in (hostnames or []) if h != party_id]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        # A self-signed certificate that partners pin as a trust anchor must be a CA for
        # TLS libraries to accept it; path length 0 stops it from signing anything else.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=False, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def create_site_certificate(*, days: int = DEFAULT_DAYS, make_current: bool | None = None,
                            not_before: dt.datetime | None = None) -> SiteCertificate:
    """A new identity for this site. The first one becomes current; later ones wait
    until partners pinned them (see ``activate``), so rotation needs no downtime."""
    key_pem, cert_pem = make_self_signed(settings.SITE_PARTY_ID, days=days, not_before=not_before)
    info = parse_certificate(cert_pem.decode())
    path = key_path(info.fingerprint)
    path.write_bytes(key_pem)
    path.chmod(0o600)
    with transaction.atomic():
        first = not SiteCertificate.objects.filter(is_current=True).exists()
        current = first if make_current is None else make_current
        if current:
            SiteCertificate.objects.filter(is_current=True).update(is_current=False)
        return SiteCertificate.objects.create(
            fingerprint=info.fingerprint, certificate_pem=info.pem, not_after=info.not_after, is_current=current
        )


def activate(fp: str) -> SiteCertificate:
    with transaction.atomic():
        cert = SiteCertificate.objects.select_for_update().get(fingerprint=fp, retired_at__isnull=True)
        if cert.not_after <= timezone.now():
            raise CertificateError("this certificate has expired")
        SiteCertificate.objects.filter(is_current=True).update(is_current=False)
        cert.is_current = True
        cert.save(update_fields=["is_current"])
    return cert


def retire(fp: str) -> None:
    cert = SiteCertificate.objects.get(fingerprint=fp)
    if cert.is_current:
        raise CertificateError("activate another certificate before retiring the current one")
    cert.retired_at = timezone.now()
    cert.save(update_fields=["retired_at"])


def current() -> SiteCertificate:
    cert = SiteCertificate.objects.filter(is_current=True).first()
    if cert is None:
        raise CertificateError("this site has no certificate yet: run `manage.py site_identity create`")
    if cert.not_after <= timezone.now():
        raise CertificateError(f"this site's certificate expired on {cert.not_after:%Y-%m-%d}: rotate it")
    return cert


def current_key_and_cert() -> tuple[bytes, bytes]:
    cert = current()
    return key_path(cert.fingerprint).read_bytes(), cert.certificate_pem.encode()


def published() -> list[SiteCertificate]:
    """Certificates partners should pin: every unexpired, unretired one."""
    return list(SiteCertificate.objects.filter(retired_at__isnull=True, not_after__gt=timezone.now()))
