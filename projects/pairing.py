"""Pairing sites: export this site's bundle, import a partner's, test the connection.

A *site bundle* is a small JSON document an admin hands to the partner's admin out of
band (e-mail, USB stick): party id, name, proxy address and the certificates to pin.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import grpc
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from fedweb.audit.services import record
from fedweb.proxy import pki

from .models import Partner, PartnerCertificate

BUNDLE_FORMAT = "fedweb-site-bundle/1"


class PairingError(ValueError):
    pass


def export_bundle(proxy_address: str) -> dict:
    certificates = [c.certificate_pem for c in pki.published()]
    if not certificates:
        raise PairingError(_("This site has no certificate yet: create one first."))
    return {
        "format": BUNDLE_FORMAT,
        "party_id": settings.SITE_PARTY_ID,
        "name": settings.SITE_NAME,
        "proxy_address": proxy_address,
        "certificates": certificates,
    }


def _validate_bundle(bundle) -> tuple[str, str, str, list[pki.CertInfo]]:
    if isinstance(bundle, (str, bytes)):
        try:
            bundle = json.loads(bundle)
        except json.JSONDecodeError:
            raise PairingError(_("This is not a site bundle (it is not JSON).")) from None
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise PairingError(_("This is not a FedWeb site bundle."))
    party_id, name, address = bundle.get("party_id"), bundle.get("name"), bundle.get("proxy_address")
    if not all(isinstance(v, str) and v for v in (party_id, name, address)):
        raise PairingError(_("The bundle lacks the party id, name or proxy address."))
    if party_id == settings.SITE_PARTY_ID:
        raise PairingError(_("This is this site's own bundle."))
    if ":" not in address:
        raise PairingError(_("The proxy address must be host:port."))
    certs = []
    for pem in bundle.get("certificates") or []:
        try:
            info = pki.parse_certificate(pem)
        except pki.CertificateError as exc:
            raise PairingError(_("A certificate in the bundle cannot be used: %(why)s.") % {"why": exc}) from None
        if info.party_id != party_id:
            raise PairingError(_("A certificate in the bundle belongs to %(other)s, not to %(party)s.") % {"other": info.party_id, "party": party_id})
        if info.not_after <= timezone.now():
            raise PairingError(_("A certificate in the bundle expired on %(day)s.") % {"day": f"{info.not_after:%Y-%m-%d}"})
        certs.append(info)
    if not certs:
        raise PairingError(_("The bundle holds no certificate."))
    return party_id, name, address, certs


def import_bundle(bundle, *, by, request=None) -> Partner:
    """Pin a partner's certificates. Re-importing adds new certificates (rotation) and
    retires pins the partner no longer publishes."""
    party_id, name, address, certs = _validate_bundle(bundle)
    with transaction.atomic():
        partner, created = Partner.objects.get_or_create(
            party_id=party_id, defaults={"name": name, "proxy_address": address, "created_by": by}
        )
        if not created:
            partner.name, partner.proxy_address, partner.is_active = name, address, True
            partner.save(update_fields=["name", "proxy_address", "is_active"])
        published = {c.fingerprint for c in certs}
        for info in certs:
            clash = PartnerCertificate.objects.filter(fingerprint=info.fingerprint).exclude(partner=partner).exists()
            if clash:
                raise PairingError(_("This certificate is already pinned for another partner."))
            PartnerCertificate.objects.update_or_create(
                fingerprint=info.fingerprint,
                defaults={"partner": partner, "certificate_pem": info.pem, "not_before": info.not_before,
                          "not_after": info.not_after, "retired_at": None},
            )
        partner.certificates.filter(retired_at__isnull=True).exclude(fingerprint__in=published).update(retired_at=timezone.now())
        record(
            "partner_import", actor=by, request=request, obj=partner,
            details={"party_id": party_id, "address": address, "pins": sorted(published), "created": created},
        )
    return partner


@dataclass
class ConnectionReport:
    ok: bool
    summary: str
    steps: list[tuple[str, bool, str]]


def test_connection(partner: Partner, *, timeout: float = 5.0) -> ConnectionReport:
    """Ping the partner and explain, in plain words, what works and what does not."""
    from fedweb.proxy.client import PartnerUnusable, envelope_to, stub_for

    steps: list[tuple[str, bool, str]] = []
    try:
        pki.current()
        steps.append((_("This site has a valid certificate"), True, ""))
    except pki.CertificateError as exc:
        steps.append((_("This site has a valid certificate"), False, str(exc)))
        return ConnectionReport(False, str(exc), steps)
    try:
        channel, stub = stub_for(partner)
    except PartnerUnusable as exc:
        steps.append((_("A certificate of the partner is pinned"), False, str(exc)))
        return ConnectionReport(False, str(exc), steps)
    steps.append((_("A certificate of the partner is pinned"), True, ""))
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        answer = stub.Ping(envelope_to(partner, "ping"), timeout=timeout)
    except grpc.FutureTimeoutError:
        reason = _("No secure connection to %(address)s: the address is unreachable, or the TLS handshake failed "
                   "(the partner may not have pinned this site's current certificate, or its certificate differs from the one pinned here).") % {"address": partner.proxy_address}
        steps.append((_("The partner's proxy answers"), False, reason))
        return ConnectionReport(False, reason, steps)
    except grpc.RpcError as exc:
        reason = _explain(exc)
        steps.append((_("The partner's proxy answers"), True, ""))
        steps.append((_("The partner knows this site"), False, reason))
        return ConnectionReport(False, reason, steps)
    finally:
        channel.close()
    steps.append((_("The partner's proxy answers"), True, ""))
    steps.append((_("The partner knows this site"), True, ""))
    info = json.loads(answer.detail or "{}")
    if info.get("party_id") != partner.party_id:
        reason = _("The proxy at this address is %(other)s, not %(party)s.") % {"other": info.get("party_id"), "party": partner.party_id}
        steps.append((_("It is the right site"), False, reason))
        return ConnectionReport(False, reason, steps)
    return ConnectionReport(True, _("Connected to %(name)s.") % {"name": info.get("name", partner.name)}, steps)


def _explain(exc: grpc.RpcError) -> str:
    code, details = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        return _("The partner's proxy cannot be reached (%(details)s).") % {"details": details}
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return _("The partner does not accept this site's certificate: %(details)s. Send them this site's bundle.") % {"details": details}
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return _("The partner refused: %(details)s.") % {"details": details}
    return f"{code.name}: {details}"
