"""Partner pages under /partners/. The list is also named "partners" at the top level (see fedweb/urls.py)."""

from django.urls import path

from . import views

app_name = "partners"

urlpatterns = [
    path("", views.partner_list, name="list"),
    path("bundle/", views.bundle_download, name="bundle"),
    path("import/", views.bundle_import, name="import"),
    path("<slug:party_id>/test/", views.partner_test, name="test"),
]
