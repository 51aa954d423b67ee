"""The site's own error pages: the layout, a plain sentence and a way back.

Django's defaults are a bare "Not Found" with no navigation, so someone who follows an old
link or a link they may not open is stranded. Each page here names what happened in words
and links to the section the address belongs to and to the home page. The 500 page is
rendered without the request's context processors (whatever failed may be the database
they read), so it is self-contained.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.template import loader
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

# The first path segment of an address -> (URL name of its list page, its name in the menu).
_SECTIONS = {
    "datasets": ("datasets:list", _("Datasets")),
    "projects": ("projects", _("Projects")),
    "jobs": ("jobs:list", _("Jobs")),
    "models": ("models", _("Models")),
    "partners": ("partners", _("Partners")),
    "audit": ("audit:list", _("Audit")),
    "site-admin": ("siteadmin:users", _("Users")),
    "tokens": ("tokens", _("API tokens")),
}


def section_of(path: str) -> dict | None:
    """The list page a lost visitor most likely wants: the section the address is in."""
    first = path.strip("/").split("/", 1)[0]
    if first not in _SECTIONS:
        return None
    name, label = _SECTIONS[first]
    try:
        url = reverse(name)
    except NoReverseMatch:
        return None
    return None if url.rstrip("/") == path.rstrip("/") else {"url": url, "label": label}


def _page(request, template: str, status: int, heading, **context) -> HttpResponse:
    context.update(status=status, heading=heading, section=section_of(request.path))
    body = loader.get_template(template).render(context, request)
    return HttpResponse(body, status=status)


def bad_request(request, exception=None):
    return _page(request, "400.html", 400, _("The request could not be understood"))


def permission_denied(request, exception=None):
    # Services raise PermissionDenied with a sentence for the user ("Viewers cannot start
    # jobs."); a bare PermissionDenied has none and the page says it in general words.
    reason = str(exception or "").strip()
    return _page(request, "403.html", 403, _("You may not open this page"), reason=reason)


def page_not_found(request, exception=None):
    # Http404's own text ("No Dataset matches the given query.") is for developers: not shown.
    return _page(request, "404.html", 404, _("Page not found"))


def server_error(request):
    return HttpResponse(loader.get_template("500.html").render(), status=500)


def csrf_failure(request, reason=""):
    return _page(request, "403_csrf.html", 403, _("This form has expired"))
