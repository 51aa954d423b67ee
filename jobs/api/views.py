"""Thin API views over the job services."""

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from fedweb.api.errors import ServiceError
from projects.services import visible_projects

from .. import results, services, templates
from ..models import Artifact, Job, Model
from .serializers import (
    ArtifactSerializer,
    GateStopSerializer,
    JobCreateSerializer,
    JobSerializer,
    LogSerializer,
    ModelSerializer,
    RefuseSerializer,
    RerunSerializer,
    TemplateSerializer,
)


class JobViewSet(viewsets.GenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    serializer_class = JobSerializer
    queryset = Job.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        jobs = services.visible_jobs(self.request.user).prefetch_related("tasks", "tasks__reused_from")
        project = self.request.query_params.get("project")
        return jobs.filter(project_id=project) if project else jobs

    @extend_schema(request=JobCreateSerializer, responses={201: JobSerializer})
    def create(self, request):
        form = JobCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        project = visible_projects(request.user).filter(pk=data["project"]).first()
        if project is None:
            raise ServiceError("No such project.", code="not_found", status_code=404)
        spec = data.get("spec")
        if data.get("template"):
            try:
                spec = templates.build(data["template"], project, our_table=str(data["our_table"]),
                                       partner_table=data["partner_table"], options=data.get("options"))
            except templates.TemplateError as exc:
                raise ServiceError(str(exc), code="invalid_template") from None
        job = services.create_job(user=request.user, project=project, spec=spec, name=data.get("name", ""),
                                  template=data.get("template", ""), request=request._request)
        return Response(JobSerializer(job, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED)

    def _act(self, request, fn, **kwargs):
        job = fn(user=request.user, job=self.get_object(), request=request._request, **kwargs)
        return Response(JobSerializer(Job.objects.get(pk=job.pk), context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._act(request, services.cancel)

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._act(request, services.resume)

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._act(request, services.approve)

    @extend_schema(request=RefuseSerializer, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def refuse(self, request, pk=None):
        form = RefuseSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return self._act(request, services.refuse, reason=form.validated_data["reason"])

    @extend_schema(request=None, responses=JobSerializer,
                   description="At a gate (the job is paused): go on with the nodes after it, at both sites.")
    @action(detail=True, methods=["post"], url_path="continue")
    def continue_job(self, request, pk=None):
        return self._act(request, services.continue_job)

    @extend_schema(request=GateStopSerializer, responses=JobSerializer,
                   description="At a gate (the job is paused): end the job, cancelled at both sites with who and why.")
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        form = GateStopSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return self._act(request, services.stop_at_gate, reason=form.validated_data["reason"])

    @extend_schema(request=RerunSerializer, responses={201: JobSerializer})
    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):
        form = RerunSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        job = results.rerun(user=request.user, job=self.get_object(), changes=form.validated_data["changes"],
                            request=request._request)
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=LogSerializer, parameters=[OpenApiParameter("node", str, OpenApiParameter.PATH)])
    @action(detail=True, methods=["get"], url_path=r"nodes/(?P<node>[a-z][a-z0-9_]{0,31})/log")
    def log(self, request, pk=None, node=None):
        return Response({"node": node, "log": results.task_log(self.get_object(), node)})

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY},
                   parameters=[OpenApiParameter("node", str, OpenApiParameter.PATH),
                               OpenApiParameter("port", str, OpenApiParameter.QUERY, default="data")])
    @action(detail=True, methods=["get"], url_path=r"nodes/(?P<node>[a-z][a-z0-9_]{0,31})/download")
    def download(self, request, pk=None, node=None):
        filename, chunks = results.output_table(user=request.user, job=self.get_object(), node=node,
                                                port=request.query_params.get("port", "data"), request=request._request)
        response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = content_disposition_header(True, filename)
        return response

    @extend_schema(responses=ArtifactSerializer(many=True))
    @action(detail=True, methods=["get"])
    def artifacts(self, request, pk=None):
        job = self.get_object()
        ids = {a for t in job.tasks.filter(site="ours") for a in (t.outputs or {}).values()}
        return Response(ArtifactSerializer(Artifact.objects.filter(pk__in=ids), many=True).data)

    @extend_schema(responses=TemplateSerializer(many=True))
    @action(detail=False, methods=["get"])
    def templates(self, request):
        return Response([{"name": t.name, "title": str(t.title), "description": str(t.description),
                          "options": {k: {"default": d, "description": text} for k, (d, text) in t.options.items()}}
                         for t in templates.TEMPLATES.values()])


class ModelViewSet(viewsets.GenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    serializer_class = ModelSerializer
    queryset = Model.objects.none()

    def get_queryset(self):
        return Model.objects.filter(project__in=visible_projects(self.request.user))
