"""Live job progress over a WebSocket.

The database is the truth; a push is only a hint. A client that connects (or
reconnects) late receives the job's current state at once, so it never misses the end.
Close codes follow ``datasets.consumers``: 4401 for anonymous users, 4404 for a job
that is missing or not visible (the same answer, so a non-member learns nothing).
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .scheduler import group_name, job_payload
from .services import visible_jobs


class JobProgressConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        job_id = self.scope["url_route"]["kwargs"]["job_id"]
        payload = await self._current(user, job_id)
        if payload is None:
            await self.close(code=4404)  # same answer whether it is missing or not visible
            return
        self.group = group_name(job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(payload)

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def job_update(self, event):
        await self.send_json(event)

    @database_sync_to_async
    def _current(self, user, job_id):
        job = visible_jobs(user).filter(pk=job_id).first()
        return job_payload(job) if job else None
