"""Template context shared by every page."""

from django.conf import settings


def site(request):
    return {"SITE_NAME": settings.SITE_NAME, "SITE_PARTY_ID": settings.SITE_PARTY_ID}
