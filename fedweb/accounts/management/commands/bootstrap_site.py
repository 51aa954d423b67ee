"""``manage.py bootstrap_site``: a fresh site's admin account, API token and certificate.

Used by the demo and the two-site tests; idempotent.
"""

import secrets
from pathlib import Path

from django.contrib.auth import get_user_model

from fedweb.api.tokens import create_token
from fedweb.proxy import pki
from fedweb.proxy.models import SiteCertificate
from fedweb.sitedata import SiteCommand


class Command(SiteCommand):
    help = "Create the admin account (password and API token written to files), and the site certificate."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password-file", required=True)
        parser.add_argument("--token-file")

    def handle(self, *args, username, password_file, token_file, **options):
        User = get_user_model()
        password_path = Path(password_file)
        user = User.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            user = User.objects.create_superuser(username, "", password, role="admin")
            password_path.write_text(password, encoding="utf-8")
            password_path.chmod(0o600)
        if token_file and not Path(token_file).exists():
            _row, token = create_token(user=user, name="bootstrap", days=366)
            Path(token_file).write_text(token, encoding="utf-8")
            Path(token_file).chmod(0o600)
        if not SiteCertificate.objects.filter(is_current=True).exists():
            pki.create_site_certificate()
        self.stdout.write(f"site ready: admin {username!r}")
