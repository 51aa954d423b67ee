"""WebSocket routes."""

from django.urls import path

from datasets.consumers import DatasetStatusConsumer

websocket_urlpatterns = [
    path("ws/datasets/<uuid:dataset_id>/", DatasetStatusConsumer.as_asgi()),
]
