"""Model registry pages: a project's models, the import of a model and the scoring reconciliation
under /projects/<id>/, one version (and the export of this site's half) under /models/<id>/
(the site-wide /models/ page is in fedweb/urls.py)."""

from django.urls import path

from .views import models

app_name = "registry"

urlpatterns = [
    path("projects/<uuid:project_id>/models/", models.project_models, name="project_models"),
    path("projects/<uuid:project_id>/models/compare/", models.compare, name="compare"),
    path("projects/<uuid:project_id>/models/import/", models.model_import, name="import"),
    path("projects/<uuid:project_id>/scoring/", models.scoring, name="scoring"),
    path("projects/<uuid:project_id>/scoring/csv/", models.scoring_csv, name="scoring_csv"),
    path("models/<uuid:pk>/", models.model_detail, name="model"),
    *(path(f"models/<uuid:pk>/{action}/", models.model_action, {"action": action}, name=action)
      for action in models.ACTIONS),
    path("models/<uuid:pk>/unpublish/", models.model_unpublish, name="unpublish"),
    path("models/<uuid:pk>/serving-table/", models.model_serving_table, name="serving_table"),
    path("models/<uuid:pk>/export/", models.model_export, name="export"),
]
