"""The admin a model bundle command acts as."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db.models import Q
from django.utils.translation import gettext as _


def acting_admin(username: str | None):
    """The named site admin, or the site's only one when none is named."""
    User = get_user_model()
    admins = User.objects.filter(is_active=True).filter(Q(role="admin") | Q(is_superuser=True))
    if username:
        user = User.objects.filter(username=username).first()
        if user is None or not user.is_site_admin:
            raise CommandError(_("%(name)s is not a site admin of this site.") % {"name": username})
        return user
    if admins.count() != 1:
        raise CommandError(_("Name the site admin the command acts as with --as."))
    return admins.get()
