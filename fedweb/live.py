"""Live updates over WebSockets: the one consumer shape every watched object uses.

The database is the truth; a push is only a hint to re-read it. A client that connects
(or reconnects) late receives the object's current state at once, so it never misses the
end. Anonymous users are closed with 4401; an object that is missing or that the user may
not see with 4404 — the same answer, so nobody learns what exists.

Pushes come from other processes (Celery workers, the proxy), which only reach this one
through a shared channel layer (Redis). On the embedded default there is none, so the
consumer also re-reads the object every ``FEDWEB_LIVE_POLL_SECONDS`` and sends it when it
changed: the page stays live on every deployment, and a lost push costs seconds, not the
update. Each re-read also re-reads the account: a socket whose user was deactivated, or
whose browser session ended (an admin's new password signs the user out everywhere),
closes with 4401, and a changed role sees what the new role may see.
"""

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model


class WatchConsumer(AsyncJsonWebsocketConsumer):
    """Subclasses name the URL argument and say how to find the group and the current state;
    they add one handler named after the pushed event type, which forwards it."""

    url_kwarg = ""

    def group_for(self, object_id) -> str:
        raise NotImplementedError

    def current(self, user, object_id) -> dict | None:
        """The object's state for ``user``, or None if missing or not visible (runs in a thread)."""
        raise NotImplementedError

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        object_id = self.scope["url_route"]["kwargs"][self.url_kwarg]
        payload = await database_sync_to_async(self.current)(user, object_id)
        if payload is None:
            await self.close(code=4404)
            return
        self.group = self.group_for(object_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(payload)
        self.last = payload
        self.poller = asyncio.ensure_future(self._poll(user, object_id))

    async def send_json(self, content, close=False):
        self.last = content
        await super().send_json(content, close=close)

    def _account(self, user):
        """The user as the database has them now, or None once the account or the browser
        session that opened this socket has ended (runs in a thread)."""
        fresh = get_user_model().objects.filter(pk=user.pk, is_active=True).first()
        session = self.scope.get("session")
        key = getattr(session, "session_key", None)
        if fresh is None or (key is not None and not session.exists(key)):
            return None
        return fresh

    def _refresh(self, user, object_id):
        fresh = self._account(user)
        return (None, None) if fresh is None else (fresh, self.current(fresh, object_id))

    async def _poll(self, user, object_id):
        while True:
            await asyncio.sleep(settings.FEDWEB_LIVE_POLL_SECONDS)
            fresh, payload = await database_sync_to_async(self._refresh)(user, object_id)
            if fresh is None:
                await self.close(code=4401)
                return
            if payload is None:
                await self.close(code=4404)
                return
            if payload != self.last:
                await self.send_json(payload)

    async def disconnect(self, code):
        if getattr(self, "poller", None) is not None:
            self.poller.cancel()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
