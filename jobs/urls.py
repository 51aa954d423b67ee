"""Job pages under /jobs/ (the new-job form lives under its project: /projects/<id>/jobs/new/)."""

from django.urls import path

from .views import lists, pages

app_name = "jobs"

urlpatterns = [
    path("", lists.job_list, name="list"),
    path("<uuid:pk>/", pages.job_detail, name="detail"),
    path("<uuid:pk>/nodes/<slug:node>/log/", pages.node_log, name="log"),
    path("<uuid:pk>/nodes/<slug:node>/download/", pages.node_download, name="download"),
]
