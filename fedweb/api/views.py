"""Site-wide API endpoints."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.CharField()
    is_site_admin = serializers.BooleanField()


@extend_schema(responses=MeSerializer)
@api_view(["GET"])
def me(request):
    """Who the request is authenticated as."""
    user = request.user
    return Response({"username": user.username, "role": user.role, "is_site_admin": user.is_site_admin})
