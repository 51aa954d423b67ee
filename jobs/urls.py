"""Job pages under /jobs/ (the new-job form lives under its project: /projects/<id>/jobs/new/)."""

from django.urls import path

from .views import lists, pages

app_name = "jobs"

urlpatterns = [
    path("", lists.job_list, name="list"),
    path("<uuid:pk>/", pages.job_detail, name="detail"),
    *(path(f"<uuid:pk>/{action}/", pages.job_action, {"action": action}, name=action) for action in pages.ACTIONS),
    path("<uuid:pk>/rerun/", pages.job_rerun, name="rerun"),
    path("<uuid:pk>/sweep/", pages.job_sweep, name="sweep"),
    path("sweeps/<uuid:pk>/", pages.sweep_detail, name="sweep_detail"),
    path("<uuid:pk>/nodes/<slug:node>/log/", pages.node_log, name="log"),
    path("<uuid:pk>/nodes/<slug:node>/download/", pages.node_download, name="download"),
]
