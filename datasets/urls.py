from django.urls import path

from . import views

app_name = "datasets"

urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("upload/", views.dataset_upload, name="upload"),
    path("<uuid:pk>/", views.dataset_detail, name="detail"),
    path("<uuid:pk>/status/", views.dataset_status, name="status"),
    path("<uuid:pk>/columns/", views.dataset_columns, name="columns"),
    path("<uuid:pk>/reread/", views.dataset_reread, name="reread"),
    path("<uuid:pk>/edit/", views.dataset_edit, name="edit"),
    path("<uuid:pk>/delete/", views.dataset_delete, name="delete"),
    path("<uuid:pk>/download/", views.dataset_download, name="download"),
    path("<uuid:pk>/versions/", views.dataset_version, name="version"),
    path("<uuid:pk>/grants/", views.dataset_grant, name="grant"),
    path("<uuid:pk>/grants/<int:grant_id>/revoke/", views.dataset_revoke, name="revoke"),
]
