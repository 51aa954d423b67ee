"""``manage.py import_model <file> --project <id>``: check a model bundle and make its half this site's model."""

import sys
import uuid
from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from fedweb.api.errors import ServiceError
from fedweb.sitedata import SiteCommand
from jobs import bundles
from projects.models import Project

from ._bundle_admin import acting_admin


class Command(SiteCommand):
    help = "Import a model bundle: signature, trusted signer, role and prediction-consistency check first."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the bundle file ('-' = standard input)")
        parser.add_argument("--project", required=True, help="the project's id")
        parser.add_argument("--signer-fingerprint", default="",
                            help="the signing certificate's fingerprint, when it is not this site's or a partner's")
        parser.add_argument("--as", dest="as_user", help="the site admin importing it (default: the only one)")

    def handle(self, *args, file, project, signer_fingerprint, as_user, **options):
        user = acting_admin(as_user)
        try:
            target = Project.objects.filter(pk=uuid.UUID(project)).select_related("partner").first()
        except ValueError:
            target = None
        if target is None:
            raise CommandError(_("No project %(id)s on this site.") % {"id": project})
        try:
            if file == "-":
                data = sys.stdin.buffer.read(bundles.MAX_BUNDLE_BYTES + 1)
            else:
                with Path(file).open("rb") as handle:
                    data = handle.read(bundles.MAX_BUNDLE_BYTES + 1)
        except OSError as exc:
            raise CommandError(_("The file %(file)s cannot be read: %(reason)s")
                               % {"file": file, "reason": exc.strerror or exc}) from None
        try:
            model = bundles.import_bundle(data, user=user, project=target, signer_fingerprint=signer_fingerprint)
        except (ServiceError, PermissionDenied) as exc:
            raise CommandError(str(getattr(exc, "message", exc))) from None
        if getattr(model, "already_here", False):
            self.stdout.write(_("%(model)s is already here (model %(id)s): nothing changed.")
                              % {"model": model.label, "id": model.pk})
        else:
            self.stdout.write(_("Imported %(model)s (%(role)s's half, model %(id)s) into %(project)s; the "
                                "prediction-consistency check passed on %(rows)d rows.")
                              % {"model": model.label, "role": model.role, "id": model.pk, "project": target.name,
                                 "rows": model.origin_details.get("sample_rows", 0)})
