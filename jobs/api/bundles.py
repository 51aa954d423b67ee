"""Model bundles over the API: download this site's half of a model, upload one to import it."""

from django.http import HttpResponse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from fedweb.api.errors import ServiceError
from projects.services import visible_projects

from .. import bundles, registry
from ..models import Model
from .serializers import ModelSerializer


class ModelImportSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The bundle (a .fedweb-model.json file exported by a site).")
    project = serializers.UUIDField(help_text="The project the model is imported into; its half must play this "
                                              "site's role there.")
    signer_fingerprint = serializers.CharField(
        required=False, allow_blank=True, max_length=200,
        help_text="The SHA-256 fingerprint of the certificate that signed the bundle, as the exporting site shows "
                  "it; needed only when that certificate is neither this site's nor a pinned partner's.")


class ModelExportView(APIView):
    """This site's half of a model as a signed bundle (site admins)."""

    @extend_schema(operation_id="models_export", tags=["models"],
                   responses={(200, "application/json"): OpenApiTypes.BINARY},
                   description="Download this site's half of the model as a signed bundle: the half, its "
                               "preparation, and a consistency sample of up to 20 of this site's own rows (handle "
                               "the file like the data). Site admins only.")
    def get(self, request, pk):
        model = registry.visible_models(request.user).select_related("project").filter(pk=pk).first()
        if model is None:
            raise ServiceError(_("No such model."), code="not_found", status_code=404)
        data = bundles.export_bundle(user=request.user, model=model, request=request._request)
        response = HttpResponse(data, content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = content_disposition_header(True, bundles.file_name(model))
        return response


class ModelImportView(APIView):
    """Import a bundle of this site's half of a model (site admins)."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(operation_id="models_import", tags=["models"], request={"multipart/form-data": ModelImportSerializer},
                   responses={201: ModelSerializer,
                              200: OpenApiResponse(ModelSerializer, description="The model was already here."),
                              400: OpenApiResponse(description="Malformed bundle, or the prediction-consistency "
                                                               "check failed."),
                              403: OpenApiResponse(description="Not a site admin, or the signer is not trusted."),
                              409: OpenApiResponse(description="Wrong role, or another model has the id.")},
                   description="Check a bundle (signature, trusted signer, role, prediction-consistency check on its "
                               "sample) and make its half this site's model in the project. Site admins only.")
    def post(self, request):
        form = ModelImportSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        values = form.validated_data
        project = visible_projects(request.user).filter(pk=values["project"]).first()
        if project is None:
            raise ServiceError(_("No such project."), code="not_found", status_code=404)
        upload = values["file"]
        if upload.size is not None and upload.size > bundles.MAX_BUNDLE_BYTES:
            raise ServiceError(_("The file is larger than %(mb)d MB: it is not a model bundle.")
                               % {"mb": bundles.MAX_BUNDLE_BYTES // (1024 * 1024)}, code="malformed")
        data = upload.read(bundles.MAX_BUNDLE_BYTES + 1)
        model = bundles.import_bundle(data, user=request.user, project=project,
                                      signer_fingerprint=values.get("signer_fingerprint", ""),
                                      request=request._request)
        body = ModelSerializer(Model.objects.select_related("serving").get(pk=model.pk)).data
        return Response(body, status=status.HTTP_200_OK if getattr(model, "already_here", False)
                        else status.HTTP_201_CREATED)
