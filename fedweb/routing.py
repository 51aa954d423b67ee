"""WebSocket routes."""

from django.urls import path

from datasets.consumers import DatasetStatusConsumer
from jobs.consumers import JobProgressConsumer

websocket_urlpatterns = [
    path("ws/datasets/<uuid:dataset_id>/", DatasetStatusConsumer.as_asgi()),
    path("ws/jobs/<uuid:job_id>/", JobProgressConsumer.as_asgi()),
]
