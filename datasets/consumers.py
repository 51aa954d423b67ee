"""Live dataset status over a WebSocket.

The database is the truth; a push is only a hint to re-read it. A client that
connects late receives the current status at once, so it never misses the end.
"""

from fedweb.live import WatchConsumer

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


class DatasetStatusConsumer(WatchConsumer):
    url_kwarg = "dataset_id"

    def group_for(self, object_id) -> str:
        return group_name(object_id)

    def current(self, user, object_id):
        dataset = Dataset.objects.visible_to(user).filter(pk=object_id).first()
        return status_payload(dataset) if dataset else None

    async def dataset_status(self, event):
        await self.send_json(event)
