"""A site's users. The role decides what a user may do on this site."""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ADMIN = "admin", _("Site admin")
    ANALYST = "analyst", _("Analyst")
    VIEWER = "viewer", _("Viewer (read only)")


class User(AbstractUser):
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.ANALYST)
    # Empty until the user picks one: until then the pages follow the browser's language.
    language = models.CharField(_("language"), max_length=16, choices=settings.LANGUAGES, blank=True, default="")

    @property
    def is_site_admin(self) -> bool:
        return self.is_active and (self.role == Role.ADMIN or self.is_superuser)

    @property
    def can_write(self) -> bool:
        """Viewers read what they were granted; everyone else may upload and run work."""
        return self.is_active and self.role != Role.VIEWER

    def save(self, *args, **kwargs):
        # Django's own admin site is reserved for site admins.
        if self.role == Role.ADMIN:
            self.is_staff = True
        super().save(*args, **kwargs)
