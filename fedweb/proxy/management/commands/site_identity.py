"""``manage.py site_identity``: this site's certificates (create, rotate, activate, retire)."""

from django.core.management.base import CommandError

from fedweb.proxy import pki
from fedweb.proxy.models import SiteCertificate
from fedweb.sitedata import SiteCommand


class Command(SiteCommand):
    help = (
        "Manage this site's TLS identity. Rotation without downtime: `rotate` creates the next "
        "certificate, partners import the new bundle (which holds both), then `activate` it and "
        "later `retire` the old one."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["show", "create", "rotate", "activate", "retire"])
        parser.add_argument("fingerprint", nargs="?")
        parser.add_argument("--days", type=int, default=pki.DEFAULT_DAYS)

    def handle(self, *args, action, fingerprint, days, **options):
        try:
            if action == "create":
                if SiteCertificate.objects.filter(is_current=True).exists():
                    self.stdout.write("this site already has a certificate (use rotate for a new one)")
                else:
                    cert = pki.create_site_certificate(days=days)
                    self.stdout.write(f"created and activated {cert.fingerprint}")
            elif action == "rotate":
                cert = pki.create_site_certificate(days=days, make_current=False)
                self.stdout.write(f"created {cert.fingerprint} (export the bundle for partners, then activate it)")
            elif action in ("activate", "retire"):
                if not fingerprint:
                    raise CommandError("name the certificate's fingerprint")
                getattr(pki, action)(fingerprint)
                self.stdout.write(f"{action}d {fingerprint}")
        except (pki.CertificateError, SiteCertificate.DoesNotExist) as exc:
            raise CommandError(str(exc) or "no such certificate") from None
        for cert in SiteCertificate.objects.all():
            state = "current" if cert.is_current else ("retired" if cert.retired_at else "published")
            self.stdout.write(f"  {cert.fingerprint}  {state:9}  valid until {cert.not_after:%Y-%m-%d}")
