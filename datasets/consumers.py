"""Live dataset status over a WebSocket.

The database is the truth; a push is only a hint to re-read it. A client that
connects late receives the current status at once, so it never misses the end.
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .models import Dataset


def group_name(dataset_id) -> str:
    return f"dataset-{dataset_id}"


def status_payload(dataset: Dataset) -> dict:
    return {
        "type": "dataset.status",
        "id": str(dataset.pk),
        "status": dataset.status,
        "status_label": str(dataset.get_status_display()),
        "error": dataset.error_message,
    }


class DatasetStatusConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        dataset_id = self.scope["url_route"]["kwargs"]["dataset_id"]
        payload = await self._current(user, dataset_id)
        if payload is None:
            await self.close(code=4404)  # same answer whether it is missing or not visible
            return
        self.group = group_name(dataset_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(payload)

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def dataset_status(self, event):
        await self.send_json(event)

    @database_sync_to_async
    def _current(self, user, dataset_id):
        dataset = Dataset.objects.visible_to(user).filter(pk=dataset_id).first()
        return status_payload(dataset) if dataset else None
