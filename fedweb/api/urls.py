from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from datasets.api.views import DatasetViewSet, GrantViewSet
from fedweb.audit.api import AuditEventViewSet
from jobs.api.bundles import ModelExportView, ModelImportView
from jobs.api.views import JobViewSet, ModelViewSet
from projects.api.views import PartnerViewSet, ProjectViewSet

from . import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("datasets", DatasetViewSet, basename="dataset")
router.register("grants", GrantViewSet, basename="grant")
router.register("partners", PartnerViewSet, basename="partner")
router.register("projects", ProjectViewSet, basename="project")
router.register("audit", AuditEventViewSet, basename="audit")
router.register("jobs", JobViewSet, basename="job")
router.register("models", ModelViewSet, basename="model")

urlpatterns = [
    path("me/", views.me, name="api-me"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    # Before the router: "import" is not a model id.
    path("models/import/", ModelImportView.as_view(), name="model-import"),
    path("models/<uuid:pk>/export/", ModelExportView.as_view(), name="model-export"),
    path("", include(router.urls)),
]
