"""``manage.py site_bundle export|import|test``: pair this site with a partner from the shell."""

import json
import sys

from django.core.management.base import CommandError

from fedweb.sitedata import SiteCommand
from projects.models import Partner
from projects.pairing import PairingError, export_bundle, import_bundle, test_connection


class Command(SiteCommand):
    help = "Export this site's bundle, import a partner's bundle, or test the connection to a partner."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["export", "import", "test"])
        parser.add_argument("target", nargs="?", help="import: bundle file ('-' = stdin); test: partner party id")
        parser.add_argument("--proxy-address", help="export: host:port partners use to reach this site's proxy")

    def handle(self, *args, action, target, proxy_address, **options):
        try:
            if action == "export":
                if not proxy_address:
                    raise CommandError("--proxy-address is required")
                self.stdout.write(json.dumps(export_bundle(proxy_address), indent=2))
            elif action == "import":
                if not target:
                    raise CommandError("name the bundle file")
                text = sys.stdin.read() if target == "-" else open(target, encoding="utf-8").read()
                partner = import_bundle(text, by=None)
                self.stdout.write(f"paired with {partner.name} ({partner.party_id}) at {partner.proxy_address}")
            else:
                partner = Partner.objects.filter(party_id=target).first()
                if partner is None:
                    raise CommandError(f"no partner {target!r}")
                report = test_connection(partner)
                for step, ok, why in report.steps:
                    self.stdout.write(f"  [{'ok' if ok else 'NO'}] {step}{': ' + why if why else ''}")
                if not report.ok:
                    raise CommandError(report.summary)
                self.stdout.write(report.summary)
        except PairingError as exc:
            raise CommandError(str(exc)) from None
