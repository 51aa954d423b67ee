"""Thin API views over the job services."""

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from fedweb.api.errors import ServiceError
from fedweb.api.filtering import FilteredListMixin
from projects.services import visible_projects

from fedweb.api.authentication import ApiTokenAuthentication

from .. import ledger, registry, results, serving, services, templates
from ..models import Artifact, Job, Model
from .filters import JobFilter, ModelFilter
from .serializers import (
    ArtifactSerializer,
    GateStopSerializer,
    JobCreateSerializer,
    JobSerializer,
    LogSerializer,
    ModelSerializer,
    ReconciliationSerializer,
    RefuseSerializer,
    RerunSerializer,
    ScoreRequestSerializer,
    ScoreResponseSerializer,
    ServingTableSerializer,
    TemplateSerializer,
    UnpublishSerializer,
)


class JobViewSet(FilteredListMixin, viewsets.GenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    serializer_class = JobSerializer
    queryset = Job.objects.none()  # for the schema; requests use get_queryset
    filterset_class = JobFilter
    search_fields = ["name"]
    ordering_fields = ["created_at", "name", "status"]

    def get_queryset(self):
        return services.visible_jobs(self.request.user).prefetch_related("tasks", "tasks__reused_from")

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

    @extend_schema(responses=TemplateSerializer(many=True), filters=False)
    @action(detail=False, methods=["get"])
    def templates(self, request):
        return Response([{"name": t.name, "title": str(t.title), "description": str(t.description),
                          "options": {k: {"default": d, "description": text} for k, (d, text) in t.options.items()}}
                         for t in templates.TEMPLATES.values()])


class ModelViewSet(FilteredListMixin, viewsets.GenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """The model registry: versions, publication, serving tables, and online scoring."""

    serializer_class = ModelSerializer
    queryset = Model.objects.none()
    filterset_class = ModelFilter
    search_fields = ["name"]
    ordering_fields = ["created_at", "name", "number"]

    def get_queryset(self):
        return registry.visible_models(self.request.user).select_related("project", "serving")

    def _changed(self, model):
        return Response(ModelSerializer(Model.objects.select_related("serving").get(pk=model.pk)).data)

    @extend_schema(request=None, responses=ModelSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request, pk=None):
        return self._changed(registry.publish(user=request.user, model=self.get_object(), request=request))

    @extend_schema(request=UnpublishSerializer, responses=ModelSerializer)
    @action(detail=True, methods=["post"])
    def unpublish(self, request, pk=None):
        form = UnpublishSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return self._changed(registry.unpublish(user=request.user, model=self.get_object(),
                                                reason=form.validated_data.get("reason", ""), request=request))

    @extend_schema(request=None, responses=ModelSerializer)
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        return self._changed(registry.archive(user=request.user, model=self.get_object(), request=request))

    @extend_schema(request=None, responses=ModelSerializer)
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        return self._changed(registry.restore(user=request.user, model=self.get_object(), request=request))

    @extend_schema(request=ServingTableSerializer, responses=ModelSerializer)
    @action(detail=True, methods=["post"], url_path="serving-table")
    def serving_table(self, request, pk=None):
        from datasets.models import Dataset

        form = ServingTableSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        model = self.get_object()
        dataset = Dataset.objects.filter(pk=form.validated_data["dataset"]).first()
        if dataset is None:
            raise ServiceError("No such dataset on this site.", code="not_found", status_code=404)
        serving.register_serving_table(user=request.user, model=model, dataset=dataset, request=request)
        return self._changed(model)

    @extend_schema(parameters=[OpenApiParameter("day", OpenApiTypes.DATE, required=True,
                                                description="The calendar day (site time zone) to reconcile."),
                               OpenApiParameter("download", str, enum=["csv"], description="csv: every request of the day as a file")],
                   responses=ReconciliationSerializer,
                   description="This site's log of the model's scoring requests on one day matched, by request id, "
                               "with the partner's log (fetched from its site).")
    @action(detail=True, methods=["get"])
    def reconciliation(self, request, pk=None):
        import datetime as dt

        from django.conf import settings
        from django.http import HttpResponse

        model = self.get_object()
        try:
            day = dt.date.fromisoformat(request.query_params.get("day", ""))
        except ValueError:
            raise ServiceError("Give the day as YYYY-MM-DD.", code="invalid", status_code=400) from None
        result = ledger.reconcile(model.project, model.pk, day)
        if request.query_params.get("download") == "csv":
            response = HttpResponse(ledger.as_csv(result, settings.SITE_PARTY_ID, model.project.partner.party_id),
                                    content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = content_disposition_header(
                True, f"scoring-{model.name or model.component}-v{model.number}-{day.isoformat()}.csv")
            return response
        return Response(ReconciliationSerializer(result).data)

    @extend_schema(request=ScoreRequestSerializer, responses=ScoreResponseSerializer,
                   description="Score one id, or a batch, with a published model (API token only, rate-limited "
                               "per token). Asks the partner's site for its part within the scoring deadline.")
    @action(detail=True, methods=["post"], authentication_classes=[ApiTokenAuthentication],
            permission_classes=[IsAuthenticated])
    def score(self, request, pk=None):
        from rest_framework.exceptions import NotAuthenticated

        prefix = getattr(request.auth, "prefix", None)
        if not prefix:  # the rate limit and the ledger name a token, not a browser session
            raise NotAuthenticated("Online scoring takes an API token: send it as \"Authorization: Bearer <token>\".")
        model = self.get_object()
        return Response(serving.score(user=request.user, token_key=prefix, model=model, payload=request.data))
