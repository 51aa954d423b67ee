"""``manage.py verify_audit``: exit 1 if any audit row was changed or deleted."""

from django.core.management.base import CommandError

from fedweb.audit.services import verify_chain
from fedweb.sitedata import SiteCommand


class Command(SiteCommand):
    help = "Check the audit trail's hash chain; fails if any row was changed or deleted."

    def handle(self, *args, **options):
        result = verify_chain()
        if not result.ok:
            for problem in result.problems:
                self.stderr.write(problem)
            raise CommandError(f"audit trail is NOT intact ({len(result.problems)} problem(s) in {result.checked} rows)")
        self.stdout.write(self.style.SUCCESS(f"audit trail intact: {result.checked} rows verified"))
