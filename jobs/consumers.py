"""Live job progress over a WebSocket (``fedweb.live`` says how every watched object behaves)."""

from fedweb.live import WatchConsumer

from .scheduler import group_name, job_payload
from .services import visible_jobs


class JobProgressConsumer(WatchConsumer):
    url_kwarg = "job_id"

    def group_for(self, object_id) -> str:
        return group_name(object_id)

    def current(self, user, object_id):
        job = visible_jobs(user).filter(pk=object_id).first()
        return job_payload(job) if job else None

    async def job_update(self, event):
        await self.send_json(event)
