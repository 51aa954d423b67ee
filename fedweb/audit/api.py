"""Read-only audit API for site admins (the same filters as the Audit page)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets

from datasets.api.views import IsSiteAdmin

from .models import AuditEvent
from .views import filtered_events


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["seq", "event_id", "created_at", "actor_name", "action", "outcome", "object_type", "object_id",
                  "object_repr", "ip_address", "details"]
        read_only_fields = fields


@extend_schema(parameters=[OpenApiParameter(name, str) for name in ("action", "outcome", "actor", "object", "from", "to")])
class AuditEventViewSet(viewsets.GenericViewSet, mixins.ListModelMixin):
    serializer_class = AuditEventSerializer
    permission_classes = [IsSiteAdmin]
    queryset = AuditEvent.objects.none()

    def get_queryset(self):
        return filtered_events(self.request.query_params)
