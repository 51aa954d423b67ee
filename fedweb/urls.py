from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.urls import include, path
from django.views.generic import RedirectView

from fedweb.accounts import views as account_views
from fedweb.audit import views as audit_views
from fedweb.health import healthz
from frontend import views as ui
from jobs.views import models as model_views
from jobs.views import pages as job_pages
from projects import views as project_views

audit_patterns = (
    [path("", audit_views.audit_list, name="list"), path("export.csv", audit_views.audit_export, name="export")],
    "audit",
)

urlpatterns = [
    path("", ui.home, name="home"),
    path("login/", account_views.LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("password/", account_views.PasswordChangeView.as_view(), name="password_change"),
    path("language/", account_views.language, name="language"),
    path("tokens/", account_views.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke/", account_views.token_revoke, name="token_revoke"),
    path("datasets/", include("datasets.urls")),
    path("projects/", project_views.project_list, name="projects"),
    path("projects/<uuid:pk>/jobs/new/", job_pages.job_new, name="job_new"),
    path("projects/<uuid:pk>/jobs/preview/", job_pages.job_preview, name="job_preview"),
    path("projects/", include("projects.urls")),
    path("jobs/", include("jobs.urls")),
    path("models/", model_views.overview, name="models"),
    path("", include("jobs.model_urls")),
    path("partners/", project_views.partner_list, name="partners"),
    path("partners/", include("projects.partner_urls")),
    path("audit/", include(audit_patterns)),
    path("site-admin/", include("fedweb.accounts.urls")),
    path("api/", include("fedweb.api.urls")),
    path("healthz", healthz, name="healthz"),
]

if settings.DJANGO_ADMIN_ENABLED:
    urlpatterns += [
        # Before admin.site.urls: Django's admin signs in through our throttled,
        # audited page (the redirect keeps ?next=), never through its own form.
        path("django-admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
        path("django-admin/", admin.site.urls),
    ]

handler400 = "fedweb.api.errors.handler400"
handler403 = "fedweb.api.errors.handler403"
handler404 = "fedweb.api.errors.handler404"
handler500 = "fedweb.api.errors.handler500"
