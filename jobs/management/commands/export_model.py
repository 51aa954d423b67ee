"""``manage.py export_model <model id> <file>``: this site's half of a model as a signed bundle."""

import uuid
from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from fedweb.api.errors import ServiceError
from fedweb.proxy import pki
from fedweb.sitedata import SiteCommand
from jobs import bundles
from jobs.models import Model

from ._bundle_admin import acting_admin


class Command(SiteCommand):
    help = "Export this site's half of a model as a signed bundle file."

    def add_arguments(self, parser):
        parser.add_argument("model_id", help="the model's id")
        parser.add_argument("file", help="where to write the bundle ('-' = standard output)")
        parser.add_argument("--as", dest="as_user", help="the site admin exporting it (default: the only one)")

    def handle(self, *args, model_id, file, as_user, **options):
        user = acting_admin(as_user)
        try:
            model = Model.objects.select_related("project").filter(pk=uuid.UUID(model_id)).first()
        except ValueError:
            model = None
        if model is None:
            raise CommandError(_("No model %(id)s on this site.") % {"id": model_id})
        try:
            data = bundles.export_bundle(user=user, model=model)
            if file == "-":
                self.stdout.write(data.decode("utf-8"))
                return
            Path(file).write_bytes(data)
        except (ServiceError, PermissionDenied) as exc:
            raise CommandError(str(getattr(exc, "message", exc))) from None
        except OSError as exc:
            raise CommandError(_("The bundle cannot be written to %(file)s: %(reason)s")
                               % {"file": file, "reason": exc.strerror or exc}) from None
        fingerprint = pki.fingerprint(pki.current().certificate_pem)
        self.stdout.write(_("Exported %(model)s (%(role)s's half) to %(file)s, signed by the certificate %(fp)s.")
                          % {"model": model.label, "role": model.role, "file": file, "fp": fingerprint})
