"""Job pages under /jobs/ (the new-job form lives under its project: /projects/<id>/jobs/new/)."""

from django.urls import path

from .views import lists, pages

app_name = "jobs"

urlpatterns = [
    path("", lists.job_list, name="list"),
    path("<uuid:pk>/", pages.job_detail, name="detail"),
    path("<uuid:pk>/cancel/", pages.job_cancel, name="cancel"),
    path("<uuid:pk>/resume/", pages.job_resume, name="resume"),
    path("<uuid:pk>/approve/", pages.job_approve, name="approve"),
    path("<uuid:pk>/refuse/", pages.job_refuse, name="refuse"),
    path("<uuid:pk>/continue/", pages.job_continue, name="continue"),
    path("<uuid:pk>/stop/", pages.job_stop, name="stop"),
    path("<uuid:pk>/rerun/", pages.job_rerun, name="rerun"),
    path("<uuid:pk>/sweep/", pages.job_sweep, name="sweep"),
    path("sweeps/<uuid:pk>/", pages.sweep_detail, name="sweep_detail"),
    path("<uuid:pk>/nodes/<slug:node>/log/", pages.node_log, name="log"),
    path("<uuid:pk>/nodes/<slug:node>/download/", pages.node_download, name="download"),
]
