"""Thin API views over the project and pairing services."""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from datasets.api.views import IsSiteAdmin
from datasets.services import get_visible
from fedweb.api.errors import ServiceError
from fedweb.api.filtering import FilteredListMixin

from .. import membership, pairing, services
from ..models import Partner, Project, ProjectTable
from .filters import PartnerFilter, ProjectFilter
from .serializers import (
    BundleExportSerializer,
    BundleImportSerializer,
    CommentSerializer,
    ConnectionReportSerializer,
    JobSettingsSerializer,
    MemberAddSerializer,
    PartnerSerializer,
    PolicySerializer,
    ProjectCreateSerializer,
    ProjectEventSerializer,
    ProjectMemberSerializer,
    ProjectSerializer,
    ProjectTableSerializer,
    RemoteTableSerializer,
    TableAuthoriseSerializer,
    TableVersionSerializer,
)


def _pairing_call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except pairing.PairingError as exc:
        raise ServiceError(str(exc), code="bad_bundle") from None


class PartnerViewSet(FilteredListMixin, viewsets.GenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    serializer_class = PartnerSerializer
    queryset = Partner.objects.prefetch_related("certificates")
    lookup_field = "party_id"
    filterset_class = PartnerFilter
    search_fields = ["name", "party_id"]
    ordering_fields = ["name", "party_id", "created_at"]

    def get_permissions(self):
        if self.action in ("list", "retrieve"):
            return super().get_permissions()
        return [IsSiteAdmin()]

    @extend_schema(request=BundleImportSerializer, responses={201: PartnerSerializer})
    @action(detail=False, methods=["post"], url_path="import")
    def import_bundle(self, request):
        form = BundleImportSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        partner = _pairing_call(pairing.import_bundle, form.validated_data["bundle"], by=request.user, request=request._request)
        return Response(PartnerSerializer(partner).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=BundleExportSerializer, responses={200: BundleImportSerializer})
    @action(detail=False, methods=["post"], url_path="bundle")
    def export_bundle(self, request):
        form = BundleExportSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return Response(_pairing_call(pairing.export_bundle, form.validated_data["proxy_address"]))

    @extend_schema(request=None, responses=ConnectionReportSerializer)
    @action(detail=True, methods=["post"], url_path="test")
    def test_connection(self, request, party_id=None):
        report = pairing.test_connection(self.get_object())
        return Response({"ok": report.ok, "summary": report.summary,
                         "steps": [{"step": s, "ok": ok, "detail": d} for s, ok, d in report.steps]})


class ProjectViewSet(FilteredListMixin, viewsets.GenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    serializer_class = ProjectSerializer
    queryset = Project.objects.none()  # for the schema; requests use get_queryset
    filterset_class = ProjectFilter
    search_fields = ["name", "purpose"]
    ordering_fields = ["name", "status", "created_at", "updated_at"]

    def get_queryset(self):
        return services.visible_projects(self.request.user)

    def get_permissions(self):
        # Changing who is in a project is for site admins: refuse before looking anything up.
        if self.action == "remove_member" or (self.action == "members" and self.request.method != "GET"):
            return [IsSiteAdmin()]
        return super().get_permissions()

    @extend_schema(request=ProjectCreateSerializer, responses={201: ProjectSerializer})
    def create(self, request):
        form = ProjectCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        project = services.create_project(user=request.user, request=request._request, **form.validated_data)
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)

    def _transition(self, request, fn):
        form = CommentSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        project = fn(user=request.user, project=self.get_object(), request=request._request, **form.validated_data)
        return Response(ProjectSerializer(project).data)

    @extend_schema(request=CommentSerializer, responses=ProjectSerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        return self._transition(request, services.accept)

    @extend_schema(request=CommentSerializer, responses=ProjectSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._transition(request, services.reject)

    @extend_schema(request=CommentSerializer, responses=ProjectSerializer)
    @action(detail=True, methods=["post"])
    def suspend(self, request, pk=None):
        return self._transition(request, services.suspend)

    @extend_schema(request=CommentSerializer, responses=ProjectSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._transition(request, services.resume)

    @extend_schema(request=CommentSerializer, responses=ProjectSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        return self._transition(request, services.revoke)

    @extend_schema(request=None, responses=ProjectSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-token")
    def rotate_token(self, request, pk=None):
        project = services.rotate_token(user=request.user, project=self.get_object(), request=request._request)
        return Response(ProjectSerializer(project).data)

    @extend_schema(request=JobSettingsSerializer, responses=ProjectSerializer)
    @action(detail=True, methods=["patch"], url_path="job-settings")
    def job_settings(self, request, pk=None):
        """Our admin's settings for the project's jobs (only the ones given change)."""
        from jobs.services import update_job_settings

        form = JobSettingsSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        project = update_job_settings(user=request.user, project=self.get_object(), request=request._request,
                                      **form.validated_data)
        return Response(ProjectSerializer(project).data)

    @extend_schema(methods=["get"], responses=ProjectTableSerializer(many=True), filters=False)
    @extend_schema(methods=["post"], request=TableAuthoriseSerializer, responses={201: ProjectTableSerializer})
    @action(detail=True, methods=["get", "post"])
    def tables(self, request, pk=None):
        project = self.get_object()
        if request.method == "GET":
            return Response(ProjectTableSerializer(project.tables.select_related("dataset"), many=True).data)
        form = TableAuthoriseSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        dataset = get_visible(request.user, form.validated_data["dataset"])
        table = services.authorise_table(
            user=request.user, project=project, dataset=dataset, expires_at=form.validated_data.get("expires_at"),
            policy=form.validated_data.get("policy"), request=request._request,
        )
        return Response(ProjectTableSerializer(table).data, status=status.HTTP_201_CREATED)

    def _table(self, project, table_id) -> ProjectTable:
        table = project.tables.filter(pk=table_id, revoked_at__isnull=True).select_related("dataset").first()
        if table is None:
            raise Http404
        return table

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"tables/(?P<table_id>\d+)")
    def remove_table(self, request, pk=None, table_id=None):
        services.remove_table(user=request.user, table=self._table(self.get_object(), table_id), request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=PolicySerializer, responses=ProjectTableSerializer)
    @action(detail=True, methods=["put"], url_path=r"tables/(?P<table_id>\d+)/policy")
    def policy(self, request, pk=None, table_id=None):
        form = PolicySerializer(data=request.data)
        form.is_valid(raise_exception=True)
        table = services.update_policy(user=request.user, table=self._table(self.get_object(), table_id),
                                       policy=form.validated_data, request=request._request)
        return Response(ProjectTableSerializer(table).data)

    @extend_schema(request=TableVersionSerializer, responses={201: ProjectTableSerializer})
    @action(detail=True, methods=["post"], url_path=r"tables/(?P<table_id>\d+)/version")
    def move_table(self, request, pk=None, table_id=None):
        """Use another version of the table's dataset, with the same policy; the partner is told."""
        form = TableVersionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        table = services.move_to_version(user=request.user, table=self._table(self.get_object(), table_id),
                                         version=form.validated_data["version"], request=request._request)
        return Response(ProjectTableSerializer(table).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=RemoteTableSerializer(many=True), filters=False)
    @action(detail=True, methods=["get"], url_path="partner-tables")
    def partner_tables(self, request, pk=None):
        return Response(RemoteTableSerializer(self.get_object().remote_tables.all(), many=True).data)

    @extend_schema(responses=ProjectEventSerializer(many=True), filters=False)
    @action(detail=True, methods=["get"])
    def events(self, request, pk=None):
        return Response(ProjectEventSerializer(self.get_object().events.all()[:500], many=True).data)

    @extend_schema(methods=["get"], responses=ProjectMemberSerializer(many=True), filters=False)
    @extend_schema(methods=["post"], request=MemberAddSerializer,
                   responses={201: ProjectMemberSerializer, 200: ProjectMemberSerializer})
    @action(detail=True, methods=["get", "post"])
    def members(self, request, pk=None):
        """Who on this site sees the project (site admins see every project). Adding is for admins;
        adding someone already in the project answers 200 and changes nothing."""
        project = self.get_object()
        if request.method == "GET":
            return Response(ProjectMemberSerializer(membership.members_of(project), many=True).data)
        form = MemberAddSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        member, created = membership.add_member(by=request.user, project=project, user=form.validated_data["user"],
                                                request=request._request)
        return Response(ProjectMemberSerializer(member).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=None, responses={204: None},
                   parameters=[OpenApiParameter("user_id", int, OpenApiParameter.PATH, description="The member's user id.")])
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<user_id>\d+)")
    def remove_member(self, request, pk=None, user_id=None):
        project = self.get_object()
        member = membership.members_of(project).filter(user_id=user_id).first()
        if member is None:
            raise Http404
        membership.remove_member(by=request.user, project=project, user=member.user, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)
