"""Project pages under /projects/. The list is also named "projects" at the top level (see fedweb/urls.py)."""

from django.urls import path

from . import views

app_name = "projects"


def _transition(action: str):
    return path(f"<uuid:pk>/{action}/", views.project_transition, {"action": action}, name=action)


urlpatterns = [
    path("", views.project_list, name="list"),
    path("new/", views.project_create, name="create"),
    path("<uuid:pk>/", views.project_detail, name="detail"),
    *(_transition(action) for action in views.TRANSITIONS),
    path("<uuid:pk>/tables/", views.table_authorise, name="authorise"),
    path("<uuid:pk>/tables/<int:table_id>/policy/", views.table_policy, name="policy"),
    path("<uuid:pk>/tables/<int:table_id>/remove/", views.table_remove, name="remove_table"),
    path("<uuid:pk>/tables/<int:table_id>/version/", views.table_move, name="move_table"),
    path("<uuid:pk>/job-settings/", views.project_job_settings, name="job_settings"),
    path("<uuid:pk>/members/", views.member_add, name="member_add"),
    path("<uuid:pk>/members/<int:user_id>/remove/", views.member_remove, name="member_remove"),
]
