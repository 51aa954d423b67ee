"""Thin API views: parse, call a service, serialise."""

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from fedweb.api.errors import ServiceError
from fedweb.api.filtering import FilteredListMixin

from .. import services
from ..models import DatasetGrant
from .filters import DatasetFilter
from .serializers import (
    DatasetSerializer,
    DatasetUpdateSerializer,
    DatasetUploadSerializer,
    DatasetVersionUploadSerializer,
    GrantSerializer,
    PreviewSerializer,
    RevalidateSerializer,
    SchemaSerializer,
)


def too_large_error() -> ServiceError:
    return ServiceError(
        f"The file is larger than the {services.max_upload_mb()} MB limit.", code="too_large", status_code=413
    )


class IsSiteAdmin(permissions.BasePermission):
    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.is_site_admin)


class DatasetViewSet(FilteredListMixin, viewsets.GenericViewSet, mixins.ListModelMixin):
    serializer_class = DatasetSerializer
    filterset_class = DatasetFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "updated_at", "status", "row_count", "size_bytes"]
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    lookup_value_regex = "[0-9a-fA-F-]{32,36}"

    def get_queryset(self):
        return services.visible_datasets(self.request.user)

    def get_object(self):
        return services.get_visible(self.request.user, self.kwargs["pk"])

    @extend_schema(request=DatasetUploadSerializer, responses={201: DatasetSerializer, 413: OpenApiResponse(description="File too large.")})
    def create(self, request):
        data = request.data  # parsing runs the capped upload handler
        if getattr(request._request, "upload_too_large", False):
            raise too_large_error()
        form = DatasetUploadSerializer(data=data)
        form.is_valid(raise_exception=True)
        dataset = services.upload(user=request.user, uploaded_file=form.validated_data.pop("file"), request=request._request, **form.validated_data)
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, pk=None):
        return Response(DatasetSerializer(self.get_object()).data)

    @extend_schema(request=DatasetUpdateSerializer, responses=DatasetSerializer)
    def partial_update(self, request, pk=None):
        form = DatasetUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        dataset = services.update_metadata(user=request.user, dataset=self.get_object(), request=request._request, **form.validated_data)
        return Response(DatasetSerializer(dataset).data)

    def destroy(self, request, pk=None):
        services.delete(user=request.user, dataset=self.get_object(), request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[OpenApiParameter("rows", int, description="How many rows (1-200, default 20).")],
        responses=PreviewSerializer,
    )
    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None):
        try:
            rows = int(request.query_params.get("rows", 20))
        except ValueError:
            raise ServiceError("rows must be a whole number.", details={"rows": ["Not a number."]}) from None
        return Response(services.preview(user=request.user, dataset=self.get_object(), rows=rows))

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        dataset = self.get_object()
        if not dataset.is_ready:
            raise ServiceError("The dataset is not ready yet.", code="not_ready", status_code=409)
        return Response(dataset.stats)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        filename, chunks = services.download(user=request.user, dataset=self.get_object(), request=request._request)
        response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
        return response

    @extend_schema(request=SchemaSerializer, responses={202: DatasetSerializer})
    # Not named "schema": that attribute holds the view's OpenAPI generator.
    @action(detail=True, methods=["post"], url_path="schema", url_name="schema")
    def change_schema(self, request, pk=None):
        form = SchemaSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        dataset = services.change_schema(user=request.user, dataset=self.get_object(), request=request._request, **form.validated_data)
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=RevalidateSerializer, responses={202: DatasetSerializer})
    @action(detail=True, methods=["post"])
    def revalidate(self, request, pk=None):
        form = RevalidateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        dataset = services.revalidate(user=request.user, dataset=self.get_object(), request=request._request, **form.validated_data)
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(methods=["get"], responses=DatasetSerializer(many=True), filters=False)
    @extend_schema(methods=["post"], request=DatasetVersionUploadSerializer,
                   responses={201: DatasetSerializer, 413: OpenApiResponse(description="File too large.")})
    @action(detail=True, methods=["get", "post"])
    def versions(self, request, pk=None):
        """Every version of the dataset, oldest first; POST a new file to add the next one (owner or admin)."""
        dataset = self.get_object()
        if request.method == "GET":
            return Response(DatasetSerializer(services.versions_of(dataset).select_related("owner"), many=True).data)
        data = request.data  # parsing runs the capped upload handler
        if getattr(request._request, "upload_too_large", False):
            raise too_large_error()
        form = DatasetVersionUploadSerializer(data=data)
        form.is_valid(raise_exception=True)
        new = services.upload_version(user=request.user, dataset=dataset, uploaded_file=form.validated_data.pop("file"),
                                      request=request._request, **form.validated_data)
        return Response(DatasetSerializer(new).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["get"], responses=GrantSerializer(many=True), filters=False)
    @extend_schema(methods=["post"], request=GrantSerializer, responses={201: GrantSerializer})
    @action(detail=True, methods=["get", "post"], permission_classes=[IsSiteAdmin])
    def grants(self, request, pk=None):
        dataset = self.get_object()
        if request.method == "GET":
            return Response(GrantSerializer(services.grants_of(dataset), many=True).data)
        form = GrantSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        new = services.grant(
            by=request.user, dataset=dataset, user=form.validated_data["user"],
            expires_at=form.validated_data.get("expires_at"), request=request._request,
        )
        return Response(GrantSerializer(new).data, status=status.HTTP_201_CREATED)


class GrantViewSet(viewsets.GenericViewSet, mixins.RetrieveModelMixin):
    """A single grant; DELETE revokes it (the row stays as history)."""

    serializer_class = GrantSerializer
    permission_classes = [IsSiteAdmin]
    queryset = DatasetGrant.objects.select_related("user", "granted_by", "dataset").filter(dataset__deleted_at__isnull=True)

    def destroy(self, request, pk=None):
        services.revoke(by=request.user, grant=self.get_object(), request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)
