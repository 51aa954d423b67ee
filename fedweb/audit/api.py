"""Read-only audit API: the same filters and the same rule as the Audit page (site admins read
every event, everyone else the events where they are the actor)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets

from .models import AuditEvent
from .services import visible_events


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["seq", "event_id", "created_at", "actor_name", "action", "outcome", "object_type", "object_id",
                  "object_repr", "ip_address", "details"]
        read_only_fields = fields


@extend_schema(parameters=[OpenApiParameter(name, str) for name in ("action", "outcome", "actor", "object", "from", "to")])
class AuditEventViewSet(viewsets.GenericViewSet, mixins.ListModelMixin):
    """Site admins list every event; analysts and viewers list the events where they are the actor."""

    serializer_class = AuditEventSerializer
    queryset = AuditEvent.objects.none()

    def get_queryset(self):
        return visible_events(self.request.user, self.request.query_params)
